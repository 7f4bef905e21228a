// Eager float64 execution of ops through their float64 implementations: the oracle that tests
// compare devices with, and the executor for finite-difference checks of gradient rules.

import { getOp } from './registry.ts';
import type { Attrs, Emitter, Shape } from './types.ts';
import { OpError, fmtShape, numel } from './types.ts';

export interface OracleTensor {
  shape: Shape;
  data: Float64Array;
}

export const oracleTensor = (shape: Shape, data: ArrayLike<number>): OracleTensor => {
  if (data.length !== numel(shape)) throw new Error(`oracleTensor: ${data.length} values do not fill shape ${fmtShape(shape)}`);
  return { shape: [...shape], data: Float64Array.from(data) };
};

export const oracle: Emitter<OracleTensor> = {
  call(name: string, inputs: OracleTensor[], attrs: Attrs = {}): OracleTensor[] {
    const op = getOp(name);
    const inShapes = inputs.map((t) => t.shape);
    const outShapes = op.shape(inShapes, attrs);
    const outs = op.float64(inputs.map((t) => t.data), inShapes, attrs);
    return outs.map((data, i) => {
      if (data.length !== numel(outShapes[i])) throw new OpError(name, `float64 output ${i} has ${data.length} values, shape rule says ${fmtShape(outShapes[i])}`, inShapes);
      return { shape: outShapes[i], data };
    });
  },
  shape: (t) => t.shape,
};
