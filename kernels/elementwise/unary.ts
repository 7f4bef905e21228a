// Unary elementwise ops. Each is one line of WGSL, one AssemblyScript kernel and a float64
// reference; the gradient rule is written in other ops.

import type { Attrs, Emitter, GradContext, OpDef, Shape } from '../types.ts';
import { OpError, numel } from '../types.ts';
import { f32lit, mapPlan } from '../wgsl.ts';

interface UnarySpec<A extends Attrs> {
  name: string;
  f64: (x: number, attrs: A) => number;
  /** WGSL expression in `x` (f32); helper functions it needs go in `wgslHelpers`. */
  wgsl: (attrs: A) => string;
  wgslHelpers?: string;
  /** AssemblyScript export: fn(x: usize, y: usize, n: i32, ...extra(attrs)). */
  wasm: string;
  wasmExtra?: (attrs: A) => number[];
  check?: (s: Shape[], attrs: A) => void;
  grad?: <T>(em: Emitter<T>, ctx: GradContext<T, A>) => (T | null)[];
}

function unaryOp<A extends Attrs>(spec: UnarySpec<A>): OpDef<A> {
  return {
    name: spec.name,
    shape: (s, attrs) => {
      if (s.length !== 1) throw new OpError(spec.name, `takes 1 input, got ${s.length}`, s);
      spec.check?.(s, attrs);
      return [s[0]];
    },
    float64: ([x], _s, attrs) => [x.map((v) => spec.f64(v, attrs))],
    grad: spec.grad,
    wgsl: ([s], attrs) => mapPlan(numel(s), ['X'], 'Y', `let x = X[i];\n  Y[i] = ${spec.wgsl(attrs)};`, spec.wgslHelpers),
    wasm: ([s], attrs) => {
      const extra = spec.wasmExtra?.(attrs) ?? [];
      return { run: (k, [x, y]) => void k[spec.wasm](x, y, numel(s), ...extra) };
    },
  };
}

/** WGSL log(1 + u) that keeps u when it is below f32 epsilon (Goldberg's trick). */
export const WGSL_LOG1P = `fn log1p_(u: f32) -> f32 {
  let w = 1.0 + u;
  return select(log(w) * (u / (w - 1.0)), u, w == 1.0);
}`;

export const relu = unaryOp<{}>({
  name: 'relu',
  f64: (x) => (x > 0 ? x : 0),
  wgsl: () => 'max(x, 0.0)',
  wasm: 'relu',
  grad: (em, { inputs: [x], dOutputs: [dy] }) => [dy && em.call('relu_grad', [x, dy])[0]],
});

/** PyTorch's softplus, β = 1, threshold 20. */
export const softplus = unaryOp<{}>({
  name: 'softplus',
  f64: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  wgsl: () => 'select(log1p_(exp(x)), x, x > 20.0)',
  wgslHelpers: WGSL_LOG1P,
  wasm: 'ew_softplus',
  grad: (em, { inputs: [x], dOutputs: [dy] }) => [dy && em.call('softplus_grad', [x, dy])[0]],
});

export const exp = unaryOp<{}>({
  name: 'exp',
  f64: Math.exp,
  wgsl: () => 'exp(x)',
  wasm: 'ew_exp',
  // dy·y reuses the forward output instead of recomputing exp.
  grad: (em, { outputs: [y], dOutputs: [dy] }) => [dy && em.call('mul', [dy, y])[0]],
});

export interface ScaleAttrs extends Attrs {
  a?: number;
  b?: number;
}

/** y = a·x + b (a defaults to 1, b to 0). */
export const scale = unaryOp<ScaleAttrs>({
  name: 'scale',
  f64: (x, { a = 1, b = 0 }) => a * x + b,
  check: (s, { a = 1, b = 0 }) => {
    if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b))
      throw new OpError('scale', `attrs a and b must be finite numbers, got a=${a}, b=${b}`, s, 'Pass e.g. {a: 0.5, b: 0}');
  },
  wgsl: ({ a = 1, b = 0 }) => `x * ${f32lit(a)} + ${f32lit(b)}`,
  wasm: 'ew_scale',
  wasmExtra: ({ a = 1, b = 0 }) => [a, b],
  grad: (em, { dOutputs: [dy], attrs: { a = 1 } }) => [dy && em.call('scale', [dy], { a, b: 0 })[0]],
});

export const unaryOps: OpDef<any>[] = [relu, softplus, exp, scale];
