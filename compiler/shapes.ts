// Shapes at block boundaries: a value's concrete shape unified with a declared one
// (`[B, C, ...S/2]`), binding size variables and packs on first sight and checking them after
// (SC3001, SC3002, SC3004); declared shapes evaluated to sizes (SC3005).

import type * as A from '../dsl/ast.ts';
import type { Span } from '../dsl/diagnostics.ts';
import { Fail, fail, type Scope } from './context.ts';
import { exprText, shapeText } from './text.ts';
import { typeName, type GraphTensor, type Val } from './values.ts';

/** What shape checks evaluate with (the interpreter). */
export interface ShapeHost {
  evalIn(e: A.Expr, scope: Scope): Val;
  tensorOf(v: Val, span: Span, what: string): GraphTensor;
  /** The model's parameters (the note of a size that does not divide names `size`). */
  readonly params: ReadonlyMap<string, Val>;
}

/** Returned values against a declared output type (a shape or a tuple of shapes). */
export function checkShapes(h: ShapeHost, items: Val[], output: A.TypeExpr, scope: Scope, span: Span, what: string): void {
  const types = output.kind === 'TupleType' ? output.elements : [output];
  if (types.length !== items.length) fail('SC3006', span, { what, returned: items.length, declared: types.length });
  types.forEach((t, i) => matchShape(h, h.tensorOf(items[i], span, what).shape, t, scope, span, what));
}

/** Unifies a concrete shape with a declared one, binding size variables and packs (SC3001/SC3002). */
export function matchShape(h: ShapeHost, shape: readonly number[], type: A.TypeExpr, scope: Scope, span: Span, what: string): void {
  if (type.kind !== 'ShapeType') return;
  const dims = type.dims;
  const spreads = dims.filter((d) => d.kind === 'Spread').length;
  const fixed = dims.length - spreads;
  if (spreads ? shape.length < fixed : shape.length !== fixed) fail('SC3002', span, { what, shape, declared: shapeText(type), wants: spreads ? `at least ${fixed}` : `${fixed}` });
  const packLen = spreads ? (shape.length - fixed) / spreads : 0;
  let k = 0;
  // Which axes, what they are, the declared size and its value when it is not a literal.
  const mismatch = (axes: string, got: string, size: string, want: string) =>
    fail('SC3001', span, { what, shape, declared: shapeText(type), axes, got, size: size === want ? size : `${size} = ${want}` });
  for (const d of dims) {
    if (d.kind === 'Spread') {
      const part = shape.slice(k, k + packLen);
      k += packLen;
      if (d.argument.kind === 'Name' && !scope.env.has(d.argument.name)) scope.env.set(d.argument.name, [...part]);
      else {
        const want = sizeIn(h, d.argument, scope, what);
        if (!Array.isArray(want) || want.length !== part.length || want.some((w, i) => w !== part[i])) mismatch(part.length === 1 ? `axis ${k - 1} is` : `axes ${k - packLen}–${k - 1} are`, `[${part.join(', ')}]`, `...${exprText(d.argument)}`, `[${Array.isArray(want) ? want.join(', ') : String(want)}]`);
      }
      continue;
    }
    const got = shape[k++];
    if (d.kind === 'Name' && d.name === '_') continue;
    if (d.kind === 'Name' && !scope.env.has(d.name)) scope.env.set(d.name, got);
    else {
      const want = sizeIn(h, d, scope, what);
      if (want !== got) mismatch(`axis ${k - 1} is`, String(got), exprText(d), String(want));
    }
  }
}

/** A size expression of a declared shape; a size that does not divide names the shape it is in. */
function sizeIn(h: ShapeHost, e: A.Expr, scope: Scope, what: string): Val {
  try {
    return h.evalIn(e, scope);
  } catch (err) {
    if (err instanceof Fail && err.code === 'SC3004') {
      const { dividend, divisor } = (err as Fail<'SC3004'>).args;
      fail('SC3004', e.span, { dividend, divisor, what, size: exprText(e) }, [...err.notes, `the model's size parameter is ${JSON.stringify(h.params.get('size'))}`]);
    }
    throw err;
  }
}

/** A declared shape's sizes (SC3005 for one that is not a size). */
export function evalShape(h: ShapeHost, t: A.TypeExpr, scope: Scope): number[] {
  if (t.kind !== 'ShapeType') fail('SC1107', t.span, { problem: 'not a shape' });
  const out: number[] = [];
  for (const d of t.dims) {
    const v = d.kind === 'Spread' ? h.evalIn(d.argument, scope) : h.evalIn(d, scope);
    const vs = d.kind === 'Spread' ? (v as Val[]) : [v];
    for (const x of vs) {
      // A number is shown as its value (-4, 8.5): its type alone ('number') says nothing.
      if (!Number.isInteger(x) || (x as number) < 0) fail('SC3005', d.span, { size: d.kind === 'Spread' ? `...${exprText(d.argument)}` : exprText(d), got: typeof x === 'number' ? String(x) : typeName(x as Val) });
      out.push(x as number);
    }
  }
  return out;
}
