// WGSL plans of the conv family: each is the shared tiled GEMM (../matmul/gemm.ts) with loaders
// that compute im2col addresses on the fly over the lifted 3D geometry. All sizes are constants,
// so divisions by 1 (the unused leading dims of 1D/2D convs) fold away.
//
// Index arithmetic is u32: a tap position o·s + k − p that falls left of the input wraps to a
// huge value, so one unsigned `< S` test rejects both sides of the padding.

import type { WgslPass, WgslPlan } from '../types.ts';
import { gemmPlan } from '../matmul/gemm.ts';
import type { ConvGeom } from './geometry.ts';
import { vol } from './geometry.ts';

const consts = (g: ConvGeom): string => {
  const c = (name: string, v: number) => `const ${name}: u32 = ${v}u;`;
  return [
    c('BATCH', g.B), c('CI', g.Ci), c('CO', g.Co),
    ...[0, 1, 2].flatMap((d) => [c(`S${d}`, g.S[d]), c(`O${d}`, g.O[d]), c(`K${d}`, g.K[d]), c(`ST${d}`, g.stride[d]), c(`P${d}`, g.pad[d])]),
    c('SV', vol(g.S)), c('OV', vol(g.O)), c('KV', vol(g.K)),
  ].join('\n');
};

/** Read-only bindings in order, then the output; names in `vec4` are declared as vec4 arrays. */
const bindingDecls = (names: string[], out: string, vec4: string[] = []): string =>
  [
    ...names.map((n, i) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<${vec4.includes(n) ? 'vec4<f32>' : 'f32'}>;`),
    `@group(0) @binding(${names.length}) var<storage, read_write> ${out}: array<f32>;`,
  ].join('\n');

/** Splits a flat output-position index `v` into o0, o1, o2 (sizes O0..O2). */
const splitO = (v: string) => `  let o2 = ${v} % O2; let o1 = (${v} / O2) % O1; let o0 = ${v} / (O2 * O1);`;
/** Splits a flat kernel-tap index `v` into p, q, r (sizes K0..K2). */
const splitK = (v: string) => `  let r = ${v} % K2; let q = (${v} / K2) % K1; let p = ${v} / (K2 * K1);`;
/** The input position read by output position o and tap k, and its in-bounds test. */
const tapIndex = `  let i0 = o0 * ST0 + p - P0; let i1 = o1 * ST1 + q - P1; let i2 = o2 * ST2 + r - P2;
  if (i0 >= S0 || i1 >= S1 || i2 >= S2) { return 0.0; }
  let i = (i0 * S1 + i1) * S2 + i2;`;

/** conv: M = B·OV (m = b·OV + o), N = Co, K = Ci·KV (k = ci·KV + tap). */
export function convWgsl(g: ConvGeom, hasBias: boolean): WgslPlan {
  const ins = hasBias ? ['X', 'W', 'BIAS'] : ['X', 'W'];
  // A weight row w[co, :] is contiguous in k: vec4 loads when its length Ci·KV allows.
  const vecW = (g.Ci * vol(g.K)) % 4 === 0;
  return gemmPlan({
    op: 'conv',
    M: g.B * vol(g.O),
    N: g.Co,
    K: g.Ci * vol(g.K),
    decls: `${bindingDecls(ins, 'Y', vecW ? ['W'] : [])}\n${consts(g)}`,
    loadA: `  let b = m / OV; let o = m % OV; let ci = k / KV; let t = k % KV;
${splitO('o')}
${splitK('t')}
${tapIndex}
  return X[(b * CI + ci) * SV + i];`,
    // w [Co, Ci·KV] row-major: B(k, n) = w[n, k].
    loadB: '  return W[n * (CI * KV) + k];',
    ...(vecW && { vecB: 'k' as const, loadB4: '  return W[(n * (CI * KV) + k) / 4u];' }),
    store: `  Y[((m / OV) * CO + n) * OV + m % OV] = v${hasBias ? ' + BIAS[n]' : ''};`,
    bindings: [...ins.keys(), ins.length],
    fastAxis: 'm',
  });
}

/** One output phase of a conv_transpose along one dim (see convTransposeWgsl). */
interface Phase1 {
  /** Output residue ρ, first tap t0, tap count n, phase grid size G, input offset c. */
  r: number;
  t0: number;
  n: number;
  G: number;
  c: number;
}

/** The phases of one dim: outputs o = ρ + s·u take the taps t = t0 + s·v, v < n, reading x[u + c − v]. */
function phases1(O: number, K: number, s: number, p: number): Phase1[] {
  const out: Phase1[] = [];
  for (let r = 0; r < Math.min(s, O); r++) {
    const t0 = (r + p) % s;
    const n = t0 < K ? Math.ceil((K - t0) / s) : 0;
    out.push({ r, t0, n, G: Math.ceil((O - r) / s), c: (r + p - t0) / s });
  }
  return out;
}

/**
 * conv_transpose, y[b,co,o] = Σ_{ci,tap} x[b,ci,i]·w[ci,co,tap] over the taps with
 * o + p − tap = i·s, as one dense implicit GEMM per output phase (residue of o mod s, per dim;
 * the decomposition of the Wasm kernel, kernel.as.ts conv_transpose): a phase's outputs take
 * only the taps of its residue, so no multiply meets a zero of the dilated input. A gather over
 * every tap would do s^d times the work (4× in 2D, 8× in 3D at stride 2).
 * Per phase: M = B·GV (phase outputs), N = Co, K = Ci·nV (its taps). Phases write disjoint
 * outputs; a phase without taps (K < s) writes the bias (or 0). When phases split K they share
 * one scratch buffer: dispatches in a pass run in order, each sees the previous one's writes.
 */
export function convTransposeWgsl(g: ConvGeom, hasBias: boolean): WgslPlan {
  const ins = hasBias ? ['X', 'W', 'BIAS'] : ['X', 'W'];
  const per = [0, 1, 2].map((d) => phases1(g.O[d], g.K[d], g.stride[d], g.pad[d]));
  const passes: WgslPass[] = [];
  let scratch = 0;
  for (const a of per[0]) for (const b of per[1]) for (const c of per[2]) {
    const ph = [a, b, c];
    const GV = a.G * b.G * c.G;
    const NV = a.n * b.n * c.n;
    const pc = (name: string, f: (q: Phase1) => number) => ph.map((q, d) => `const ${name}${d}: u32 = ${f(q)}u;`).join('\n');
    const decls = `${bindingDecls(ins, 'Y', [])}
${consts(g)}
${pc('R', (q) => q.r)}
${pc('T', (q) => q.t0)}
${pc('N', (q) => Math.max(q.n, 1))}
${pc('G', (q) => q.G)}
${pc('C', (q) => q.c)}
const GV: u32 = ${GV}u;
const NV: u32 = ${Math.max(NV, 1)}u;`;
    const store = `  let b = m / GV; let u = m % GV;
  let u2 = u % G2; let u1 = (u / G2) % G1; let u0 = u / (G2 * G1);
  Y[(b * CO + n) * OV + ((R0 + ST0 * u0) * O1 + R1 + ST1 * u1) * O2 + R2 + ST2 * u2] = v${hasBias ? ' + BIAS[n]' : ''};`;
    const plan = gemmPlan({
      op: 'conv_transpose',
      M: g.B * GV,
      N: g.Co,
      // A tapless phase: one k whose loaders give 0, so the GEMM stores just the bias.
      K: NV === 0 ? 1 : g.Ci * NV,
      decls,
      // (X and W are touched so the auto layout still binds them.)
      loadA: NV === 0
        ? '  _ = &X; _ = &W;\n  return 0.0;'
        : `  let b = m / GV; let u = m % GV; let ci = k / NV; let v = k % NV;
  let u2 = u % G2; let u1 = (u / G2) % G1; let u0 = u / (G2 * G1);
  let v2 = v % N2; let v1 = (v / N2) % N1; let v0 = v / (N2 * N1);
  // A negative u + c − v wraps to ≥ 2³¹: one unsigned test rejects both sides.
  let i0 = u0 + C0 - v0; let i1 = u1 + C1 - v1; let i2 = u2 + C2 - v2;
  if (i0 >= S0 || i1 >= S1 || i2 >= S2) { return 0.0; }
  return X[(b * CI + ci) * SV + (i0 * S1 + i1) * S2 + i2];`,
      // w [Ci, Co, KV]: tap v of the phase is kernel index t0 + s·v per dim.
      loadB: NV === 0
        ? '  return 0.0;'
        : `  let ci = k / NV; let v = k % NV;
  let v2 = v % N2; let v1 = (v / N2) % N1; let v0 = v / (N2 * N1);
  return W[(ci * CO + n) * KV + ((T0 + ST0 * v0) * K1 + T1 + ST1 * v1) * K2 + T2 + ST2 * v2];`,
      store,
      bindings: [...ins.keys(), ins.length],
      fastAxis: 'm',
      ...(NV === 0 && { splitK: 1 }),
    });
    passes.push(...plan.passes);
    scratch = Math.max(scratch, ...(plan.scratch ?? [0]));
  }
  return scratch ? { passes, scratch: [scratch] } : { passes };
}

/** conv_grad_weight: dw[co, ci·KV + tap] = Σ_{b,o} dy[b,co,o]·x[b,ci,o·s−p+tap]; M = Co, N = Ci·KV, K = B·OV. */
export function convGradWeightWgsl(g: ConvGeom): WgslPlan {
  // dy[b, co, :] is contiguous in k = b·OV + o: vec4 loads when OV is a multiple of 4.
  const vecDy = vol(g.O) % 4 === 0;
  return gemmPlan({
    op: 'conv_grad_weight',
    M: g.Co,
    N: g.Ci * vol(g.K),
    K: g.B * vol(g.O),
    decls: `${bindingDecls(['X', 'DY'], 'DW', vecDy ? ['DY'] : [])}\n${consts(g)}`,
    loadA: '  return DY[((k / OV) * CO + m) * OV + k % OV];',
    ...(vecDy && { vecA: 'k' as const, loadA4: '  return DY[(((k / OV) * CO + m) * OV + k % OV) / 4u];' }),
    loadB: `  let b = k / OV; let o = k % OV; let ci = n / KV; let t = n % KV;
${splitO('o')}
${splitK('t')}
${tapIndex}
  return X[(b * CI + ci) * SV + i];`,
    store: '  DW[m * (CI * KV) + n] = v;',
    bindings: [0, 1, 2],
  });
}
