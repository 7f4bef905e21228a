// FLOPs of a lowered Program, counted launch by launch from the shapes the compiler planned.
// Only the ops that carry the arithmetic are counted (conv, conv_transpose, conv_grad_weight,
// matmul: FLOPs = 2 × multiply-adds); elementwise ops, BatchNorm, spectral norm's matrix-vector
// products and Adam are memory-bound and add < 2 % here, so GFLOP/s figures stay comparable
// with the per-kernel rows of `npm run bench` and with the paper-style "4.6 GFLOP per image".

import type { Launch, Program } from '../compiler/plan.ts';
import type { Attrs, Shape } from '../kernels/types.ts';
import { getOp } from '../kernels/registry.ts';

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** A per-dimension attribute (a number applies to every spatial dimension). */
const perDim = (a: Attrs[string] | undefined, d: number, dflt: number): number[] => {
  if (a === undefined) return new Array(d).fill(dflt);
  if (typeof a === 'number') return new Array(d).fill(a);
  if (Array.isArray(a)) return a.map(Number);
  throw new Error(`flops: attribute ${JSON.stringify(a)} is not a number or a list`);
};

/** FLOPs of one launch; 0 for ops that are not counted. */
export function launchFlops(l: Pick<Launch, 'op' | 'attrs' | 'inShapes'>): number {
  const s: readonly Shape[] = l.inShapes;
  switch (l.op) {
    case 'conv': {
      // x [B,Ci,…S], w [Co,Ci,…K]: every output voxel of every Co does Ci·∏K multiply-adds.
      const [x, w] = s;
      const S = x.slice(2);
      const K = w.slice(2);
      const st = perDim(l.attrs.stride, S.length, 1);
      const p = perDim(l.attrs.pad, S.length, 0);
      const O = S.map((n, i) => Math.floor((n + 2 * p[i] - K[i]) / st[i]) + 1);
      return 2 * x[0] * w[0] * x[1] * prod(K) * prod(O);
    }
    case 'conv_transpose': {
      // x [B,Ci,…S], w [Ci,Co,…K]: every input voxel scatters into Co·∏K outputs.
      const [x, w] = s;
      return 2 * x[0] * x[1] * w[1] * prod(w.slice(2)) * prod(x.slice(2));
    }
    case 'conv_grad_weight': {
      // x [B,Ci,…S], dy [B,Co,…O] → dw [Co,Ci,…K]: the same multiply-adds as the forward conv.
      const [x, dy] = s;
      const K = perDim(l.attrs.kernel, x.length - 2, 1);
      return 2 * x[0] * x[1] * dy[1] * prod(K) * prod(dy.slice(2));
    }
    case 'matmul': {
      // a [M,K] (transA: [K,M]), b [K,N] (transB: [N,K]).
      const [a, b] = s;
      const [M, K] = l.attrs.transA ? [a[1], a[0]] : [a[0], a[1]];
      const N = l.attrs.transB ? b[0] : b[1];
      return 2 * M * N * K;
    }
    default:
      return 0;
  }
}

export interface ProgramFlops {
  total: number;
  /** FLOPs and launch count per counted op. */
  byOp: Record<string, { flops: number; launches: number }>;
}

export function programFlops(p: Pick<Program, 'launches'>): ProgramFlops {
  const byOp: ProgramFlops['byOp'] = {};
  let total = 0;
  for (const l of p.launches) {
    const f = launchFlops(l);
    if (f === 0) continue;
    const e = (byOp[l.op] ??= { flops: 0, launches: 0 });
    e.flops += f;
    e.launches++;
    total += f;
  }
  return { total, byOp };
}

/**
 * FLOPs one launch really executes on WebGPU: the sum of its WGSL plan's passes' `flops` (each
 * GEMM's 2·M·N·K, multiplies by zeros its loaders supply included). Next to launchFlops (the
 * dense count) it shows wasted work, e.g. a transposed conv that gathers over a dilated input.
 */
export function wgslPlanFlops(l: Pick<Launch, 'op' | 'attrs' | 'inShapes'>): number {
  return getOp(l.op).wgsl(l.inShapes, l.attrs).passes.reduce((s, p) => s + (p.flops ?? 0), 0);
}
