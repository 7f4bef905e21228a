// The front end of the model language: source text → AST + diagnostics. Pure (no file system),
// so it runs in browsers too; dsl/load.ts reads files and follows imports in Node.

import { EOF, type IRecognitionException, type IToken } from 'chevrotain';
import type { Program } from './ast.ts';
import { AstBuilder } from './build.ts';
import { checkProgram } from './check.ts';
import { DiagnosticBag, report, type Diagnostic, type Span } from './diagnostics.ts';
import { getParser } from './parser.ts';
import { lexer, UnterminatedString } from './tokens.ts';

export * from './diagnostics.ts';
export type * from './ast.ts';
export { forEachExpr } from './check.ts';

export interface ParseResult {
  program: Program;
  /** Sorted by position. Any error means the program is incomplete and must not be compiled. */
  diagnostics: Diagnostic[];
  ok: boolean;
}

/** Parse one file. Never throws on bad input: every problem is a diagnostic, and error recovery
 * lets one run report every syntax error. */
export function parse(source: string, file = '<input>'): ParseResult {
  const diags = new DiagnosticBag();
  const lexed = lexer.tokenize(source);
  for (const e of lexed.errors) {
    const span = pointSpan(file, source, e.offset, e.length || 1);
    diags.report('SC1003', span, { char: source.slice(e.offset, e.offset + (e.length || 1)) }, { notes: ['the language uses # for comments and " for strings'] });
  }
  for (const t of lexed.tokens) {
    if (t.tokenType === UnterminatedString) diags.report('SC1004', tokenSpan(file, t), {}, { notes: ['add the closing "'] });
  }

  // The parser and the passes after it recurse once per level of nesting: a file nested deeper
  // (or chaining more operators) than any model needs is refused here, located, before it can
  // overflow the stack or fill memory with parse trees.
  const deep = tooDeep(lexed.tokens);
  if (deep) {
    if (deep.chain) diags.report('SC1006', tokenSpan(file, deep.token), { limit: MAX_CHAIN, operators: true }, { notes: ['split it into steps: name a part (a = …) and use the name'] });
    else diags.report('SC1006', tokenSpan(file, deep.token), { limit: MAX_NESTING });
    return { program: { kind: 'Program', file, decls: [], span: pointSpan(file, source, 0, 1) }, diagnostics: diags.sorted(), ok: false };
  }
  const parser = getParser();
  parser.input = lexed.tokens;
  let cst;
  try {
    cst = parser.program();
  } catch (e) {
    // Deep nesting the prescan does not count (long chains of operators) still ends here.
    if (!(e instanceof RangeError)) throw e;
    diags.report('SC1006', lexed.tokens.length ? tokenSpan(file, lexed.tokens[0]) : pointSpan(file, source, 0, 1), { limit: MAX_NESTING });
    return { program: { kind: 'Program', file, decls: [], span: pointSpan(file, source, 0, 1) }, diagnostics: diags.sorted(), ok: false };
  }
  const lastToken = lexed.tokens[lexed.tokens.length - 1];
  for (const e of parser.errors) diags.add(syntaxDiagnostic(e, file, source, lastToken));

  let program: Program;
  try {
    program = new AstBuilder(file, diags).visit(cst) as Program;
    // Structure checks on a tree with holes would only repeat the syntax errors.
    if (!diags.hasErrors) checkProgram(program, diags);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    diags.report('SC1006', lexed.tokens.length ? tokenSpan(file, lexed.tokens[0]) : pointSpan(file, source, 0, 1), { limit: MAX_NESTING });
    return { program: { kind: 'Program', file, decls: [], span: pointSpan(file, source, 0, 1) }, diagnostics: diags.sorted(), ok: false };
  }
  const diagnostics = diags.sorted();
  return { program, diagnostics, ok: !diagnostics.some((d) => d.severity === 'error') };
}

/** Levels of brackets, conditionals, and prefix operators in a row, that a model may nest. */
export const MAX_NESTING = 100;
/**
 * Binary operators one expression may chain (`1 + 1 + …`, `x |> f |> …`), counted over the
 * brackets open around it: each nests the tree one level deeper, for the parser and every pass
 * after it. The paper's longest chains have a handful; 200,000 took the parser to 775 MB.
 */
export const MAX_CHAIN = 1000;
/** Tokens that open a nested expression without a bracket. */
const PREFIX = new Set(['-', '+', 'not', '|>']);
/** Binary operators: each one in a chain is a level of the tree. */
const BINARY = new Set(['+', '-', '*', '/', '%', '**', '==', '!=', '<', '<=', '>', '>=', 'and', 'or', '|>', '..']);
/** Tokens after which a new expression starts at the same bracket depth (statements, arguments, list elements). */
const EXPRESSION_START = new Set(['=', ',', 'return', 'for', 'assert', 'input', 'entry', 'train', 'minimize', 'report', 'evaluate', 'const', 'defaults', 'block', 'model', 'import']);

/**
 * The first token nested past MAX_NESTING (brackets or `if … then`s open, or prefix operators in
 * a row), or chaining operators past MAX_CHAIN, if any.
 */
function tooDeep(tokens: IToken[]): { token: IToken; chain: boolean } | undefined {
  let depth = 0;
  let ifs = 0;
  let run = 0;
  // Operators chained at each open bracket depth, and their sum: the depth of the tree here.
  const chains: number[] = [0];
  let chained = 0;
  for (const t of tokens) {
    const s = t.image;
    if (s === '(' || s === '[' || s === '{') {
      depth++;
      chains.push(0);
    } else if (s === ')' || s === ']' || s === '}') {
      depth = Math.max(0, depth - 1);
      if (chains.length > 1) chained -= chains.pop()!;
    } else if (s === 'then') ifs++; // a conditional expression, closed by its else
    else if (s === 'else') ifs = Math.max(0, ifs - 1);
    if (EXPRESSION_START.has(s)) {
      chained -= chains[chains.length - 1];
      chains[chains.length - 1] = 0;
    } else if (BINARY.has(s)) {
      chains[chains.length - 1]++;
      chained++;
    }
    run = PREFIX.has(s) ? run + 1 : s === '(' || s === '[' ? run : 0;
    if (depth > MAX_NESTING || ifs > MAX_NESTING || run > MAX_NESTING) return { token: t, chain: false };
    if (chained > MAX_CHAIN) return { token: t, chain: true };
  }
  return undefined;
}

function syntaxDiagnostic(e: IRecognitionException, file: string, source: string, lastToken: IToken | undefined): Diagnostic {
  const t = e.token;
  const atEnd = t.tokenType === EOF || Number.isNaN(t.startOffset);
  // At the end of the file, point just after the last real token (where the missing text goes).
  const span = atEnd
    ? lastToken ? pointSpan(file, source, lastToken.endOffset! + 1, 1) : pointSpan(file, source, source.length, 1)
    : tokenSpan(file, t);
  return report(atEnd ? 'SC1002' : 'SC1001', span, { detail: e.message });
}

function tokenSpan(file: string, t: IToken): Span {
  return { file, line: t.startLine!, col: t.startColumn!, endLine: t.endLine!, endCol: t.endColumn! + 1, offset: t.startOffset, endOffset: t.endOffset! + 1 };
}

/** A span of `length` characters at `offset` (clamped to the text), with line and column. */
export function pointSpan(file: string, source: string, offset: number, length: number): Span {
  const at = Math.min(offset, source.length);
  const before = source.slice(0, at);
  const line = before.split('\n').length;
  const col = at - (before.lastIndexOf('\n') + 1) + 1;
  return { file, line, col, endLine: line, endCol: col + length, offset: at, endOffset: at + length };
}
