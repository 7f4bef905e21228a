// BatchNorm over every axis but 1 (PyTorch's BatchNorm1d/2d/3d, affine, track_running_stats).
// x is [B, C, ...S]; a channel's N = B·∏S values are (b·C + c)·S + s.
//  training: mean, biased var → y = (x − mean)·invstd·γ + β with invstd = 1/√(var + eps);
//            running_mean ← (1 − m)·rm + m·mean, running_var ← (1 − m)·rv + m·var·N/(N − 1)
//            (updated in place on the device; outputs [y, mean, invstd, rm', rv']).
//  eval:     y = (x − rm)/√(rv + eps)·γ + β; output [y].
// The gradient is the fused `batchnorm_grad` (dx, dγ, dβ); the running statistics get none, and
// nor do the mean/invstd outputs (they are saved for the backward pass, not used downstream).

import type { OpDef, Shape, WgslPass, WgslTarget } from '../types.ts';
import { CORE_WGSL, OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, WG_SUM, f32lit, grid1d, linearMain } from '../wgsl.ts';
import { pointwiseOp } from '../elementwise/pointwise.ts';

export interface BatchNormAttrs {
  training?: boolean;
  eps?: number;
  momentum?: number;
  [k: string]: unknown;
}

interface Dims {
  B: number;
  C: number;
  S: number;
  N: number;
}

const MAX_CHANNELS = 65535; // one workgroup per channel along one grid dimension

function dims(op: string, s: Shape[], perChannel: [number, string][], training: boolean): Dims {
  const x = s[0];
  if (x.length < 2) throw new OpError(op, `x must be [B, C, ...spatial], got ${fmtShape(x)}`, s, 'Add a batch axis');
  const [B, C] = x;
  const S = numel(x.slice(2));
  if (C > MAX_CHANNELS) throw new OpError(op, `${C} channels exceed the ${MAX_CHANNELS} this kernel handles`, s);
  for (const [i, name] of perChannel)
    if (s[i].length !== 1 || s[i][0] !== C) throw new OpError(op, `${name} must be [${C}] (one value per channel of x), got ${fmtShape(s[i])}`, s, `Give ${name} the length of x's axis 1`);
  if (training && B * S < 2) throw new OpError(op, `training needs more than one value per channel, got x ${fmtShape(x)}`, s, 'Use a batch of at least 2, or eval mode');
  return { B, C, S, N: B * S };
}

const binding = (i: number, name: string, rw = false): string =>
  `@group(0) @binding(${i}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<f32>;`;

/**
 * A channel's N values are split into G slices of L, one workgroup each (grid [G, C]), so that a
 * few channels of millions of values still fill the GPU; per-slice partials are merged after.
 */
const slices = (N: number): { G: number; L: number } => {
  const G = Math.min(64, Math.max(1, Math.ceil(N / 16384)));
  return { G, L: Math.ceil(N / G) };
};

/** Body head of a slice-reduction kernel (after its bindings): `c`, `g` (slice), `lid`, and the slice's range [j0, j1). */
const sliceMain = ({ C, S, N }: Dims, t: WgslTarget): string => {
  const { L } = slices(N);
  return `fn at(c: u32, j: u32) -> u32 { let b = j / ${S}u; return (b * ${C}u + c) * ${S}u + (j - b * ${S}u); }
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = wid.x;
  let c = wid.y;
  let lid = l.x;
  let j0 = g * ${L}u;
  let j1 = min(j0 + ${L}u, ${N}u);`;
};

const channelOf = ({ C, S }: Dims) => `(i / ${S}u) % ${C}u`;

/** Buffer indices of the statistics passes; γ and scale: also write scale = invstd·γ. */
interface StatsBuffers {
  x: number;
  partials: number;
  mean: number;
  invstd: number;
  rm: number;
  rv: number;
  g?: number;
  scale?: number;
}

/**
 * Training statistics in two passes (per slice, then per channel): mean, invstd, the running
 * statistics updated in place, and, when asked, scale = invstd·γ.
 */
