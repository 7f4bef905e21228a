// The builtin functions: one table, name → how it is called → what it computes. Tensor
// functions add graph ops; the others compute on compile-time values. `adam` is named here so
// that it resolves, but it is only the optimiser of `minimize … using adam(…)`.

import type { Span } from '../dsl/diagnostics.ts';
import { checkList, MAX_LIST } from './limits.ts';
import { fail, type BuildContext } from './context.ts';
import { HostScalar, GraphTensor, listSize, typeName, type Val } from './values.ts';

/** One call of a builtin: its arguments (tensor inputs from a pipe first) and helpers over them. */
export interface BuiltinCall {
  cx: BuildContext;
  name: string;
  args: Val[];
  named: Map<string, Val>;
  span: Span;
  /** Argument i as a tensor (SC4013). */
  t(i: number): GraphTensor;
  /** Argument i as a compile-time number (SC4003). */
  n(i: number): number;
  /** The op applied to argument 0 (a tensor). */
  one(op: string, attrs?: Record<string, unknown>): GraphTensor;
}

export interface Builtin {
  /** How it is called (docs/language.md "Layers and functions the compiler provides"). */
  signature: string;
  /** What it computes; none for a name that is not called as a function (SC2002). */
  call?: (c: BuiltinCall) => Val;
}

const sizes = (v: Val): v is number[] => Array.isArray(v) && !v.some((d) => !Number.isInteger(d));

/** Over every axis, or with keep_batch = true over every axis but the first (one value per cell). */
const reduce = (op: string) => (c: BuiltinCall): Val => {
  const keep = c.named.get('keep_batch') ?? false;
  const other = [...c.named.keys()].find((k) => k !== 'keep_batch');
  const usage = [`${c.name}(x) or ${c.name}(x, keep_batch = true)`];
  if (other) fail('SC2004', c.span, { owner: c.name, name: other }, usage);
  if (typeof keep !== 'boolean') fail('SC4010', c.span, { fn: c.name, option: 'keep_batch', is: 'true or false' }, usage);
  const s = c.t(0).shape;
  return c.one(op, { axes: s.map((_, i) => i).slice(keep ? 1 : 0), keepdims: false });
};

