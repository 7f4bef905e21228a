// dy where x > 0, else 0: the gradient of ReLU.

import type { OpDef, Shape } from '../types.ts';
import { OpError, numel } from '../types.ts';
import { LINEAR_INDEX, grid1d, linearMain } from '../wgsl.ts';

export const reluGrad: OpDef<{}> = {
  name: 'relu_grad',
  shape: (s: Shape[]) => {
    if (numel(s[0]) !== numel(s[1]) || s[0].length !== s[1].length) throw new OpError('relu_grad', 'x and dy must have the same shape', s);
    return [s[0]];
  },
  reference: ([x, dy]) => [dy.map((g, i) => (x[i] > 0 ? g : 0))],
  wgsl: ([s]) => {
    const n = numel(s);
    return {
      passes: [
        {
          bindings: [0, 1, 2],
          workgroups: grid1d(n),
          code: `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  DX[i] = select(0.0, DY[i], X[i] > 0.0);
}`,
        },
      ],
    };
  },
  wasm: ([s]) => ({ run: (k, [x, dy, dx]) => void k.relu_grad(x, dy, dx, numel(s)) }),
};
