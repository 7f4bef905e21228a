// Adam, PyTorch's exact single-tensor formula (torch.optim.Adam, no weight decay, no amsgrad):
//   m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²
//   denom = sqrt(v) / sqrt(1 − β2^step) + eps;  p ← p − lr / (1 − β1^step) · m / denom
// p, m and v are updated in place. Every scalar, the step-dependent ones included, travels in
// the pass's uniform buffer so one pipeline serves every step and every learning rate.

import type { OpDef, Shape } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, grid1d, linearMain } from '../wgsl.ts';

export interface AdamAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1-based step count (the step being taken). */
  step: number;
  [k: string]: unknown;
}

/** The float64 scalars of one step, in the order the kernels take them. */
function scalars(a: AdamAttrs) {
  const bc1 = 1 - a.beta1 ** a.step;
  const bc2 = 1 - a.beta2 ** a.step;
  return { w1: 1 - a.beta1, beta2: a.beta2, w2: 1 - a.beta2, stepSize: a.lr / bc1, bc2Sqrt: Math.sqrt(bc2), eps: a.eps };
}

function check(s: Shape[], a: AdamAttrs): void {
  const names = ['p', 'g', 'm', 'v'];
  if (s.length !== 4) throw new OpError('adam', `takes 4 inputs (p, g, m, v), got ${s.length}`, s);
  for (let i = 1; i < 4; i++)
    if (numel(s[i]) !== numel(s[0]) || s[i].length !== s[0].length)
      throw new OpError('adam', `${names[i]} ${fmtShape(s[i])} must have the shape of p ${fmtShape(s[0])}`, s, 'Give the optimizer state the shape of its parameter');
  for (const k of ['lr', 'beta1', 'beta2', 'eps', 'step'] as const)
    if (typeof a[k] !== 'number' || !Number.isFinite(a[k])) throw new OpError('adam', `attribute ${k} must be a finite number, got ${String(a[k])}`, s);
  if (!Number.isInteger(a.step) || a.step < 1) throw new OpError('adam', `step must be an integer ≥ 1 (1-based), got ${a.step}`, s);
  if (!(a.beta1 >= 0 && a.beta1 < 1 && a.beta2 >= 0 && a.beta2 < 1)) throw new OpError('adam', `betas must lie in [0, 1), got (${a.beta1}, ${a.beta2})`, s);
}

export const adam: OpDef<AdamAttrs> = {
  name: 'adam',
  inplace: { 0: 0, 1: 2, 2: 3 },
  shape: (s, a) => {
    check(s, a);
    return [s[0], s[0], s[0]];
  },
  float64: ([p, g, m, v], _s, a) => {
    const c = scalars(a);
    const m2 = m.map((mi, i) => mi + c.w1 * (g[i] - mi));
    const v2 = v.map((vi, i) => c.beta2 * vi + c.w2 * g[i] * g[i]);
    const p2 = p.map((pi, i) => pi - (c.stepSize * m2[i]) / (Math.sqrt(v2[i]) / c.bc2Sqrt + c.eps));
    return [p2, m2, v2];
  },
  wgsl: ([s], a) => {
    const n = numel(s);
    const c = scalars(a);
    const uniform = new Float32Array([c.w1, c.beta2, c.w2, c.stepSize, c.bc2Sqrt, c.eps, 0, 0]).buffer;
    // Buffers: inputs p0 g1 m2 v3, outputs p'4 m'5 v'6 (4, 5, 6 alias 0, 2, 3): bind each once.
    return {
      passes: [
        {
          bindings: [4, 1, 5, 6],
          workgroups: grid1d(n),
          uniform,
          code: `struct Adam { w1: f32, beta2: f32, w2: f32, step_size: f32, bc2_sqrt: f32, eps: f32, pad0: f32, pad1: f32 }
@group(0) @binding(0) var<storage, read_write> P: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> M: array<f32>;
@group(0) @binding(3) var<storage, read_write> V: array<f32>;
@group(0) @binding(4) var<uniform> U: Adam;
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let g = G[i];
  let m = M[i] + U.w1 * (g - M[i]);
  let v = U.beta2 * V[i] + U.w2 * g * g;
  M[i] = m;
  V[i] = v;
  P[i] = P[i] - U.step_size * m / (sqrt(v) / U.bc2_sqrt + U.eps);
}`,
        },
      ],
    };
  },
  wasm: ([s], a) => {
    const n = numel(s);
    return {
      run: (k, [p, g, m, v]) => {
        const c = scalars(a);
        k.adam(p, g, m, v, n, c.w1, c.beta2, c.w2, c.stepSize, c.bc2Sqrt, c.eps);
      },
    };
  },
};

export const adamOps: OpDef<any>[] = [adam];
