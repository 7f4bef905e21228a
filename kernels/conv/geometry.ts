// Shape rules of the conv family. Every geometry is lifted to 3 spatial dims (missing leading
// dims get size 1, kernel 1, stride 1, pad 0) so the references and the WGSL loaders handle
// 1D, 2D and 3D with one code path.

import type { Attrs, Shape } from '../types.ts';
import { OpError, fmtShape } from '../types.ts';

export type Vec3 = [number, number, number];

export interface ConvAttrs extends Attrs {
  stride?: number | number[];
  pad?: number | number[];
}
export interface ConvTransposeAttrs extends ConvAttrs {
  outputPadding?: number | number[];
}
export interface ConvGradWeightAttrs extends ConvAttrs {
  kernel: number | number[];
}

/** A resolved convolution: `S` the input spatial size, `O` the output's, both lifted to 3D. */
export interface ConvGeom {
  rank: number;
  B: number;
  Ci: number;
  Co: number;
  S: Vec3;
  K: Vec3;
  O: Vec3;
  stride: Vec3;
  pad: Vec3;
}

export const vol = (v: Vec3): number => v[0] * v[1] * v[2];

/** Lifts a per-dim attribute (a number, or one value per spatial dim) to 3 dims. */
export function perDim(op: string, name: string, v: unknown, rank: number, fill: number, min: number, shapes: Shape[]): Vec3 {
  const arr = typeof v === 'number' ? new Array(rank).fill(v) : v;
  if (!Array.isArray(arr) || arr.length !== rank || !arr.every((n) => Number.isInteger(n) && n >= min))
    throw new OpError(op, `attribute ${name} must be an integer ≥ ${min} or an array of ${rank} such integers, got ${JSON.stringify(v)}`, shapes);
  return [...new Array(3 - rank).fill(fill), ...arr] as Vec3;
}

const lift = (s: Shape): Vec3 => [...new Array(3 - s.length).fill(1), ...s] as Vec3;

function checkImage(op: string, what: string, s: Shape, shapes: Shape[]): void {
  if (s.length < 3 || s.length > 5) throw new OpError(op, `${what} must be [B, C, ...spatial] with 1 to 3 spatial dims, got ${fmtShape(s)}`, shapes);
}

function checkWeight(op: string, x: Shape, w: Shape, shapes: Shape[], layout: string): void {
  if (w.length !== x.length)
    throw new OpError(op, `weight must be ${layout} with as many spatial dims as x (rank ${x.length}), got rank ${w.length}`, shapes, 'give the weight one kernel size per spatial dim of x');
}

function checkBias(op: string, shapes: Shape[], co: number): void {
  const b = shapes[2];
  if (b && (b.length !== 1 || b[0] !== co)) throw new OpError(op, `bias must be [${co}] (one per output channel), got ${fmtShape(b)}`, shapes);
}

function checkOut(op: string, O: Vec3, shapes: Shape[], hint: string): void {
  if (O.some((o) => o < 1)) throw new OpError(op, `the output would be empty (spatial size ${O.join('×')}): the kernel is larger than the padded input`, shapes, hint);
}

/** conv: x [B,Ci,...S], w [Co,Ci,...K], bias [Co]? → y [B,Co,...O], O = ⌊(S+2p−K)/s⌋+1. */
export function convGeom(shapes: Shape[], attrs: ConvAttrs, op = 'conv'): ConvGeom {
  const [x, w] = shapes;
  if (!x || !w || shapes.length > 3) throw new OpError(op, 'takes x, w and an optional bias', shapes);
  checkImage(op, 'x', x, shapes);
  checkWeight(op, x, w, shapes, '[Co, Ci, ...K]');
  if (w[1] !== x[1]) throw new OpError(op, `x has ${x[1]} channels but the weight expects ${w[1]} (w is [Co, Ci, ...K])`, shapes, 'make w.shape[1] equal x.shape[1]');
  const rank = x.length - 2;
  const stride = perDim(op, 'stride', attrs.stride ?? 1, rank, 1, 1, shapes);
  const pad = perDim(op, 'pad', attrs.pad ?? 0, rank, 0, 0, shapes);
  const S = lift(x.slice(2));
  const K = lift(w.slice(2));
  const O = S.map((s, i) => Math.floor((s + 2 * pad[i] - K[i]) / stride[i]) + 1) as Vec3;
  checkOut(op, O, shapes, 'use a smaller kernel or more padding');
  checkBias(op, shapes, w[0]);
  return { rank, B: x[0], Ci: x[1], Co: w[0], S, K, O, stride, pad };
}

