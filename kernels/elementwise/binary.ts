// add, sub, mul, div with NumPy broadcasting. Kernels run over the collapsed iteration space
// (broadcast.ts), so the common cases — same shape, a scalar, a per-channel [B,C,1,1] term —
// become one contiguous loop with at most a splatted operand.

import type { Emitter, GradContext, OpDef, Shape } from '../types.ts';
import { OpError, numel } from '../types.ts';
import { LINEAR_INDEX, grid1d, linearMain } from '../wgsl.ts';
import { broadcastShapes, broadcastStrides, collapse, gather64, offsetExpr, padForWasm } from './broadcast.ts';
import { sumToShape } from '../reduce/reduce.ts';

type Grad = <T>(em: Emitter<T>, ctx: GradContext<T, {}>) => (T | null)[];

interface BinarySpec {
  name: string;
  /** Op code of the AssemblyScript kernel ew_binary. */
  code: number;
  f64: (a: number, b: number) => number;
  wgsl: string;
  grad: Grad;
}

/** The collapsed iteration space of `out = a ∘ b`: dims plus strides of [a, b]. */
function plan(op: string, [a, b]: Shape[]) {
  const out = broadcastShapes(op, a, b);
  return { out, c: collapse(out, [broadcastStrides(a, out), broadcastStrides(b, out)]) };
}

function binaryOp(spec: BinarySpec): OpDef<{}> {
  return {
    name: spec.name,
    shape: (s) => {
      if (s.length !== 2) throw new OpError(spec.name, `takes 2 inputs, got ${s.length}`, s);
      return [broadcastShapes(spec.name, s[0], s[1])];
    },
    float64: ([a, b], s) => {
      const { c } = plan(spec.name, s);
      const ga = gather64(a, c.dims, c.strides[0]);
      const gb = gather64(b, c.dims, c.strides[1]);
      return [ga.map((v, i) => spec.f64(v, gb[i]))];
    },
    grad: spec.grad,
    wgsl: (s) => {
      const { out, c } = plan(spec.name, s);
      const n = numel(out);
      return {
        passes: [
          {
            bindings: [0, 1, 2],
            workgroups: grid1d(n),
            code: `@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let a = A[${offsetExpr(c.dims, c.strides[0], 'i')}];
  let b = B[${offsetExpr(c.dims, c.strides[1], 'i')}];
  Y[i] = ${spec.wgsl};
}`,
          },
        ],
      };
    },
    wasm: (s) => {
      const c = padForWasm(spec.name, plan(spec.name, s).c, s);
      const args = [...c.dims, ...c.strides[0], ...c.strides[1]];
      return { run: (k, [a, b, y]) => void k.ew_binary(spec.code, a, b, y, ...args) };
    },
  };
}

export const add = binaryOp({
  name: 'add',
  code: 0,
  f64: (a, b) => a + b,
  wgsl: 'a + b',
  grad: (em, { inputs: [a, b], dOutputs: [dy] }) => (dy ? [sumToShape(em, dy, em.shape(a)), sumToShape(em, dy, em.shape(b))] : [null, null]),
});

export const sub = binaryOp({
  name: 'sub',
  code: 1,
  f64: (a, b) => a - b,
  wgsl: 'a - b',
  grad: (em, { inputs: [a, b], dOutputs: [dy] }) => {
    if (!dy) return [null, null];
    // Negate after reducing: the reduced tensor is never larger than dy.
    return [sumToShape(em, dy, em.shape(a)), em.call('scale', [sumToShape(em, dy, em.shape(b))], { a: -1, b: 0 })[0]];
  },
});

export const mul = binaryOp({
  name: 'mul',
  code: 2,
  f64: (a, b) => a * b,
  wgsl: 'a * b',
  grad: (em, { inputs: [a, b], dOutputs: [dy] }) => {
    if (!dy) return [null, null];
    return [sumToShape(em, em.call('mul', [dy, b])[0], em.shape(a)), sumToShape(em, em.call('mul', [dy, a])[0], em.shape(b))];
  },
});

export const div = binaryOp({
  name: 'div',
  code: 3,
  f64: (a, b) => a / b,
  wgsl: 'a / b',
  grad: (em, { inputs: [a, b], outputs: [y], dOutputs: [dy] }) => {
    if (!dy) return [null, null];
    const g = em.call('div', [dy, b])[0]; // dL/da = dy / b
    // dL/db = −dy·a/b² = −(dy/b)·y, using the forward output instead of squaring b.
    const gb = em.call('scale', [sumToShape(em, em.call('mul', [g, y])[0], em.shape(b))], { a: -1, b: 0 })[0];
    return [sumToShape(em, g, em.shape(a)), gb];
  },
});

export const binaryOps: OpDef<any>[] = [add, sub, mul, div];
