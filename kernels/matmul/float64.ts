// Float64 reference of matmul: y = op(a)·op(b) + bias, op = transpose where asked.

import type { Attrs, Shape } from '../types.ts';
import { OpError, fmtShape } from '../types.ts';

export interface MatmulAttrs extends Attrs {
  transA?: boolean;
  transB?: boolean;
}

export interface MatmulGeom {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** a [M,K] (transA: [K,M]), b [K,N] (transB: [N,K]), bias [N]? → y [M,N]. */
export function matmulGeom(shapes: Shape[], attrs: MatmulAttrs): MatmulGeom {
  const [a, b, bias] = shapes;
  if (!a || !b || shapes.length > 3) throw new OpError('matmul', 'takes a, b and an optional bias', shapes);
  if (a.length !== 2 || b.length !== 2) throw new OpError('matmul', 'a and b must be matrices (rank 2)', shapes, 'reshape batched operands to 2D first');
  for (const k of ['transA', 'transB'] as const)
    if (attrs[k] !== undefined && typeof attrs[k] !== 'boolean') throw new OpError('matmul', `attribute ${k} must be a boolean, got ${JSON.stringify(attrs[k])}`, shapes);
  const transA = !!attrs.transA;
  const transB = !!attrs.transB;
  const [M, K] = transA ? [a[1], a[0]] : [a[0], a[1]];
  const [Kb, N] = transB ? [b[1], b[0]] : [b[0], b[1]];
  if (K !== Kb)
    throw new OpError('matmul', `inner sizes differ: op(a) is ${fmtShape([M, K])}, op(b) is ${fmtShape([Kb, N])} (transA ${transA}, transB ${transB})`, shapes, 'check the operands or the trans flags');
  if (bias && (bias.length !== 1 || bias[0] !== N)) throw new OpError('matmul', `bias must be [${N}], got ${fmtShape(bias)}`, shapes);
  return { M, N, K, transA, transB };
}

export function matmulRef(a: Float64Array, b: Float64Array, bias: Float64Array | null, aShape: Shape, bShape: Shape, attrs: MatmulAttrs = {}): Float64Array {
  const { M, N, K, transA, transB } = matmulGeom(bias ? [aShape, bShape, [bias.length]] : [aShape, bShape], attrs);
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]);
      y[m * N + n] = s;
    }
  return y;
}
