// Gradients of pointwise activations: dx = f'(x)·dy with x and dy of one shape.

import type { OpDef, Shape } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { mapPlan } from '../wgsl.ts';

interface GradSpec {
  name: string;
  f64: (x: number, dy: number) => number;
  /** WGSL expression in `x` and `g` (= dy). */
  wgsl: string;
  /** AssemblyScript export fn(x, dy, dx: usize, n: i32). */
  wasm: string;
}

function pointwiseGrad(spec: GradSpec): OpDef<{}> {
  return {
    name: spec.name,
    shape: (s: Shape[]) => {
      if (s.length !== 2 || fmtShape(s[0]) !== fmtShape(s[1])) throw new OpError(spec.name, 'x and dy must have the same shape', s);
      return [s[0]];
    },
    float64: ([x, dy]) => [dy.map((g, i) => spec.f64(x[i], g))],
    wgsl: ([s]) => mapPlan(numel(s), ['X', 'DY'], 'DX', `let x = X[i];\n  let g = DY[i];\n  DX[i] = ${spec.wgsl};`),
    wasm: ([s]) => ({ run: (k, [x, dy, dx]) => void k[spec.wasm](x, dy, dx, numel(s)) }),
  };
}

/** dy where x > 0, else 0: the gradient of ReLU. */
export const reluGrad = pointwiseGrad({ name: 'relu_grad', f64: (x, g) => (x > 0 ? g : 0), wgsl: 'select(0.0, g, x > 0.0)', wasm: 'relu_grad' });

/** dy·σ(x), dy itself above softplus's threshold 20. */
export const softplusGrad = pointwiseGrad({
  name: 'softplus_grad',
  f64: (x, g) => (x > 20 ? g : g / (1 + Math.exp(-x))),
  wgsl: 'select(g / (1.0 + exp(-x)), g, x > 20.0)',
  wasm: 'ew_softplus_grad',
});