function statsPasses(d: Dims, a: BatchNormAttrs, b: StatsBuffers, t: WgslTarget): WgslPass[] {
  const eps = f32lit(a.eps ?? 1e-5);
  const mom = a.momentum ?? 0.1;
  const { G, L } = slices(d.N);
  const scale = b.g !== undefined && b.scale !== undefined;
  return [
    {
      // Per slice: its mean, then Σ(x − mean)² (two passes over the slice: one pass of
      // Σx² − (Σx)²/n cancels catastrophically in f32 when |mean| ≫ std).
      bindings: [b.x, b.partials],
      workgroups: [G, d.C, 1],
      code: `${WG_SUM(t)}
${binding(0, 'X')}
${binding(1, 'P', true)}
${sliceMain(d, t)}
  var acc = 0.0;
  for (var j = j0 + lid; j < j1; j += 256u) { acc += X[at(c, j)]; }
  let mean = wg_sum(acc, lid) / f32(j1 - j0);
  acc = 0.0;
  for (var j = j0 + lid; j < j1; j += 256u) { let t = X[at(c, j)] - mean; acc += t * t; }
  let m2 = wg_sum(acc, lid);
  if (lid == 0u) { P[(c * ${G}u + g) * 2u] = mean; P[(c * ${G}u + g) * 2u + 1u] = m2; }
}`,
    },
    {
      // Per channel, merge the slices exactly (Chan et al.): M2 = Σ M2_g + Σ n_g (mean_g − mean)².
      bindings: [b.partials, b.mean, b.invstd, b.rm, b.rv, ...(scale ? [b.g!, b.scale!] : [])],
      workgroups: grid1d(d.C, 64),
      code: `${binding(0, 'P')}
${binding(1, 'MEAN', true)}
${binding(2, 'INVSTD', true)}
${binding(3, 'RM', true)}
${binding(4, 'RV', true)}
${scale ? `${binding(5, 'G')}\n${binding(6, 'SCALE', true)}` : ''}
${linearMain(64)} {
  let c = ${LINEAR_INDEX};
  if (c >= ${d.C}u) { return; }
  var mean = 0.0;
  for (var g = 0u; g < ${G}u; g++) { mean += f32(min(${L}u, ${d.N}u - g * ${L}u)) * P[(c * ${G}u + g) * 2u]; }
  mean = mean / f32(${d.N}u);
  var sq = 0.0;
  for (var g = 0u; g < ${G}u; g++) {
    let t = P[(c * ${G}u + g) * 2u] - mean;
    sq += P[(c * ${G}u + g) * 2u + 1u] + f32(min(${L}u, ${d.N}u - g * ${L}u)) * t * t;
  }
  let inv = 1.0 / sqrt(sq / f32(${d.N}u) + ${eps});
  MEAN[c] = mean;
  INVSTD[c] = inv;
  RM[c] = ${f32lit(1 - mom)} * RM[c] + ${f32lit(mom)} * mean;
  RV[c] = ${f32lit(1 - mom)} * RV[c] + ${f32lit(mom / (d.N - 1))} * sq;${scale ? '\n  SCALE[c] = inv * G[c];' : ''}
}`,
    },
  ];
}