/** In name order: "did you mean" offers the first of equally close names. */
export const BUILTINS: Record<string, Builtin> = {
  relu: { signature: 'relu(x)', call: (c) => c.one('relu') },
  softplus: { signature: 'softplus(x)', call: (c) => c.one('softplus') },
  exp: { signature: 'exp(x)', call: (c) => c.one('exp') },
  avgpool: { signature: 'avgpool(x, k)', call: (c) => c.one('avgpool', { k: c.n(1) }) },
  upsample: { signature: 'upsample(x, k)', call: (c) => c.one('upsample', { k: c.n(1) }) },
  subsample: { signature: 'subsample(x, stride)', call: (c) => (c.args[0] === null ? null : c.one('subsample', { stride: c.n(1) })) },
  flatten: {
    signature: 'flatten(x)',
    call: (c) => {
      const s = c.t(0).shape;
      return c.one('reshape', { shape: [s[0], s.slice(1).reduce((a, b) => a * b, 1)] });
    },
  },
  reshape: {
    signature: 'reshape(x, shape)',
    call: (c) => {
      const shape = c.args[1];
      if (!sizes(shape)) fail('SC4010', c.span, { fn: 'reshape', takes: 'a list of sizes' });
      return c.one('reshape', { shape });
    },
  },
  sum: { signature: 'sum(x, keep_batch = false)', call: reduce('reduce_sum') },
  mean: { signature: 'mean(x, keep_batch = false)', call: reduce('reduce_mean') },
  clamp: {
    signature: 'clamp(x, lo, hi)',
    call: ({ args: [x, lo, hi], span }) => {
      if (typeof lo !== 'number' || typeof hi !== 'number') fail('SC4003', span, { what: 'clamp bounds', wants: 'must be compile-time numbers' });
      if (typeof x === 'number') return Math.min(hi, Math.max(lo, x));
      if (x instanceof HostScalar) return new HostScalar((it) => Math.min(hi, Math.max(lo, x.at(it))));
      fail('SC4010', span, { fn: 'clamp', takes: 'a number or a run-time scalar', got: typeName(x) });
    },
  },
  randn: {
    signature: 'randn(shape)',
    call: ({ cx, args: [shape], span }) => {
      if (!sizes(shape)) fail('SC4010', span, { fn: 'randn', takes: 'a list of sizes' });
      const b = cx.build;
      if (!b) fail('SC4017', span, { fn: 'randn' });
      if (cx.debug.externalNoise) {
        const noise = { name: `noise${b.randomDraws++}`, shape };
        b.extraInputs.push(noise);
        return new GraphTensor(b.g.input(noise.name, noise.shape));
      }
      const blocks = Math.ceil(shape.reduce((a, c) => a * c, 1) / 4);
      // Each draw of the program gets its own key; the counter moves on with the iteration.
      const seed = 0x5eed0000 + b.randomDraws++;
      return new GraphTensor(cx.op('randn', [], { shape, seed, offset: 0 }, span, { offset: (r) => (r.draw ?? r.iteration ?? 0) * blocks })[0]);
    },
  },
  reparam: { signature: 'reparam(mu, logvar, eps)', call: (c) => new GraphTensor(c.cx.op('reparam', [c.t(0).v, c.t(1).v, c.t(2).v], {}, c.span)[0]) },
  sse: { signature: 'sse(a, b)', call: (c) => new GraphTensor(c.cx.op('sse', [c.t(0).v, c.t(1).v], {}, c.span)[0]) },
  kld: { signature: 'kld(mu, logvar)', call: (c) => new GraphTensor(c.cx.op('kld', [c.t(0).v, c.t(1).v], {}, c.span)[0]) },
  len: {
    signature: 'len(list)',
    call: ({ args: [l], span }) => {
      if (!Array.isArray(l)) fail('SC4010', span, { fn: 'len', takes: 'a list', got: typeName(l) });
      return l.length;
    },
  },
  prod: {
    signature: 'prod(list)',
    call: ({ args: [l], span }) => {
      if (!Array.isArray(l)) fail('SC4010', span, { fn: 'prod', takes: 'a list', got: typeName(l) });
      const p = (l as number[]).reduce((a, b) => a * b, 1);
      if (!Number.isFinite(p)) fail('SC4020', span, { what: `prod of ${l.length} numbers`, value: p });
      return p;
    },
  },
  repeat: {
    signature: 'repeat(value, n)',
    call: (c) => {
      const n = c.n(1);
      if (!Number.isInteger(n) || n < 0) fail('SC4003', c.span, { what: 'repeat', wants: 'needs a count n that is a whole number ≥ 0', got: String(n) });
      if (n > MAX_LIST) fail('SC4018', c.span, { what: `repeat(…, ${n})`, limit: `${MAX_LIST.toLocaleString('en-US')} elements` });
      const list = Array(n).fill(c.args[0]);
      checkList(list, c.span);
      c.cx.spend(n, c.span);
      return list;
    },
  },
  given: { signature: 'given(x)', call: ({ args: [x] }) => x !== null && x !== undefined },
  adam: { signature: 'adam(lr = 2e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8), in `minimize … using`' },
};

export const isBuiltin = (name: string): boolean => Object.hasOwn(BUILTINS, name);

/** Calls builtin `name` (positional arguments, tensor inputs from a pipe first, and named ones). */
export function callBuiltin(cx: BuildContext, name: string, args: Val[], named: Map<string, Val>, span: Span): Val {
  const t = (i: number) => cx.tensorOf(args[i], span, `argument ${i + 1} of ${name}`);
  const n = (i: number) => {
    const v = args[i];
    if (typeof v !== 'number') fail('SC4003', span, { what: `argument ${i + 1} of ${name}`, wants: 'must be a compile-time number', got: typeName(v) });
    return v;
  };
  const one = (op: string, attrs: Record<string, unknown> = {}) => new GraphTensor(cx.op(op, [t(0).v], attrs, span)[0]);
  const f = BUILTINS[name]?.call;
  if (!f) fail('SC2002', span, { what: name, here: true });
  // A list argument is work in proportion to its size (`prod` walks it), but for `len`.
  if (name !== 'len') for (const a of args) if (Array.isArray(a)) cx.spend(listSize(a).elements, span);
  return f({ cx, name, args, named, span, t, n, one });
}
