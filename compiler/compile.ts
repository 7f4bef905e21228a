// The compiler's core: model files (a map of texts or a reader) and an entry file, with parameter
// overrides → a CompiledModel whose graphs are built per batch size on request. Pure (no node:
// modules), so it compiles in browsers too; compiler/index.ts adds compileModelFile for Node.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { DiagnosticError, report } from '../dsl/diagnostics.ts';
import { MAX_NESTING } from '../dsl/index.ts';
import { LIBRARY, loadModule, resolveImport, type FileSource, type LoadResult } from '../dsl/load.ts';
import { dirnamePath, normalizePath, relativePath } from '../dsl/path.ts';
import { numel } from '../kernels/types.ts';
import { BUILTINS } from './builtins.ts';
import { Elaborator, type DebugOptions } from './elaborate.ts';
import { LAYER_NAMES } from './layers.ts';
import { fuse } from './fuse.ts';
import { lower } from './plan.ts';
import { storeActivationsInF16, type Precision } from './precision.ts';
import type { CompiledModel } from './model.ts';

export interface CompileOptions {
  /** Parameter overrides (`--set name=value`). */
  overrides?: Record<string, unknown>;
  /** Which model of the file; default: the last one declared in it. */
  model?: string;
  debug?: DebugOptions;
}

/** A model compiled from files: their texts by name relative to the entry file's folder. */
export type CompiledModelWithFiles = CompiledModel & Required<Pick<CompiledModel, 'files' | 'entryFile'>>;

/**
 * The model source as kept in checkpoints: each file, named relative to the entry file's folder
 * (`reference2d.vae`, `statcell.vae`, `../lib/x.vae`), in load order (the entry first), so that
 * neither the text nor its hash depends on where the files lie.
 */
export function modelSource(files: Iterable<readonly [string, string]>): { source: string; sourceHash: string } {
  const source = [...files].map(([f, text]) => `# file: ${f}\n${text}`).join('\n');
  return { source, sourceHash: bytesToHex(sha256(utf8ToBytes(source))) };
}

/**
 * Each loaded file under the name it is kept by, the entry first: relative to the entry's folder
 * when it is reached from the entry through relative imports, else (reached through an
 * absolute import, which names the file itself) by its absolute path. Compiling these names
 * again resolves every import to the same name.
 */
function relocatableNames(load: LoadResult): [string, string][] {
  const dir = dirnamePath(load.entry);
  // Kept as they are: files named by an absolute import, the library's (LIBRARY/…), and what they import.
  const absolute = new Set<string>([...load.programs.keys()].filter((f) => f.startsWith(`${LIBRARY}/`)));
  // Programs are in load order, imports before their importers: walk from the entry back.
  const order = [...load.programs.keys()].reverse();
  for (const f of order)
    for (const { path, target } of load.imports.get(f) ?? []) if (path.startsWith('/') || absolute.has(f)) absolute.add(target);
  let name = (f: string) => (absolute.has(f) ? f : relativePath(dir, f));
  // Each import must resolve to its file's name as the loader resolves it among these names:
  // beside the importer, else (a bare file name) in the library. Where one would not (an import
  // that climbs above `/`: `/a/b` importing `../../../x.vae` reaches `/x.vae`), every file keeps
  // the name it was loaded by, under which each import resolved once already.
  const names = new Set([...load.programs.keys()].map(name));
  const resolves = [...load.imports].every(([f, list]) => list.every(({ path, target }) => resolveImport(name(f), path, (n) => names.has(n)) === name(target)));
  if (!resolves) name = (f) => f;
  return [load.entry, ...[...load.sources.keys()].filter((f) => f !== load.entry)].map((f) => [name(f), load.sources.get(f)!]);
}

/** The names every model file sees: the layers and the builtin functions. */
export const PRELUDE: readonly string[] = [...LAYER_NAMES, ...Object.keys(BUILTINS)];

/**
 * Compiles the model of `entry` (a path that `files` knows; imports resolve relative to the
 * importing file). Diagnostics name files as `files` does; `files`, `source` and `sourceHash`
 * of the result name them relative to the entry's folder, so `compileModel(m.files, m.entryFile,
 * { overrides: … })` compiles the same model again, anywhere.
 */
export function compileModel(files: FileSource, entry: string, opts: CompileOptions = {}): CompiledModelWithFiles {
  try {
    return compileChecked(files, entry, opts);
  } catch (e) {
    if (e instanceof DiagnosticError) throw withOverrides(e, opts.overrides ?? {});
    // The last guard against deep input: a stack overflow in a pass that recurses (blocks
    // calling blocks, long operator chains) is SC1006 at the entry file rather than a crash.
    if (!(e instanceof RangeError) || !/call stack/.test(e.message)) throw e;
    const span = { file: normalizePath(entry), line: 1, col: 1, endLine: 1, endCol: 2, offset: 0, endOffset: 1 };
    throw new DiagnosticError([report('SC1006', span, { limit: MAX_NESTING }, { notes: ['the program recursed too deep for the compiler (blocks calling blocks, or a very long expression)'] })]);
  }
}