export const batchnorm: OpDef<BatchNormAttrs> = {
  name: 'batchnorm',
  inplace: { 3: 3, 4: 4 },
  shape: (s, a) => {
    if (s.length !== 5) throw new OpError('batchnorm', `takes 5 inputs (x, gamma, beta, running_mean, running_var), got ${s.length}`, s);
    dims('batchnorm', s, [[1, 'gamma'], [2, 'beta'], [3, 'running_mean'], [4, 'running_var']], a.training ?? true);
    if (!(a.training ?? true)) return [s[0]];
    const C = [s[0][1]];
    return [s[0], C, C, C, C];
  },
  float64: ([x, g, bt, rm, rv], s, a) => {
    const { C, S, N } = dims('batchnorm', s, [], false);
    const eps = a.eps ?? 1e-5;
    const mom = a.momentum ?? 0.1;
    const train = a.training ?? true;
    const mean = new Float64Array(C);
    const invstd = new Float64Array(C);
    const rm2 = rm.slice();
    const rv2 = rv.slice();
    for (let c = 0; c < C; c++) {
      if (!train) {
        mean[c] = rm[c];
        invstd[c] = 1 / Math.sqrt(rv[c] + eps);
        continue;
      }
      let sum = 0;
      for (let j = 0; j < N; j++) sum += x[(Math.floor(j / S) * C + c) * S + (j % S)];
      const m = sum / N;
      let sq = 0;
      for (let j = 0; j < N; j++) sq += (x[(Math.floor(j / S) * C + c) * S + (j % S)] - m) ** 2;
      mean[c] = m;
      invstd[c] = 1 / Math.sqrt(sq / N + eps);
      rm2[c] = (1 - mom) * rm[c] + mom * m;
      rv2[c] = (1 - mom) * rv[c] + (mom * sq) / (N - 1);
    }
    const y = x.map((v, i) => {
      const c = Math.floor(i / S) % C;
      return (v - mean[c]) * invstd[c] * g[c] + bt[c];
    });
    return train ? [y, mean, invstd, rm2, rv2] : [y];
  },
  grad: (em, { inputs: [x, g, , rm, rv], outputs, dOutputs: [dy], attrs }) => {
    if (!dy) return [null, null, null, null, null];
    const train = attrs.training ?? true;
    const [dx, dg, db] = train
      ? em.call('batchnorm_grad', [x, dy, outputs[1], outputs[2], g], { training: true })
      : em.call('batchnorm_grad', [x, dy, rm, rv, g], { training: false, eps: attrs.eps ?? 1e-5 });
    return [dx, dg, db, null, null];
  },
  wgsl: (s, a, t = CORE_WGSL) => {
    const d = dims('batchnorm', s, [], false);
    const n = numel(s[0]);
    const eps = f32lit(a.eps ?? 1e-5);
    if (!(a.training ?? true)) {
      // Buffers: x0 γ1 β2 rm3 rv4 | y5.
      return {
        passes: [
          {
            bindings: [0, 1, 2, 3, 4, 5],
            workgroups: grid1d(n),
            code: `${['X', 'G', 'BT', 'RM', 'RV'].map((nm, i) => binding(i, nm)).join('\n')}
${binding(5, 'Y', true)}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let c = ${channelOf(d)};
  Y[i] = (X[i] - RM[c]) * (1.0 / sqrt(RV[c] + ${eps})) * G[c] + BT[c];
}`,
          },
        ],
      };
    }
    // Buffers: x0 γ1 β2 rm3 rv4 | y5 mean6 invstd7 rm'8 rv'9 | partials10, where 8 and 9 are 3
    // and 4: the merge pass binds them once, read_write, under the output indices.
    return {
      scratch: [d.C * slices(d.N).G * 2],
      passes: [
        ...statsPasses(d, a, { x: 0, partials: 10, mean: 6, invstd: 7, rm: 8, rv: 9 }, t),
        {
          bindings: [0, 1, 2, 6, 7, 5],
          workgroups: grid1d(n),
          code: `${['X', 'G', 'BT', 'MEAN', 'INVSTD'].map((nm, i) => binding(i, nm)).join('\n')}
${binding(5, 'Y', true)}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let c = ${channelOf(d)};
  Y[i] = (X[i] - MEAN[c]) * INVSTD[c] * G[c] + BT[c];
}`,
        },
      ],
    };
  },
  wasm: (s, a) => {
    const { B, C, S } = dims('batchnorm', s, [], false);
    const eps = a.eps ?? 1e-5;
    const mom = a.momentum ?? 0.1;
    if (!(a.training ?? true)) return { run: (k, [x, g, bt, rm, rv, y]) => void k.bn_apply(x, g, bt, rm, rv, y, B, C, S, 1, eps) };
    return {
      run: (k, [x, g, bt, , , y, mean, invstd, rm, rv]) => {
        k.bn_stats(x, mean, invstd, rm, rv, B, C, S, eps, mom);
        k.bn_apply(x, g, bt, mean, invstd, y, B, C, S, 0, eps);
      },
    };
  },
};

/**
 * Training BatchNorm's per-channel half, for the split form the fusion pass makes
 * (compiler/fuse-bn.ts): y = (x − mean)·scale + β then runs as elementwise ops that fuse with
 * the adds and the activation after it. Inputs x, γ, running_mean, running_var (attrs as
 * batchnorm's); outputs [mean, invstd, scale = invstd·γ, rm', rv'], the running statistics
 * updated in place (mean and invstd are what batchnorm_grad takes). The statistics and the f32
 * operations are batchnorm's, so the split apply gives batchnorm's bits on Wasm; on WebGPU
 * scale = invstd·γ is rounded once before the multiply (batchnorm multiplies by invstd, then γ).
 */
