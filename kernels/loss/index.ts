// The VAE objective's pieces: the reconstruction error `sse`, the per-dimension KL term `kld`
// and the reparameterisation `reparam`, each with a fused gradient op.

import type { OpDef, Shape } from '../types.ts';
import { CORE_WGSL, OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, WG_SUM, grid1d, linearMain } from '../wgsl.ts';

const sameShape = (op: string, s: Shape[], names: string[]): void => {
  for (let i = 1; i < names.length; i++)
    if (s[i].length !== s[0].length || s[i].some((d, k) => d !== s[0][k]))
      throw new OpError(op, `${names[0]} ${fmtShape(s[0])} and ${names[i]} ${fmtShape(s[i])} must have the same shape`, s, 'Reshape or slice the inputs so they match');
};

const binding = (i: number, name: string, rw = false): string =>
  `@group(0) @binding(${i}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<f32>;`;

/** One elementwise pass over n elements: `names` bound in order, last `nOut` read_write. */
function elementwisePass(n: number, names: string[], nOut: number, body: string) {
  return {
    bindings: names.map((_, i) => i),
    workgroups: grid1d(n),
    code: `${names.map((nm, i) => binding(i, nm, i >= names.length - nOut)).join('\n')}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  ${body}
}`,
  };
}

// ---- sse: Σ (xhat − x)² -------------------------------------------------------------------

/** Partial sums per workgroup: enough groups to fill a GPU, few enough for one final group. */
const SSE_GROUPS = (n: number): number => Math.max(1, Math.min(256, Math.ceil(n / 4096)));

export const sse: OpDef<{}> = {
  name: 'sse',
  shape: (s) => {
    sameShape('sse', s, ['xhat', 'x']);
    return [[1]];
  },
  float64: ([xh, x]) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += (xh[i] - x[i]) ** 2;
    return [Float64Array.of(s)];
  },
  grad: (em, { inputs: [xh, x], dOutputs: [ds] }) => (ds ? em.call('sse_grad', [xh, x, ds]) : [null, null]),
  wgsl: ([s], _, t = CORE_WGSL) => {
    const n = numel(s);
    const g = SSE_GROUPS(n);
    // Two passes: g workgroups write partial sums to scratch, one workgroup adds them up.
    return {
      scratch: [g],
      passes: [
        {
          bindings: [0, 1, 3],
          workgroups: [g, 1, 1],
          code: `${WG_SUM(t)}
${binding(0, 'XH')}
${binding(1, 'X')}
${binding(2, 'P', true)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  var acc = 0.0;
  for (var i = wid.x * 256u + lid.x; i < ${n}u; i += ${g * 256}u) { let d = XH[i] - X[i]; acc += d * d; }
  let t = wg_sum(acc, lid.x);
  if (lid.x == 0u) { P[wid.x] = t; }
}`,
        },
        {
          bindings: [3, 2],
          workgroups: [1, 1, 1],
          code: `${WG_SUM(t)}
${binding(0, 'P')}
${binding(1, 'S', true)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < ${g}u; i += 256u) { acc += P[i]; }
  let t = wg_sum(acc, lid.x);
  if (lid.x == 0u) { S[0] = t; }
}`,
        },
      ],
    };
  },
  wasm: ([s]) => ({ run: (k, [xh, x, out]) => void k.sse(xh, x, out, numel(s)) }),
};

/** Gradient of sse: dxhat = 2·ds·(xhat − x), dx = −dxhat. */
export const sseGrad: OpDef<{}> = {
  name: 'sse_grad',
  shape: (s) => {
    sameShape('sse_grad', s, ['xhat', 'x']);
    if (numel(s[2]) !== 1) throw new OpError('sse_grad', `ds must hold one value, got ${fmtShape(s[2])}`, s);
    return [s[0], s[0]];
  },
  float64: ([xh, x, ds]) => {
    const a = xh.map((v, i) => 2 * ds[0] * (v - x[i]));
    return [a, a.map((v) => -v)];
  },
  wgsl: ([s]) => ({
    passes: [elementwisePass(numel(s), ['XH', 'X', 'DS', 'DXH', 'DX'], 2, 'let d = 2.0 * DS[0] * (XH[i] - X[i]);\n  DXH[i] = d;\n  DX[i] = -d;')],
  }),
  wasm: ([s]) => ({ run: (k, [xh, x, ds, dxh, dx]) => void k.sse_grad(xh, x, ds, dxh, dx, numel(s)) }),
};

