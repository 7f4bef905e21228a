// Diagnostics: numbered codes (as AssemblyScript numbers its messages), spans, and a renderer:
//
//   models/x.vae:12:15: error[SC1001]: expected ')' but found '='
//      12 |   y = conv(32 = 1)
//         |               ^
//     in block Down called at models/statcell.vae:40:14
//
// Code ranges: SC1xxx syntax and structure (this front end), SC2xxx names and imports,
// SC3xxx shapes, SC4xxx values and parameters (the compiler), SC5xxx what the tools need of a
// model and of its data. docs/language.md lists them all.

/** A source range. Lines and columns are 1-based; the end is exclusive (endCol is the column
 * just after the last character). Offsets are 0-based character offsets into the file. */
export interface Span {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
  offset: number;
  endOffset: number;
}

export type Severity = 'error' | 'warning' | 'note';

/** Every code the toolchain can emit, with its default severity and a one-line title. */
export const CODES = {
  // Syntax (lexer and parser).
  SC1001: { severity: 'error', title: 'unexpected token' },
  SC1002: { severity: 'error', title: 'unexpected end of file' },
  SC1003: { severity: 'error', title: 'invalid character' },
  SC1004: { severity: 'error', title: 'unterminated string' },
  // Structure, checked while building the AST.
  SC1101: { severity: 'error', title: 'statement not allowed here' },
  SC1102: { severity: 'error', title: 'duplicate declaration' },
  SC1103: { severity: 'error', title: 'duplicate parameter or input' },
  SC1104: { severity: 'error', title: 'block without return' },
  SC1105: { severity: 'error', title: 'instance name on something that is not a layer call' },
  SC1106: { severity: 'error', title: 'missing type' },
  SC1107: { severity: 'error', title: 'invalid type' },
  SC1108: { severity: 'error', title: 'model override must be named' },
  SC1109: { severity: 'error', title: 'spread outside a list or shape' },
  SC1110: { severity: 'error', title: 'required parameter after a parameter with a default' },
  // Names and imports (compiler).
  SC2001: { severity: 'error', title: 'unknown name' },
  SC2002: { severity: 'error', title: 'unknown block, layer or function' },
  SC2003: { severity: 'error', title: 'import not found' },
  SC2004: { severity: 'error', title: 'unknown parameter' },
  SC2005: { severity: 'error', title: 'missing argument' },
  SC2006: { severity: 'error', title: 'duplicate instance name' },
  SC2007: { severity: 'error', title: 'import cycle' },
  SC2008: { severity: 'error', title: 'layer or block without an instance name' },
  SC2009: { severity: 'error', title: 'unknown role' },
  // Shapes (compiler).
  SC3001: { severity: 'error', title: 'shape mismatch at a block boundary' },
  SC3002: { severity: 'error', title: 'rank mismatch' },
  SC3003: { severity: 'error', title: 'shapes do not broadcast' },
  SC3004: { severity: 'error', title: 'size is not divisible' },
  SC3005: { severity: 'error', title: 'size cannot be inferred' },
  // Values and parameters (compiler).
  SC4001: { severity: 'error', title: 'type mismatch' },
  SC4002: { severity: 'error', title: 'assertion failed' },
  SC4003: { severity: 'error', title: 'value must be known at compile time' },
  SC4004: { severity: 'error', title: 'invalid attribute value' },
  // What the tools need of a model and its data (trainer, eval, embed, generate, report).
  SC5001: { severity: 'error', title: 'the model does not declare what this tool needs' },
  SC5002: { severity: 'error', title: 'the data do not fit the model' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type DiagnosticCode = keyof typeof CODES;

/** One step of the chain of block call sites that led to a diagnostic (innermost first). */
export interface CallSite {
  block: string;
  span: Span;
}

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  message: string;
  span: Span;
  /** Block call sites, innermost first: "in block Down called at file:line:col". */
  callStack: CallSite[];
  /** Extra lines printed after the chain (hints: what to do). */
  notes: string[];
}

export function diagnostic(code: DiagnosticCode, span: Span, message: string, opts: { callStack?: CallSite[]; notes?: string[]; severity?: Severity } = {}): Diagnostic {
  return { code, severity: opts.severity ?? CODES[code].severity, message, span, callStack: opts.callStack ?? [], notes: opts.notes ?? [] };
}

/** Collects diagnostics in order; `errors` tells whether compilation may go on. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  add(d: Diagnostic): void { this.items.push(d); }
  error(code: DiagnosticCode, span: Span, message: string, opts?: { callStack?: CallSite[]; notes?: string[] }): void {
    this.add(diagnostic(code, span, message, opts));
  }
  get hasErrors(): boolean { return this.items.some((d) => d.severity === 'error'); }
  /** Sorted by file, then position (a parser may find errors out of order after recovery). */
  sorted(): Diagnostic[] {
    return [...this.items].sort((a, b) => a.span.file.localeCompare(b.span.file) || a.span.offset - b.span.offset);
  }
}

