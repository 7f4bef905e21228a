// Compile-time parameter values against their declared types (SC4001): a model's parameters,
// its instances' overrides and `--set`, a block's parameters. A `--set` value that does not fit
// is the command line's error, worded for it.

import type * as A from '../dsl/ast.ts';
import { commandLineSpan, formatLocation, type Span } from '../dsl/diagnostics.ts';
import { fail } from './context.ts';
import { typeText } from './text.ts';
import { typeName, type Val } from './values.ts';

/**
 * `span`: the parameter's declaration. `fromSet`: v came from `--set` (overrides): the error is
 * the command line's, the declaration a note. `givenAt`: v was written there (a model instance's
 * override, `StatCell(dims = "two")`): the error is at that value, the declaration a note.
 */
export function checkType(v: Val, t: A.TypeExpr, name: string, span: Span, fromSet = false, givenAt?: Span): void {
  const ok = (v: Val, t: A.TypeExpr): boolean => {
    switch (t.kind) {
      case 'NamedType':
        return t.name === 'int' ? Number.isInteger(v) : t.name === 'float' ? typeof v === 'number' : t.name === 'bool' ? typeof v === 'boolean' : t.name === 'str' ? typeof v === 'string' : true;
      case 'ListType':
        return Array.isArray(v) && v.every((x) => ok(x, t.element));
      case 'UnionType':
        return t.options.some((o) => ok(v, o));
      case 'LiteralType':
        return v === t.value;
      default:
        return true;
    }
  };
  if (!ok(v, t) && fromSet) {
    // `--set size=64,40` is the string "64,40": offer the list in brackets when that fits.
    const items = typeof v === 'string' && t.kind === 'ListType' ? v.replace(/^\[|\]$/g, '').split(',').map((s) => { try { return JSON.parse(s) as Val; } catch { return s.trim(); } }) : undefined;
    const fix = items && ok(items, t) ? setText(name, items).replace(/^--set (.*".*)$/, "--set '$1'") : undefined;
    fail('SC4001', commandLineSpan(setText(name, v)), { name, value: JSON.stringify(v), type: typeName(v), words: typeWords(t), fix }, [`${name} is declared at ${formatLocation(span)}`]);
  }
  if (!ok(v, t) && givenAt) fail('SC4001', givenAt, { name, value: JSON.stringify(v), type: typeName(v), declared: typeText(t) }, [`${name} is declared at ${formatLocation(span)}`]);
  if (!ok(v, t)) fail('SC4001', span, { name, value: JSON.stringify(v), type: typeName(v), declared: typeText(t) });
}

/** `--set name=value` as typed: strings as they are, the rest as JSON. */
export const setText = (name: string, v: unknown): string => `--set ${name}=${typeof v === 'string' ? v : JSON.stringify(v)}`;

/** A type in words for `--set` errors: "an int", "a list of ints ([int])"; others by their text. */
const typeWords = (t: A.TypeExpr): string => {
  const words: Record<string, string> = { int: 'int', float: 'number', bool: 'bool (true or false)', str: 'string' };
  if (t.kind === 'NamedType' && t.name in words) return `${t.name === 'int' ? 'an' : 'a'} ${words[t.name]}`;
  if (t.kind === 'ListType' && t.element.kind === 'NamedType' && t.element.name in words) return `a list of ${words[t.element.name].split(' ')[0]}s (${typeText(t)})`;
  return `of type ${typeText(t)}`;
};