/** conv_transpose: x [B,Ci,...S], w [Ci,Co,...K], bias [Co]? → y [B,Co,...O], O = (S−1)s − 2p + K + outputPadding. */
export function convTransposeGeom(shapes: Shape[], attrs: ConvTransposeAttrs, op = 'conv_transpose'): ConvGeom {
  const [x, w] = shapes;
  if (!x || !w || shapes.length > 3) throw new OpError(op, 'takes x, w and an optional bias', shapes);
  checkImage(op, 'x', x, shapes);
  checkWeight(op, x, w, shapes, '[Ci, Co, ...K]');
  if (w[0] !== x[1]) throw new OpError(op, `x has ${x[1]} channels but the weight expects ${w[0]} (w is [Ci, Co, ...K])`, shapes, 'make w.shape[0] equal x.shape[1]');
  const rank = x.length - 2;
  const stride = perDim(op, 'stride', attrs.stride ?? 1, rank, 1, 1, shapes);
  const pad = perDim(op, 'pad', attrs.pad ?? 0, rank, 0, 0, shapes);
  const outPad = perDim(op, 'outputPadding', attrs.outputPadding ?? 0, rank, 0, 0, shapes);
  if (outPad.some((p, i) => p >= stride[i]))
    throw new OpError(op, `outputPadding ${outPad.slice(3 - rank).join(',')} must be smaller than stride ${stride.slice(3 - rank).join(',')}`, shapes, 'PyTorch has the same rule');
  const S = lift(x.slice(2));
  const K = lift(w.slice(2));
  const O = S.map((s, i) => (s - 1) * stride[i] - 2 * pad[i] + K[i] + outPad[i]) as Vec3;
  checkOut(op, O, shapes, 'use less padding');
  checkBias(op, shapes, w[1]);
  return { rank, B: x[0], Ci: x[1], Co: w[1], S, K, O, stride, pad };
}

/** conv_grad_weight: x [B,Ci,...S], dy [B,Co,...O] → dw [Co,Ci,...K]; O must be conv's output size. */
export function convGradWeightGeom(shapes: Shape[], attrs: ConvGradWeightAttrs, op = 'conv_grad_weight'): ConvGeom {
  const [x, dy] = shapes;
  if (!x || !dy || shapes.length !== 2) throw new OpError(op, 'takes x and dy', shapes);
  checkImage(op, 'x', x, shapes);
  checkImage(op, 'dy', dy, shapes);
  if (dy.length !== x.length || dy[0] !== x[0]) throw new OpError(op, `dy must be [B, Co, ...O] with x's batch ${x[0]} and rank ${x.length}`, shapes);
  const rank = x.length - 2;
  const stride = perDim(op, 'stride', attrs.stride ?? 1, rank, 1, 1, shapes);
  const pad = perDim(op, 'pad', attrs.pad ?? 0, rank, 0, 0, shapes);
  if (attrs.kernel === undefined) throw new OpError(op, 'needs the attribute kernel (the weight\'s spatial size)', shapes);
  const K = perDim(op, 'kernel', attrs.kernel, rank, 1, 1, shapes);
  const S = lift(x.slice(2));
  const O = lift(dy.slice(2));
  const want = S.map((s, i) => Math.floor((s + 2 * pad[i] - K[i]) / stride[i]) + 1);
  if (want.some((o, i) => o !== O[i]))
    throw new OpError(op, `dy's spatial size ${O.slice(3 - rank).join('×')} is not conv's output size ${want.slice(3 - rank).join('×')} for kernel ${K.slice(3 - rank).join('×')}, stride and pad`, shapes);
  checkOut(op, O, shapes, 'use a smaller kernel or more padding');
  return { rank, B: x[0], Ci: x[1], Co: dy[1], S, K, O, stride, pad };
}

/** The spatial part of a lifted size, back at the op's rank. */
export const spatial = (g: ConvGeom, v: Vec3): number[] => v.slice(3 - g.rank);