export const batchnormStats: OpDef<BatchNormAttrs> = {
  name: 'batchnorm_stats',
  inplace: { 3: 2, 4: 3 },
  shape: (s, a) => {
    if (s.length !== 4) throw new OpError('batchnorm_stats', `takes 4 inputs (x, gamma, running_mean, running_var), got ${s.length}`, s);
    if (a.training === false) throw new OpError('batchnorm_stats', 'is training BatchNorm only (eval mode is a per-channel affine: no statistics)', s);
    dims('batchnorm_stats', s, [[1, 'gamma'], [2, 'running_mean'], [3, 'running_var']], true);
    const C = [s[0][1]];
    return [C, C, C, C, C];
  },
  float64: ([x, g, rm, rv], s, a) => {
    const [, mean, invstd, rm2, rv2] = batchnorm.float64([x, g, g, rm, rv], [s[0], s[1], s[1], s[2], s[3]], { ...a, training: true });
    return [mean, invstd, invstd.map((v, c) => v * g[c]), rm2, rv2];
  },
  wgsl: (s, a, t = CORE_WGSL) => {
    const d = dims('batchnorm_stats', s, [], false);
    // Buffers: x0 γ1 rm2 rv3 | mean4 invstd5 scale6 rm'7 rv'8 | partials9 (7 and 8 are 2 and 3).
    return {
      scratch: [d.C * slices(d.N).G * 2],
      passes: statsPasses(d, a, { x: 0, partials: 9, mean: 4, invstd: 5, rm: 7, rv: 8, g: 1, scale: 6 }, t),
    };
  },
  wasm: (s, a) => {
    const { B, C, S } = dims('batchnorm_stats', s, [], false);
    const eps = a.eps ?? 1e-5;
    const mom = a.momentum ?? 0.1;
    const mul = pointwiseOp('mul')!.opcode;
    return {
      run: (k, [x, g, , , mean, invstd, scale, rm, rv]) => {
        k.bn_stats(x, mean, invstd, rm, rv, B, C, S, eps, mom);
        k.ew_map(mul, invstd, g, scale, C, 0, 0); // the f32 product bn_apply forms
      },
    };
  },
};

export interface BatchNormGradAttrs {
  /** true: inputs 2, 3 are the batch mean and invstd; false (eval): running_mean and running_var. */
  training?: boolean;
  /** eval only: the eps that turns running_var into invstd. */
  eps?: number;
  [k: string]: unknown;
}

/**
 * The fused BatchNorm backward. With x̂ = (x − mean)·invstd, dβ = Σ dy, dγ = Σ dy·x̂ (per channel);
 * training: dx = γ·invstd·(dy − dβ/N − x̂·dγ/N); eval: dx = γ·invstd·dy.
 * Inputs x, dy, mean (or running_mean), invstd (or running_var), γ, and optionally a sixth,
 * `mask` (x's shape): then dy is relu's gradient folded in, dy where mask > 0, else 0 — the
 * fusion pass (compiler/fuse-bn.ts) passes the ReLU's output and its dy, so that relu_grad runs
 * no launch of its own and its result never goes through memory.
 */
