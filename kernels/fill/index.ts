// `fill` (a constant tensor: gradient seeds, zero initial state) and `copy` (a buffer copy the
// memory planner inserts where an in-place op would clobber a value still needed).

import type { OpDef, Shape } from '../types.ts';
import { OpError, numel } from '../types.ts';
import { f32lit, mapPlan } from '../wgsl.ts';

interface FillAttrs {
  shape: number[];
  value: number;
  [k: string]: unknown;
}

export const fill: OpDef<FillAttrs> = {
  name: 'fill',
  shape: (s, a) => {
    if (s.length) throw new OpError('fill', 'takes no inputs', s);
    if (!Array.isArray(a.shape) || a.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new OpError('fill', `shape must be a list of sizes, got ${JSON.stringify(a.shape)}`);
    return [a.shape];
  },
  float64: (_x, _s, a) => [new Float64Array(numel(a.shape)).fill(a.value)],
  wgsl: (_s, a) => mapPlan(numel(a.shape), [], 'Y', `Y[i] = ${f32lit(a.value)};`),
  wasm: (_s, a) => ({ run: (k, [y]) => void k.fill(y, numel(a.shape), a.value) }),
};

export const copy: OpDef<{}> = {
  name: 'copy',
  shape: (s: Shape[]) => [s[0]],
  float64: ([x]) => [x.slice()],
  grad: (_em, { dOutputs: [dy] }) => [dy],
  wgsl: ([s]) => mapPlan(numel(s), ['X'], 'Y', 'Y[i] = X[i];'),
  wasm: ([s]) => ({ run: (k, [x, y]) => void k.copy(x, y, numel(s)) }),
};

export const fillOps: OpDef<any>[] = [fill, copy];
