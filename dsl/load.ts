// Reads a .vae file and, transitively, the files it imports (paths relative to the importing
// file), through a reader: a callback or a map of file texts. Each file is parsed once; import
// problems are diagnostics at the import. Pure (no node: modules), so it runs in browsers too.

import type { Program } from './ast.ts';
import { DiagnosticBag, report, type Diagnostic } from './diagnostics.ts';
import { parse } from './index.ts';
import { dirnamePath, joinPath, normalizePath } from './path.ts';
import { resolveNames } from './resolve.ts';

/**
 * Thrown by a reader for a file that exists but may not be read: not a model file (SC2017), or
 * an import that lies outside the model's folder tree (SC2018). The file is never read, so never
 * quoted.
 */
export class ImportRefused extends Error {
  constructor(readonly why: string, readonly code: 'SC2017' | 'SC2018' = 'SC2017') {
    super(why);
    this.name = 'ImportRefused';
  }
}

/** Gives a file's text by its ('/'-separated, normalised) path, or throws when there is none. */
export type FileReader = (file: string) => string;
/** Where model files come from: a reader, or file texts keyed by path (normalised on lookup). */
export type FileSource = FileReader | ReadonlyMap<string, string> | Readonly<Record<string, string>>;

/**
 * The name statcell's own models/ folder (the paper's models, statcell.vae) goes by: an import by a
 * bare file name (`import "statcell.vae"`) that is not beside the importing file is looked for
 * there, so a user's variant anywhere imports the library as the paper's models do. The Node
 * reader maps the name to the folder; a checkpoint keeps the library's files under it.
 */
export const LIBRARY = '@statcell/models';

/** An import that may come from the library: a bare file name. */
export const libraryName = (importPath: string): string | undefined => (/^[^/]+\.vae$/.test(importPath) ? `${LIBRARY}/${importPath}` : undefined);

/**
 * The file an import of `importer` names: beside the importer, else (a bare file name) in the
 * library, as `exists` tells; beside it when neither is there (for the error).
 */
export function resolveImport(importer: string, importPath: string, exists: (file: string) => boolean): string {
  const beside = joinPath(dirnamePath(importer), importPath);
  const lib = libraryName(importPath);
  return exists(beside) || !lib || !exists(lib) ? beside : lib;
}

export interface LoadResult {
  /** The entry file's name as given (normalised). */
  entry: string;
  /** Each file's imports, in order, with the file each resolved to. */
  imports: Map<string, { path: string; target: string }[]>;
  /** Every file reached, in load order (imports before the files importing them). */
  programs: Map<string, Program>;
  /** File texts, for renderDiagnostics; the entry first, then the imports as reached. */
  sources: Map<string, string>;
  diagnostics: Diagnostic[];
  ok: boolean;
}

/** A reader over a callback or a map of texts; a map's keys are normalised (`./a.vae` = `a.vae`). */
export function readerOf(files: FileSource): FileReader {
  if (typeof files === 'function') return files;
  const byPath = new Map<string, string>();
  for (const [k, v] of files instanceof Map ? files : Object.entries(files)) byPath.set(normalizePath(k), v);
  return (file) => {
    const text = byPath.get(normalizePath(file));
    if (text === undefined) throw new Error(`no file '${file}' among the model files (${[...byPath.keys()].join(', ')})`);
    return text;
  };
}

/**
 * Node's file system as the reader when none is given (looked up at run time, so that this
 * module imports no node: module; in a browser the files must be given).
 */
function nodeReader(): FileReader {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs') as { readFileSync(f: string, enc: 'utf8'): string } | undefined;
  if (!fs) throw new Error('loadModule: no files given and no node:fs to read them from; pass a map of file texts or a reader');
  return (f) => fs.readFileSync(f, 'utf8');
}

export interface LoadOptions {
  /**
   * The names every file sees besides its own (the compiler's layers and builtin functions).
   * Given, every name of every loaded file is resolved once all are loaded (dsl/resolve.ts):
   * an unknown one is SC2001 whether or not a compile would run the code it is in.
   */
  prelude?: Iterable<string>;
}

/** Loads `path` and its imports from `files` (default, in Node only: the file system). */
export function loadModule(path: string, files?: FileSource, opts: LoadOptions = {}): LoadResult {
  const read = files === undefined ? nodeReader() : readerOf(files);
  const entry = normalizePath(path);
  const programs = new Map<string, Program>();
  const imports = new Map<string, { path: string; target: string }[]>();
  const sources = new Map<string, string>();
  const diags = new DiagnosticBag();
  const active: string[] = []; // files being loaded, to report import cycles

  const visit = (file: string, text: string): void => {
    // A byte-order mark (editors on Windows write one) is no part of the text: columns count from after it.
    const src = text.replace(/^\uFEFF/, '');
    sources.set(file, src);
    const r = parse(src, file);
    r.diagnostics.forEach((d) => diags.add(d));
    active.push(file);
    const resolved: { path: string; target: string }[] = [];
    imports.set(file, resolved);
    // A file's text, or why there is none: refused, or missing; each file tried once.
    const tried = new Map<string, { text?: string; refused?: ImportRefused }>();
    const attempt = (t: string): { text?: string; refused?: ImportRefused } => {
      if (programs.has(t) || active.includes(t)) return { text: '' }; // known: not read again
      if (!tried.has(t)) {
        try {
          tried.set(t, { text: read(t) });
        } catch (e) {
          tried.set(t, e instanceof ImportRefused ? { refused: e } : {});
        }
      }
      return tried.get(t)!;
    };
    for (const d of r.program.decls) {
      if (d.kind !== 'Import') continue;
      // A refused file exists: the refusal is the diagnostic, not a look elsewhere.
      const target = resolveImport(file, d.path, (t) => {
        const got = attempt(t);
        return got.text !== undefined || got.refused !== undefined;
      });
      const got = attempt(target);
      const lib = libraryName(d.path);
      resolved.push({ path: d.path, target });
      if (active.includes(target)) {
        diags.report('SC2007', d.pathSpan, { cycle: [...active.slice(active.indexOf(target)), target] }, { notes: ['move the shared blocks into a file that imports neither'] });
        continue;
      }
      if (programs.has(target)) continue;
      if (got.refused) {
        diags.report(got.refused.code, d.pathSpan, { path: d.path, why: got.refused.why });
        continue;
      }
      if (got.text === undefined) {
        diags.report('SC2003', d.pathSpan, { path: d.path, target }, { notes: [`import paths are relative to the importing file${lib ? `; a bare file name is also looked for in statcell's models/ (${LIBRARY})` : ''}`] });
        continue;
      }
      visit(target, got.text);
    }
    active.pop();
    programs.set(file, r.program);
  };

  let text: string;
  try {
    text = read(entry);
  } catch (e) {
    if (!(e instanceof ImportRefused)) throw e;
    // Located at the file as named (line 0: no line of it is shown, since it was not read).
    const span = { file: entry, line: 0, col: 0, endLine: 0, endCol: 0, offset: 0, endOffset: 0 };
    const diagnostics = [report(e.code, span, { path: entry, why: e.why })];
    return { entry, imports, programs, sources, diagnostics, ok: false };
  }
  visit(entry, text);
  // Names resolve across all the files (blocks and consts of each are seen by all); with a file
  // missing or a tree with holes, every name of theirs would be reported again.
  if (opts.prelude && !diags.hasErrors) resolveNames(programs.values(), opts.prelude, diags);
  const diagnostics = diags.sorted();
  return { entry, imports, programs, sources, diagnostics, ok: !diagnostics.some((d) => d.severity === 'error') };
}