/**
 * An error of building the model (not of reading its files) names the overrides it was built
 * with: `--set channels=[]` failed inside the library's Decoder, which said nothing of them.
 */
function withOverrides(e: DiagnosticError, overrides: Record<string, unknown>): DiagnosticError {
  const first = e.diagnostics.findIndex((d) => d.severity === 'error');
  if (first < 0 || /^SC[12]/.test(e.diagnostics[first].code) || e.diagnostics[first].span.line === 0) return e; // not a build's, or at --set itself
  // Those a note names already (an assert's "dims = 1 is given by --set dims=1") are not repeated.
  const given = Object.entries(overrides).filter(([k]) => !e.diagnostics[first].notes.some((n) => n.startsWith(`${k} = `)));
  if (!given.length) return e;
  const note = `built with the overrides ${given.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')} (--set, or the run's run.json)`;
  const diagnostics = e.diagnostics.map((d, i) => (i === first ? { ...d, notes: [...d.notes, note] } : d));
  return new DiagnosticError(diagnostics, e.sources);
}

function compileChecked(files: FileSource, entry: string, opts: CompileOptions): CompiledModelWithFiles {
  // Every name of every file resolved before anything runs: an unknown one in code these
  // parameters never reach (a branch, a block not called) is still an error (dsl/resolve.ts).
  const load = loadModule(entry, files, { prelude: PRELUDE });
  if (!load.ok) throw new DiagnosticError(load.diagnostics, load.sources);
  const el = new Elaborator(load, opts.model, opts.overrides ?? {}, opts.debug);
  const named = relocatableNames(load);
  // The inputs' roles against their shapes first (SC3007): a wrong channel count breaks the builds
  // below with a later, less telling error.
  const inputs = el.describeInputs();
  // Build once at batch 2 (training BatchNorm needs two values per channel) so that every
  // tensor is known and every shape checked up front.
  if (el.hasTrain) el.buildTrain(2);
  for (const e of el.entryNames) el.buildEntry(e, 2);
  const roles = el.entryRoles();
  // Each graph is elaborated (and the train step differentiated) once per model and batch, and
  // lowered once per (graph, fusion): every caller shares them.
  const entryGraph = memo((name: string, batch: number) => el.buildEntry(name, batch));
  const trainStep = memo((batch: number, accumulate?: number) => el.buildTrain(batch, accumulate));
  const applyStep = memo(() => el.buildApply());
  const gradientCheck = memo(() => el.buildGradientCheck());
  const evaluateStep = memo((batch: number) => el.buildEvaluate(batch));
  const graphOf = (name: string, batch: number) => {
    const accumulate = /^accumulate:(\d+)$/.exec(name);
    return name === 'train' ? trainStep(batch)
      : accumulate ? trainStep(batch, Number(accumulate[1]))
      : name === 'apply' ? applyStep()
      : name === 'gradient-check' ? gradientCheck()
      : name === 'evaluate' ? evaluateStep(batch)
      : entryGraph(name, batch);
  };
  const lowered = memo((name: string, batch: number, fused: boolean, precision: Precision) => {
    const graph = graphOf(name, batch);
    // f16-storage tells activations by their batch axis: the same graph one batch larger.
    const g = precision === 'f16-storage' ? storeActivationsInF16(graph.graph, graphOf(name, batch + 1).graph) : graph.graph;
    return { graph, program: lower(fused ? fuse(g) : g) };
  });
  // Defaults filled in before the memo, so that program('train', 8) and program('train', 8, true) share one.
  const program = (name: string, batch: number, fused = true, precision: Precision = 'f32') => lowered(name, batch, fused, precision);
  return {
    name: el.name,
    ...modelSource(named),
    files: Object.fromEntries(named),
    entryFile: named[0][0],
    config: Object.fromEntries(el.params),
    tensors: [...el.specs.values()],
    entry: entryGraph,
    entryNames: el.entryNames,
    trainStep,
    applyStep,
    inputs,
    roles,
    evaluation: el.evaluation,
    evaluateStep,
    program,
    error: (code, args, o) => el.locate(code, args, o),
  };
}

/** `f` with its results kept per argument list (graphs and programs are immutable once built). */
function memo<A extends unknown[], R>(f: (...a: A) => R): (...a: A) => R {
  const cache = new Map<string, R>();
  return (...a) => {
    const key = JSON.stringify(a);
    if (!cache.has(key)) cache.set(key, f(...a));
    return cache.get(key)!;
  };
}

/** Trainable parameter count (weights, biases, BatchNorm γ/β), as the paper counts. */
export const parameterCount = (m: CompiledModel, owner?: (o: string) => boolean): number =>
  m.tensors.filter((t) => t.kind === 'param' && (!owner || owner(t.owner))).reduce((s, t) => s + numel(t.shape), 0);
