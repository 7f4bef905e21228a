// Spectral normalisation's power iteration (PyTorch's torch.nn.utils.spectral_norm, one step per
// forward call). W = w viewed [w.shape[0], K] (dimension 0 even for conv_transpose weights):
//   v = normalize(Wᵀu), u' = normalize(W v), σ = u'ᵀ W v, normalize(x) = x / max(‖x‖, eps).
// Outputs [σ [1], u' [O] (written over u on devices), v [K]]. The gradient treats u' and v as
// constants (as PyTorch does): dW = dσ · u' vᵀ, through the fused `sn_sigma_grad`; nothing
// flows into u. The layer then divides w by σ with the broadcasting `div`.

import type { OpDef, Shape } from '../types.ts';
import { CORE_WGSL, OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, WG_SUM, f32lit, grid1d, linearMain } from '../wgsl.ts';

export interface SnAttrs {
  eps?: number;
  [k: string]: unknown;
}

function dims(op: string, w: Shape, s: Shape[]): { O: number; K: number } {
  if (w.length < 1 || numel(w) === 0) throw new OpError(op, `the weight must have at least one axis and one element, got ${fmtShape(w)}`, s);
  return { O: w[0], K: numel(w) / w[0] };
}

const norm = (x: Float64Array): number => Math.sqrt(x.reduce((a, b) => a + b * b, 0));

const binding = (i: number, name: string, rw = false): string =>
  `@group(0) @binding(${i}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<f32>;`;

export const snSigma: OpDef<SnAttrs> = {
  name: 'sn_sigma',
  inplace: { 1: 1 },
  shape: (s) => {
    if (s.length !== 2) throw new OpError('sn_sigma', `takes 2 inputs (w, u), got ${s.length}`, s);
    const { O, K } = dims('sn_sigma', s[0], s);
    if (s[1].length !== 1 || s[1][0] !== O)
      throw new OpError('sn_sigma', `u must be [${O}] (the length of w's dimension 0), got ${fmtShape(s[1])}`, s, "Initialise u with w.shape[0] entries, also for conv_transpose weights [in, out, ...k]");
    return [[1], [O], [K]];
  },
  float64: ([w, u], s, a) => {
    const { O, K } = dims('sn_sigma', s[0], s);
    const eps = a.eps ?? 1e-12;
    const v = new Float64Array(K);
    for (let o = 0; o < O; o++) for (let k = 0; k < K; k++) v[k] += w[o * K + k] * u[o];
    const nv = Math.max(norm(v), eps);
    for (let k = 0; k < K; k++) v[k] /= nv;
    const t = new Float64Array(O);
    for (let o = 0; o < O; o++) for (let k = 0; k < K; k++) t[o] += w[o * K + k] * v[k];
    const nu = Math.max(norm(t), eps);
    const u2 = t.map((x) => x / nu);
    let sigma = 0;
    for (let o = 0; o < O; o++) sigma += u2[o] * t[o];
    return [Float64Array.of(sigma), u2, v];
  },
  grad: (em, { inputs: [w], outputs: [, u2, v], dOutputs: [ds] }) => [ds && em.call('sn_sigma_grad', [ds, u2, v], { shape: em.shape(w) })[0], null],
  wgsl: (s, a, t = CORE_WGSL) => {
    const { O, K } = dims('sn_sigma', s[0], s);
    const eps = f32lit(a.eps ?? 1e-12);
    // Wᵀu in row chunks: R rows per chunk, a thread per (column, chunk), partials in scratch;
    // chunking keeps tall weights (e.g. the decoder's linear [7680, 512]) from running on only
    // K threads that each walk every row.
    const chunks = Math.min(Math.ceil(O / 16), Math.max(1, Math.ceil(65536 / K)));
    const R = Math.ceil(O / chunks);
    // Buffers: w0 u1 | σ2 u'3 v4 (3 is 1's buffer) | partials5. u is read only by the first
    // pass, so the third pass can keep W v in u' until the last pass normalises it.
    return {
      scratch: [chunks * K],
      passes: [
        {
          // Neighbouring threads read neighbouring columns, so every row is read coalesced.
          bindings: [0, 1, 5],
          workgroups: [Math.ceil(K / 256), chunks, 1],
          code: `${binding(0, 'W')}
${binding(1, 'U')}
${binding(2, 'P', true)}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  if (k >= ${K}u) { return; }
  let o0 = gid.y * ${R}u;
  let o1 = min(o0 + ${R}u, ${O}u);
  var acc = 0.0;
  for (var o = o0; o < o1; o++) { acc += W[o * ${K}u + k] * U[o]; }
  P[gid.y * ${K}u + k] = acc;
}`,
        },
        {
          bindings: [5, 4],
          workgroups: [1, 1, 1],
          code: `${WG_SUM(t)}
${binding(0, 'P')}
${binding(1, 'V', true)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  var acc = 0.0;
  for (var k = l.x; k < ${K}u; k += 256u) {
    var t = 0.0;
    for (var c = 0u; c < ${chunks}u; c++) { t += P[c * ${K}u + k]; }
    V[k] = t;
    acc += t * t;
  }
  let scale = 1.0 / max(sqrt(wg_sum(acc, l.x)), ${eps});
  for (var k = l.x; k < ${K}u; k += 256u) { V[k] = V[k] * scale; }
}`,
        },
        {
          // W v: a workgroup per row, its threads stride along the row and reduce in shared memory.
          bindings: [0, 4, 3],
          workgroups: [O, 1, 1],
          code: `${WG_SUM(t)}
${binding(0, 'W')}
${binding(1, 'V')}
${binding(2, 'T', true)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.x * ${K}u;
  var acc = 0.0;
  for (var k = l.x; k < ${K}u; k += 256u) { acc += W[row + k] * V[k]; }
  let t = wg_sum(acc, l.x);
  if (l.x == 0u) { T[wid.x] = t; }
}`,
        },
        {
          bindings: [3, 2],
          workgroups: [1, 1, 1],
          code: `${WG_SUM(t)}
${binding(0, 'T', true)}
${binding(1, 'SIGMA', true)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  var acc = 0.0;
  for (var o = l.x; o < ${O}u; o += 256u) { acc += T[o] * T[o]; }
  let scale = 1.0 / max(sqrt(wg_sum(acc, l.x)), ${eps});
  // σ = u'ᵀ(W v) with u' = scale·(W v), summed from the normalised values as the reference does.
  acc = 0.0;
  for (var o = l.x; o < ${O}u; o += 256u) { let t = T[o]; let un = t * scale; acc += un * t; T[o] = un; }
  let sigma = wg_sum(acc, l.x);
  if (l.x == 0u) { SIGMA[0] = sigma; }
}`,
        },
      ],
    };
  },
  wasm: (s, a) => {
    const { O, K } = dims('sn_sigma', s[0], s);
    const eps = a.eps ?? 1e-12;
    return { run: (k, [w, u, sigma, , v]) => void k.sn_sigma(w, u, sigma, v, O, K, eps) };
  },
};

