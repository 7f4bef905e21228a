// reshape: a view. Devices share input 0's buffer and run nothing (OpDef.view); the oracle
// copies, and the kernels below (a plain copy) exist only for executors that want one.

import type { Attrs, OpDef, Shape } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { mapPlan } from '../wgsl.ts';
import { pointwiseOp } from './pointwise.ts';

export interface ReshapeAttrs extends Attrs {
  /** The new shape; at most one entry may be −1 (inferred from the element count). */
  shape: number[];
}

export function reshapeShape(op: string, x: Shape, want: readonly number[]): number[] {
  if (!Array.isArray(want) || want.some((d) => !Number.isInteger(d) || d < -1))
    throw new OpError(op, `attr shape must be an array of integers ≥ 0 (one may be −1), got ${JSON.stringify(want)}`, [x]);
  const free = want.filter((d) => d === -1).length;
  if (free > 1) throw new OpError(op, `attr shape ${fmtShape(want)} has more than one −1`, [x]);
  const known = want.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const n = numel(x);
  const out = want.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (numel(out) !== n || !out.every(Number.isInteger))
    throw new OpError(op, `cannot view ${n} elements as ${fmtShape(want)} (${numel(out)} elements)`, [x], 'The new shape must hold exactly as many elements as the input');
  return out;
}

export const reshape: OpDef<ReshapeAttrs> = {
  name: 'reshape',
  view: true,
  shape: ([x], { shape }) => [reshapeShape('reshape', x, shape)],
  float64: ([x]) => [x.slice()],
  grad: (em, { inputs: [x], dOutputs: [dy] }) => [dy && em.call('reshape', [dy], { shape: [...em.shape(x)] })[0]],
  wgsl: ([s]) => mapPlan(numel(s), ['X'], 'Y', 'Y[i] = X[i];'),
  // A copy as scale by 1 (ew_map(op, a, b, y, n, p, q) with a = b = x).
  wasm: ([s]) => ({ run: (k, [x, y]) => void k.ew_map(pointwiseOp('scale')!.opcode, x, x, y, numel(s), 1, 0) }),
};