/** Thrown by APIs that cannot return partial results; carries every diagnostic. */
export class DiagnosticError extends Error {
  constructor(readonly diagnostics: Diagnostic[], sources?: SourceLookup) {
    super(sources ? renderDiagnostics(diagnostics, sources) : diagnostics.map(formatHeadline).join('\n'));
    this.name = 'DiagnosticError';
  }
}

/** Gives the text of a file by name (for the source line under a message); undefined if unknown. */
export type SourceLookup = ((file: string) => string | undefined) | Map<string, string> | Record<string, string>;

function lookup(sources: SourceLookup, file: string): string | undefined {
  if (typeof sources === 'function') return sources(file);
  if (sources instanceof Map) return sources.get(file);
  return Object.hasOwn(sources, file) ? sources[file] : undefined;
}

export function formatLocation(span: Span): string {
  return span.line ? `${span.file}:${span.line}:${span.col}` : span.file;
}

/** A span for what the command line said rather than a file (line 0): `--set size=64,40: error[SC4001]: …`. */
export function commandLineSpan(text: string): Span {
  return { file: text, line: 0, col: 0, endLine: 0, endCol: 0, offset: 0, endOffset: 0 };
}

/** The first line of a rendered diagnostic: `file:line:col: error[SC1001]: message`. */
export function formatHeadline(d: Diagnostic): string {
  return `${formatLocation(d.span)}: ${d.severity}[${d.code}]: ${d.message}`;
}

/** The full text: headline, the source line with a caret under the span, the call chain, notes. */
export function renderDiagnostic(d: Diagnostic, sources: SourceLookup): string {
  const out = [formatHeadline(d)];
  const text = lookup(sources, d.span.file);
  const lineText = text?.split(/\r?\n/)[d.span.line - 1];
  if (lineText !== undefined) {
    const num = String(d.span.line);
    const gutter = ' '.repeat(num.length);
    // Underline to the end of the span on its first line (at least one caret; tabs kept so the
    // caret lines up under tab-indented code).
    const start = d.span.col - 1;
    const end = d.span.endLine === d.span.line ? Math.max(d.span.endCol - 1, start + 1) : Math.max(lineText.length, start + 1);
    const pad = lineText.slice(0, start).replace(/[^\t]/g, ' ');
    out.push(`${gutter} |`, `${num} | ${lineText}`, `${gutter} | ${pad}${'^'.repeat(end - start)}`);
  }
  for (const site of d.callStack) out.push(`  in block ${site.block} called at ${formatLocation(site.span)}`);
  for (const note of d.notes) out.push(`  = note: ${note}`);
  return out.join('\n');
}

export function renderDiagnostics(ds: readonly Diagnostic[], sources: SourceLookup): string {
  return ds.map((d) => renderDiagnostic(d, sources)).join('\n\n');
}

/** A span covering `a` through `b` (same file). */
export function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, line: a.line, col: a.col, endLine: b.endLine, endCol: b.endCol, offset: a.offset, endOffset: b.endOffset };
}
