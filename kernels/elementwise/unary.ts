// Unary elementwise ops. Each is one line of WGSL, one AssemblyScript kernel and a float64
// reference; the gradient rule is written in other ops.

import type { Emitter, GradContext, OpDef, Shape } from '../types.ts';
import { numel } from '../types.ts';
import { LINEAR_INDEX, grid1d, linearMain } from '../wgsl.ts';

interface UnarySpec {
  name: string;
  f64: (x: number) => number;
  /** WGSL expression in `x` (f32). */
  wgsl: string;
  /** AssemblyScript export: fn(x: usize, y: usize, n: i32). */
  wasm: string;
  grad?: <T>(em: Emitter<T>, ctx: GradContext<T, {}>) => (T | null)[];
}

function unaryOp(spec: UnarySpec): OpDef<{}> {
  return {
    name: spec.name,
    shape: (s: Shape[]) => [s[0]],
    reference: ([x]) => [x.map(spec.f64)],
    grad: spec.grad,
    wgsl: ([s]) => {
      const n = numel(s);
      return {
        passes: [
          {
            bindings: [0, 1],
            workgroups: grid1d(n),
            code: `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let x = X[i];
  Y[i] = ${spec.wgsl};
}`,
          },
        ],
      };
    },
    wasm: ([s]) => ({ run: (k, [x, y]) => void k[spec.wasm](x, y, numel(s)) }),
  };
}

export const relu = unaryOp({
  name: 'relu',
  f64: (x) => (x > 0 ? x : 0),
  wgsl: 'max(x, 0.0)',
  wasm: 'relu',
  grad: (em, { inputs: [x], dOutputs: [dy] }) => [dy && em.call('relu_grad', [x, dy])[0]],
});

export const unaryOps: OpDef<any>[] = [relu];
