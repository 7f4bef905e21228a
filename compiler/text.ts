// How diagnostics quote the model's source: types, shapes and size expressions as written.

import type * as A from '../dsl/ast.ts';

export const typeText = (t: A.TypeExpr): string =>
  t.kind === 'NamedType' ? t.name : t.kind === 'ListType' ? `[${typeText(t.element)}]` : t.kind === 'LiteralType' ? JSON.stringify(t.value) : t.kind === 'UnionType' ? t.options.map(typeText).join(' | ') : t.kind === 'ShapeType' ? shapeText(t) : 'tuple';

export function exprText(e: A.Expr): string {
  switch (e.kind) {
    case 'Name':
      return e.name;
    case 'Number':
      return e.raw;
    case 'Binary':
      return `${exprText(e.left)}${e.op}${exprText(e.right)}`;
    default:
      return e.kind.toLowerCase();
  }
}

export const shapeText = (t: A.ShapeType): string => `[${t.dims.map((d) => (d.kind === 'Spread' ? `...${exprText(d.argument)}` : exprText(d))).join(', ')}]`;

