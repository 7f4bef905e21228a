// Arithmetic on the elaborator's values: + − × ÷ % ** on compile-time numbers (exact division
// of integers), lists (elementwise), run-time scalars (evaluated on the host each step) and
// tensors (graph ops).

import type { Span } from '../dsl/diagnostics.ts';
import { fail, type BuildContext } from './context.ts';
import type { Value } from './ir.ts';
import { HostScalar, GraphTensor, typeName, type Val } from './values.ts';

export function arith(cx: BuildContext, op: string, l: Val, r: Val, span: Span): Val {
  if (Array.isArray(l) || Array.isArray(r)) {
    const n = Array.isArray(l) ? l.length : (r as Val[]).length;
    if (Array.isArray(l) && Array.isArray(r) && l.length !== r.length) fail('SC4011', span, { left: l.length, right: r.length });
    cx.spend(n, span);
    return Array.from({ length: n }, (_, i) => arith(cx, op, Array.isArray(l) ? l[i] : l, Array.isArray(r) ? r[i] : r, span));
  }
  if (typeof l === 'number' && typeof r === 'number') {
    if ((op === '/' || op === '%') && r === 0) fail('SC4020', span, { what: `${l} ${op} 0`, byZero: true });
    if (op === '/' && Number.isInteger(l) && Number.isInteger(r) && l % r !== 0)
      fail('SC3004', span, { dividend: l, divisor: r }, ['sizes divide exactly: choose an image size that every halving divides (e.g. multiples of 32 for five halvings)']);
    const v = op === '+' ? l + r : op === '-' ? l - r : op === '*' ? l * r : op === '/' ? l / r : op === '%' ? l % r : l ** r;
    // Infinity or NaN would pass as a float and print as null (JSON) far from here: stop at the operation.
    const text = (x: number) => (x < 0 ? `(${x})` : String(x));
    if (!Number.isFinite(v)) fail('SC4020', span, { what: `${text(l)} ${op} ${text(r)}`, value: v });
    return v;
  }
  const host = (v: Val) => (v instanceof HostScalar ? v : typeof v === 'number' ? new HostScalar(() => v) : null);
  if ((l instanceof HostScalar || r instanceof HostScalar) && host(l) && host(r)) {
    const a = host(l)!;
    const b = host(r)!;
    const f = { '+': (x: number, y: number) => x + y, '-': (x: number, y: number) => x - y, '*': (x: number, y: number) => x * y, '/': (x: number, y: number) => x / y, '%': (x: number, y: number) => x % y, '**': (x: number, y: number) => x ** y }[op]!;
    return new HostScalar((it) => f(a.at(it), b.at(it)));
  }
  // Tensors: with a compile-time number use `scale`; otherwise a broadcasting op.
  const ops: Record<string, string> = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div' };
  if (!ops[op]) fail('SC4012', span, { op, left: typeName(l), right: typeName(r) });
  if (l instanceof GraphTensor && typeof r === 'number') {
    if (op === '/' && r === 0) fail('SC4020', span, { what: `${typeName(l)} / 0`, byZero: true });
    const attrs = op === '+' ? { a: 1, b: r } : op === '-' ? { a: 1, b: -r } : op === '*' ? { a: r, b: 0 } : { a: 1 / r, b: 0 };
    return new GraphTensor(cx.op('scale', [l.v], attrs, span)[0]);
  }
  if (typeof l === 'number' && r instanceof GraphTensor && op !== '/') {
    const attrs = op === '+' ? { a: 1, b: l } : op === '-' ? { a: -1, b: l } : { a: l, b: 0 };
    return new GraphTensor(cx.op('scale', [r.v], attrs, span)[0]);
  }
  const tv = (v: Val): Value => (v instanceof HostScalar ? cx.hostInput(v) : cx.tensorOf(v, span, `an operand of '${op}'`).v);
  return new GraphTensor(cx.op(ops[op], [tv(l), tv(r)], {}, span)[0]);
}
