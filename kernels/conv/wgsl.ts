// WGSL plans of the conv family: each is the shared tiled GEMM (../matmul/gemm.ts) with loaders
// that compute im2col addresses on the fly over the lifted 3D geometry. All sizes are constants,
// so divisions by 1 (the unused leading dims of 1D/2D convs) fold away.
//
// Index arithmetic is u32: a tap position o·s + k − p that falls left of the input wraps to a
// huge value, so one unsigned `< S` test rejects both sides of the padding.

import type { WgslPlan } from '../types.ts';
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

/**
 * conv_transpose as a gather: y[b,co,o] = Σ_{ci,tap} x[b,ci,i]·w[ci,co,tap] over the taps with
 * o + p − tap = i·s for an integer i inside x. M = B·OV (output positions), N = Co, K = Ci·KV.
 */
export function convTransposeWgsl(g: ConvGeom, hasBias: boolean): WgslPlan {
  const ins = hasBias ? ['X', 'W', 'BIAS'] : ['X', 'W'];
  // The KV taps of w[ci, co, :] are contiguous in k: vec4 loads when KV is a multiple of 4 (k4).
  const vecW = vol(g.K) % 4 === 0;
  return gemmPlan({
    op: 'conv_transpose',
    M: g.B * vol(g.O),
    N: g.Co,
    K: g.Ci * vol(g.K),
    decls: `${bindingDecls(ins, 'Y', vecW ? ['W'] : [])}\n${consts(g)}`,
    // Here O is the (larger) output and S the input; t = o + p − tap must be a multiple of
    // the stride. A negative t wraps to ≥ 2³¹, whose quotient is far beyond S.
    loadA: `  let b = m / OV; let o = m % OV; let ci = k / KV; let tap = k % KV;
${splitO('o')}
${splitK('tap')}
  let t0 = o0 + P0 - p; let t1 = o1 + P1 - q; let t2 = o2 + P2 - r;
  if (t0 % ST0 != 0u || t1 % ST1 != 0u || t2 % ST2 != 0u) { return 0.0; }
  let i0 = t0 / ST0; let i1 = t1 / ST1; let i2 = t2 / ST2;
  if (i0 >= S0 || i1 >= S1 || i2 >= S2) { return 0.0; }
  return X[(b * CI + ci) * SV + (i0 * S1 + i1) * S2 + i2];`,
    // w [Ci, Co, KV]: B(k = ci·KV + tap, n) = w[ci, n, tap].
    loadB: '  return W[((k / KV) * CO + n) * KV + k % KV];',
    ...(vecW && { vecB: 'k' as const, loadB4: '  return W[(((k / KV) * CO + n) * KV + k % KV) / 4u];' }),
    store: `  Y[((m / OV) * CO + n) * OV + m % OV] = v${hasBias ? ' + BIAS[n]' : ''};`,
    bindings: [...ins.keys(), ins.length],
    fastAxis: 'm',
  });
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