export const batchnormGrad: OpDef<BatchNormGradAttrs> = {
  name: 'batchnorm_grad',
  shape: (s, a) => {
    if (s.length !== 5 && s.length !== 6) throw new OpError('batchnorm_grad', `takes 5 inputs (x, dy, mean, invstd, gamma) and optionally a 6th (mask), got ${s.length}`, s);
    for (const [k, name] of [[1, 'dy'], [5, 'mask']] as const)
      if (s[k] && (s[k].length !== s[0].length || s[k].some((v, i) => v !== s[0][i]))) throw new OpError('batchnorm_grad', `${name} ${fmtShape(s[k])} must have the shape of x ${fmtShape(s[0])}`, s);
    const train = a.training ?? true;
    dims('batchnorm_grad', s, [[2, train ? 'mean' : 'running_mean'], [3, train ? 'invstd' : 'running_var'], [4, 'gamma']], false);
    return [s[0], s[4], s[4]];
  },
  float64: ([x, dyIn, m, st, g, mask], s, a) => {
    const { C, S, N } = dims('batchnorm_grad', s, [], false);
    const train = a.training ?? true;
    const dy = mask ? dyIn.map((v, i) => (mask[i] > 0 ? v : 0)) : dyIn;
    const inv = train ? st : st.map((v) => 1 / Math.sqrt(v + (a.eps ?? 1e-5)));
    const chan = (i: number) => Math.floor(i / S) % C;
    const dg = new Float64Array(C);
    const db = new Float64Array(C);
    for (let i = 0; i < x.length; i++) {
      const c = chan(i);
      db[c] += dy[i];
      dg[c] += dy[i] * (x[i] - m[c]) * inv[c];
    }
    const dx = x.map((v, i) => {
      const c = chan(i);
      const xh = (v - m[c]) * inv[c];
      return train ? g[c] * inv[c] * (dy[i] - db[c] / N - (xh * dg[c]) / N) : g[c] * inv[c] * dy[i];
    });
    return [dx, dg, db];
  },
  wgsl: (s, a, t = CORE_WGSL) => {
    const d = dims('batchnorm_grad', s, [], false);
    const n = numel(s[0]);
    const train = a.training ?? true;
    const masked = s.length === 6;
    const inv = train ? 'ST[c]' : `(1.0 / sqrt(ST[c] + ${f32lit(a.eps ?? 1e-5)}))`;
    const { G } = slices(d.N);
    // Buffers: x0 dy1 mean2 invstd-or-rv3 γ4 [mask5] | dx dγ dβ | partials (Σdy, Σdy·(x − mean)
    // per slice), coefficients (per channel k = γ·invstd, cb = dβ/N, cg = dγ·invstd/N: dx =
    // k·(dy − cb − cg·(x − mean)), as the Wasm kernel forms it; eval: cb = cg = 0).
    const [DX, DG, DB, P, K] = [5, 6, 7, 8, 9].map((b) => b + (masked ? 1 : 0));
    const dyDecl = masked ? `${binding(1, 'DY_')}\n${binding(2, 'MASK')}\nfn dy(k: u32) -> f32 { return select(0.0, DY_[k], MASK[k] > 0.0); }` : `${binding(1, 'DY_')}\nfn dy(k: u32) -> f32 { return DY_[k]; }`;
    const dyBindings = masked ? [1, 5] : [1];
    const next = masked ? 3 : 2; // the binding after dy's
    return {
      scratch: [d.C * G * 2, d.C * 3],
      passes: [
        {
          bindings: [0, ...dyBindings, 2, P],
          workgroups: [G, d.C, 1],
          code: `${WG_SUM(t)}
${binding(0, 'X')}
${dyDecl}
${binding(next, 'M')}
${binding(next + 1, 'P', true)}
${sliceMain(d, t)}
  let m = M[c];
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var j = j0 + lid; j < j1; j += 256u) { let k = at(c, j); let g = dy(k); sdy += g; sdyx += g * (X[k] - m); }
  let tb = wg_sum(sdy, lid);
  let tg = wg_sum(sdyx, lid);
  if (lid == 0u) { P[(c * ${G}u + g) * 2u] = tb; P[(c * ${G}u + g) * 2u + 1u] = tg; }
}`,
        },
        {
          bindings: [P, 3, 4, DG, DB, K],
          workgroups: grid1d(d.C, 64),
          code: `${binding(0, 'P')}
${binding(1, 'ST')}
${binding(2, 'G')}
${binding(3, 'DG', true)}
${binding(4, 'DB', true)}
${binding(5, 'K', true)}
${linearMain(64)} {
  let c = ${LINEAR_INDEX};
  if (c >= ${d.C}u) { return; }
  var tb = 0.0;
  var tg = 0.0;
  for (var g = 0u; g < ${G}u; g++) { tb += P[(c * ${G}u + g) * 2u]; tg += P[(c * ${G}u + g) * 2u + 1u]; }
  let inv = ${inv};
  let dg = tg * inv;
  DB[c] = tb;
  DG[c] = dg;
  K[c * 3u] = G[c] * inv;
  K[c * 3u + 1u] = ${train ? `tb * ${f32lit(1 / d.N)}` : '0.0'};
  K[c * 3u + 2u] = ${train ? `dg * ${f32lit(1 / d.N)} * inv` : '0.0'};
}`,
        },
        {
          bindings: [0, ...dyBindings, 2, K, DX],
          workgroups: grid1d(n),
          code: `${binding(0, 'X')}
${dyDecl}
${binding(next, 'M')}
${binding(next + 1, 'K')}
${binding(next + 2, 'DX', true)}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let c = ${channelOf(d)};
  DX[i] = K[c * 3u] * (dy(i) - K[c * 3u + 1u] - K[c * 3u + 2u] * (X[i] - M[c]));
}`,
        },
      ],
    };
  },
  wasm: (s, a) => {
    const { B, C, S } = dims('batchnorm_grad', s, [], false);
    const ev = (a.training ?? true) ? 0 : 1;
    const eps = a.eps ?? 1e-5;
    const masked = s.length === 6;
    return {
      run: (k, bufs) => {
        const [x, dy, m, st, g] = bufs;
        const mask = masked ? bufs[5] : 0;
        const [dx, dg, db] = bufs.slice(masked ? 6 : 5);
        k.bn_grad_sums(x, dy, m, st, dg, db, B, C, S, ev, eps, mask);
        k.bn_grad_dx(x, dy, m, st, g, dg, db, dx, B, C, S, ev, eps, mask);
      },
    };
  },
};

export const batchnormOps: OpDef<any>[] = [batchnorm, batchnormStats, batchnormGrad];
