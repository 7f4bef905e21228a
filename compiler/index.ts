// The compiler's entry: a model file (and its imports) with parameter overrides → a
// CompiledModel whose graphs are built per batch size on request.

import { createHash } from 'node:crypto';
import { DiagnosticError } from '../dsl/diagnostics.ts';
import { loadModule } from '../dsl/load.ts';
import { numel } from '../kernels/types.ts';
import { Elaborator, type DebugOptions } from './elaborate.ts';
import type { CompiledModel } from './model.ts';

export interface CompileOptions {
  /** Parameter overrides (`--set name=value`). */
  overrides?: Record<string, unknown>;
  /** Which model of the file; default: the last one declared in it. */
  model?: string;
  debug?: DebugOptions;
}

export function compileModelFile(path: string, opts: CompileOptions = {}): CompiledModel {
  const load = loadModule(path);
  if (!load.ok) throw new DiagnosticError(load.diagnostics, load.sources);
  const el = new Elaborator(load, opts.model, opts.overrides ?? {}, opts.debug);
  const source = [...load.sources].map(([f, text]) => `# file: ${f}\n${text}`).join('\n');
  // Build once at batch 2 (training BatchNorm needs two values per channel) so that every
  // tensor is known and every shape checked up front.
  if (el.hasTrain) el.buildTrain(2);
  for (const e of el.entryNames) el.buildEntry(e, 2);
  return {
    name: el.name,
    source,
    sourceHash: createHash('sha256').update(source).digest('hex'),
    config: Object.fromEntries(el.params),
    tensors: [...el.specs.values()],
    entry: (name, batch) => el.buildEntry(name, batch),
    entryNames: el.entryNames,
    trainStep: (batch, accumulate) => el.buildTrain(batch, accumulate),
    applyStep: () => el.buildApply(),
  };
}

/** Trainable parameter count (weights, biases, BatchNorm γ/β), as the paper counts. */
export const parameterCount = (m: CompiledModel, owner?: (o: string) => boolean): number =>
  m.tensors.filter((t) => t.kind === 'param' && (!owner || owner(t.owner))).reduce((s, t) => s + numel(t.shape), 0);
