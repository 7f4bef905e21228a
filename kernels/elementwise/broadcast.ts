// Broadcasting and strided-index helpers shared by the binary ops, broadcast_to and the
// reductions. All work on "collapsed" iteration spaces: size-1 axes dropped and neighbouring
// axes merged wherever every operand walks them contiguously, so [B,C,H,W] + [B,C,1,1] becomes
// a 2-D loop [B·C, H·W] and kernels get few, cheap index terms.

import type { Shape } from '../types.ts';
import { OpError, fmtShape } from '../types.ts';

/** NumPy broadcasting: axes right-aligned; each pair equal, or one of them 1 (or missing). */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new OpError(op, `cannot broadcast ${fmtShape(a)} with ${fmtShape(b)}: axis ${i - n} is ${da} vs ${db}`, [a, b], 'Axes are matched from the right; each pair must be equal or one of them 1 — reshape an input first');
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Row-major strides of a contiguous tensor. */
export function contiguousStrides(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

/** Strides of `inShape` (contiguous) read along `outShape`'s axes: 0 on broadcast axes. */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const own = contiguousStrides(inShape);
  const lead = outShape.length - inShape.length;
  return outShape.map((_, i) => (i < lead || inShape[i - lead] === 1 ? 0 : own[i - lead]));
}

export interface Collapsed {
  /** Iteration extents, outermost first (at least one axis). */
  dims: number[];
  /** Per operand, its element stride along each axis of `dims`. */
  strides: number[][];
}

/**
 * Drops size-1 axes and merges axis d into its outer neighbour p whenever, for every operand,
 * stride[p] = stride[d]·dims[d] (the two axes are one contiguous or one broadcast run).
 */
export function collapse(dims: Shape, strides: number[][]): Collapsed {
  const out: Collapsed = { dims: [], strides: strides.map(() => []) };
  for (let d = 0; d < dims.length; d++) {
    if (dims[d] === 1) continue;
    const last = out.dims.length - 1;
    if (last >= 0 && strides.every((s, k) => out.strides[k][last] === s[d] * dims[d])) {
      out.dims[last] *= dims[d];
      strides.forEach((s, k) => (out.strides[k][last] = s[d]));
    } else {
      out.dims.push(dims[d]);
      strides.forEach((s, k) => out.strides[k].push(s[d]));
    }
  }
  if (!out.dims.length) {
    out.dims.push(1);
    out.strides.forEach((s) => s.push(0));
  }
  return out;
}

/**
 * WGSL u32 expression for an operand's offset at flat index `idx` of the contiguous iteration
 * space `dims` (constants baked in; zero-stride axes cost nothing).
 */
export function offsetExpr(dims: number[], strides: number[], idx: string): string {
  const iter = contiguousStrides(dims);
  if (strides.every((s, d) => s === iter[d])) return idx;
  const terms: string[] = [];
  for (let d = 0; d < dims.length; d++) {
    if (strides[d] === 0) continue;
    let coord = iter[d] === 1 ? idx : `(${idx} / ${iter[d]}u)`;
    if (d > 0) coord = `(${coord} % ${dims[d]}u)`;
    terms.push(strides[d] === 1 ? coord : `${coord} * ${strides[d]}u`);
  }
  return terms.length ? terms.join(' + ') : '0u';
}

/** Most axes a collapsed iteration space may have for the AssemblyScript strided kernels. */
export const WASM_RANK = 6;

/** Pads a collapsed space to WASM_RANK axes (leading extent-1 axes) for the Wasm kernels. */
export function padForWasm(op: string, c: Collapsed, inShapes: Shape[]): Collapsed {
  const extra = WASM_RANK - c.dims.length;
  if (extra < 0) throw new OpError(op, `the strided Wasm kernel handles at most ${WASM_RANK} non-mergeable axes, this needs ${c.dims.length}`, inShapes, 'Reshape the inputs to merge axes');
  return { dims: [...Array(extra).fill(1), ...c.dims], strides: c.strides.map((s) => [...Array(extra).fill(0), ...s]) };
}

/** Gathers `x` (float64) along a strided view: out[i] = x[offset(i)]. */
export function gather64(x: Float64Array, dims: number[], strides: number[]): Float64Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const iter = contiguousStrides(dims);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < dims.length; d++) off += (Math.floor(i / iter[d]) % dims[d]) * strides[d];
    out[i] = x[off];
  }
  return out;
}