// ---- kld: −½(1 + lv − μ² − exp(lv)) per element --------------------------------------------

export const kld: OpDef<{}> = {
  name: 'kld',
  shape: (s) => {
    sameShape('kld', s, ['mu', 'logvar']);
    return [s[0]];
  },
  float64: ([mu, lv]) => [mu.map((m, i) => -0.5 * (1 + lv[i] - m * m - Math.exp(lv[i])))],
  grad: (em, { inputs: [mu, lv], dOutputs: [dy] }) => (dy ? em.call('kld_grad', [mu, lv, dy]) : [null, null]),
  wgsl: ([s]) => ({
    passes: [elementwisePass(numel(s), ['MU', 'LV', 'Y'], 1, 'let m = MU[i];\n  let l = LV[i];\n  Y[i] = -0.5 * (1.0 + l - m * m - exp(l));')],
  }),
  wasm: ([s]) => ({ run: (k, [mu, lv, y]) => void k.kld(mu, lv, y, numel(s)) }),
};

/** Gradient of kld: dμ = dy·μ, dlogvar = ½·dy·(exp(lv) − 1). */
export const kldGrad: OpDef<{}> = {
  name: 'kld_grad',
  shape: (s) => {
    sameShape('kld_grad', s, ['mu', 'logvar', 'dy']);
    return [s[0], s[0]];
  },
  float64: ([mu, lv, dy]) => [mu.map((m, i) => dy[i] * m), lv.map((l, i) => 0.5 * dy[i] * (Math.exp(l) - 1))],
  wgsl: ([s]) => ({
    passes: [elementwisePass(numel(s), ['MU', 'LV', 'DY', 'DMU', 'DLV'], 2, 'let g = DY[i];\n  DMU[i] = g * MU[i];\n  DLV[i] = 0.5 * g * (exp(LV[i]) - 1.0);')],
  }),
  wasm: ([s]) => ({ run: (k, [mu, lv, dy, dmu, dlv]) => void k.kld_grad(mu, lv, dy, dmu, dlv, numel(s)) }),
};

// ---- reparam: z = μ + ε·exp(½·lv) ------------------------------------------------------------

export const reparam: OpDef<{}> = {
  name: 'reparam',
  shape: (s) => {
    sameShape('reparam', s, ['mu', 'logvar', 'eps']);
    return [s[0]];
  },
  float64: ([mu, lv, e]) => [mu.map((m, i) => m + e[i] * Math.exp(0.5 * lv[i]))],
  // dμ = dz itself (identity), the rest fused.
  grad: (em, { inputs: [, lv, e], dOutputs: [dz] }) => {
    if (!dz) return [null, null, null];
    const [dlv, de] = em.call('reparam_grad', [lv, e, dz]);
    return [dz, dlv, de];
  },
  wgsl: ([s]) => ({
    passes: [elementwisePass(numel(s), ['MU', 'LV', 'E', 'Z'], 1, 'Z[i] = MU[i] + E[i] * exp(0.5 * LV[i]);')],
  }),
  wasm: ([s]) => ({ run: (k, [mu, lv, e, z]) => void k.reparam(mu, lv, e, z, numel(s)) }),
};

/** Gradient of reparam w.r.t. logvar and ε: dlv = ½·dz·ε·exp(½lv), dε = dz·exp(½lv). */
export const reparamGrad: OpDef<{}> = {
  name: 'reparam_grad',
  shape: (s) => {
    sameShape('reparam_grad', s, ['logvar', 'eps', 'dz']);
    return [s[0], s[0]];
  },
  float64: ([lv, e, dz]) => {
    const de = dz.map((g, i) => g * Math.exp(0.5 * lv[i]));
    return [de.map((d, i) => 0.5 * d * e[i]), de];
  },
  wgsl: ([s]) => ({
    passes: [elementwisePass(numel(s), ['LV', 'E', 'DZ', 'DLV', 'DE'], 2, 'let d = DZ[i] * exp(0.5 * LV[i]);\n  DLV[i] = 0.5 * d * E[i];\n  DE[i] = d;')],
  }),
  wasm: ([s]) => ({ run: (k, [lv, e, dz, dlv, de]) => void k.reparam_grad(lv, e, dz, dlv, de, numel(s)) }),
};

export const lossOps: OpDef<any>[] = [sse, sseGrad, kld, kldGrad, reparam, reparamGrad];