export interface SnGradAttrs {
  /** The weight's shape (dW takes it). */
  shape: Shape;
  [k: string]: unknown;
}

/** dW = dσ · u' vᵀ, shaped like the weight. */
export const snSigmaGrad: OpDef<SnGradAttrs> = {
  name: 'sn_sigma_grad',
  shape: (s, a) => {
    const { O, K } = dims('sn_sigma_grad', a.shape, s);
    if (numel(s[0]) !== 1 || s[1].length !== 1 || s[1][0] !== O || s[2].length !== 1 || s[2][0] !== K)
      throw new OpError('sn_sigma_grad', `expects dσ [1], u' [${O}] and v [${K}] for a weight ${fmtShape(a.shape)}`, s);
    return [[...a.shape]];
  },
  float64: ([ds, u, v], s, a) => {
    const { O, K } = dims('sn_sigma_grad', a.shape, s);
    const out = new Float64Array(O * K);
    for (let o = 0; o < O; o++) for (let k = 0; k < K; k++) out[o * K + k] = ds[0] * u[o] * v[k];
    return [out];
  },
  wgsl: (s, a) => {
    const { K } = dims('sn_sigma_grad', a.shape, s);
    const n = numel(a.shape);
    return {
      passes: [
        {
          bindings: [0, 1, 2, 3],
          workgroups: grid1d(n),
          code: `${binding(0, 'DS')}
${binding(1, 'U')}
${binding(2, 'V')}
${binding(3, 'DW', true)}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let o = i / ${K}u;
  DW[i] = DS[0] * U[o] * V[i - o * ${K}u];
}`,
        },
      ],
    };
  },
  wasm: (s, a) => {
    const { O, K } = dims('sn_sigma_grad', a.shape, s);
    return { run: (k, [ds, u, v, dw]) => void k.sn_sigma_grad(ds, u, v, dw, O, K) };
  },
};

export const spectralOps: OpDef<any>[] = [snSigma, snSigmaGrad];
