// A training run directory: run.json (how it was trained: model file, overrides, data, label
// vocabulary) and checkpoints/. Opening one rebuilds its model from the source kept in the
// checkpoint, so a run opens from any working directory and after being moved or copied. And
// loading a model file by name. Node only.

import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileModelFile } from '../compiler/index.ts';
import { compileModel, modelSource } from '../compiler/compile.ts';
import { DiagnosticError } from '../dsl/diagnostics.ts';
import type { CompiledModel } from '../compiler/model.ts';
import { PRECISIONS, type Precision } from '../compiler/precision.ts';
import type { Backend } from '../runtime/backend.ts';
import { ModelRuntime } from './model.ts';
import { Ajv } from 'ajv';
import { CheckpointError, checkpointNames, loadCheckpoint, readSidecar, resolveCheckpoint, schemaErrors, type Sidecar } from './checkpoint.ts';
import { makeDirs, readBoundedSync } from '../data/files.ts';
import { MAX_MANIFEST_BYTES } from '../data/manifest.ts';

/** What a run directory records so that other commands can rebuild its model and data. */
export interface RunInfo {
  /** The model file as given to `statcell train` (for the record: the model is rebuilt from the checkpoint's source). */
  model: string;
  overrides: Record<string, unknown>;
  /** The manifest, as an absolute path. */
  data: string;
  batch: number;
  seed: number;
  skipBad?: boolean;
  /** The label vocabulary the label input's one-hot rows index (from the training data). */
  labels: readonly string[];
  /** How images of another size than the model's were treated. */
  fit?: 'exact' | 'crop-pad';
  /** Activations stored as binary16 (`--precision f16-storage`); absent: f32. */
  precision?: Precision;
  /** How long the run trains (`--epochs` or `--iterations`), so that `--resume` alone finishes it. */
  epochs?: number;
  iterations?: number;
}

export function writeRunInfo(dir: string, info: RunInfo): void {
  makeDirs(dir);
  writeFileSync(join(dir, 'run.json'), JSON.stringify(info, null, 1) + '\n');
}

/** Largest run.json read: its label vocabulary comes from a manifest, itself at most MAX_MANIFEST_BYTES. */
export const MAX_RUN_JSON_BYTES = MAX_MANIFEST_BYTES;

export function readRunInfo(dir: string): RunInfo {
  const f = join(dir, 'run.json');
  if (!existsSync(f)) throw new Error(`${dir}: not a training run directory (no run.json); give the --out directory of a 'statcell train' run`);
  // A regular file within its bound: a FIFO blocked every command of the run, a 1.5 GB file took 2 GB.
  const text = readBoundedSync(f, MAX_RUN_JSON_BYTES, { fail: (why) => new Error(`${f}: cannot read it (${why})`) }).toString('utf8');
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch (e) {
    throw new Error(`${f}: not valid JSON (${(e as Error).message})`);
  }
  if (!validateRunInfo(info)) throw new Error(schemaErrors(f, validateRunInfo.errors));
  return info as unknown as RunInfo;
}

/** run.json's JSON schema: what the commands read back to rebuild the model and data. */
const RUN_SCHEMA = {
  type: 'object',
  required: ['overrides', 'data', 'batch', 'labels'],
  properties: {
    model: { type: 'string' },
    overrides: { type: 'object' },
    data: { type: 'string', minLength: 1 },
    batch: { type: 'integer', minimum: 1 },
    seed: { type: 'integer' },
    skipBad: { type: 'boolean' },
    labels: { type: 'array', items: { type: 'string' } },
    fit: { enum: ['exact', 'crop-pad'] },
    precision: { enum: [...PRECISIONS] },
    epochs: { type: 'integer', minimum: 1 },
    iterations: { type: 'integer', minimum: 1 },
  },
};
const validateRunInfo = new Ajv({ allErrors: true }).compile(RUN_SCHEMA);

/** Whether a run directory holds a checkpoint: the latest pointer, or any checkpoint's sidecar (a crash may leave one without the pointer). */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'checkpoints', 'latest')) || checkpointNames(join(dir, 'checkpoints')).length > 0;
}

/**
 * Refuses a fresh (not --resume) training run into a directory that already holds one, so that
 * its checkpoints and metrics are never overwritten or mixed with another run's. A run that
 * stopped before its first checkpoint (a bad image met at step 3, a kill) has nothing to resume:
 * its run.json and metrics.jsonl are removed and the fresh run starts in their place; returns the
 * line that says so (undefined when the directory was free). The caller holds the run's lock.
 */
export function assertFreshRunDir(dir: string): string | undefined {
  const held = ['run.json', 'checkpoints/latest', 'metrics.jsonl'].filter((f) => existsSync(join(dir, f)));
  if (hasCheckpoint(dir))
    throw new Error(`${dir} already holds a training run (${(held.length ? held : ['checkpoints']).join(', ')}); continue it with --resume, or give another --out`);
  if (!held.length) return undefined;
  for (const f of held) rmSync(join(dir, f), { force: true });
  return `${dir}: its run stopped before its first checkpoint, so there is nothing to resume; starting afresh (${held.join(' and ')} replaced)`;
}

/**
 * After a fresh run failed before its first step was recorded (a batch larger than the data, a
 * micro-batch that does not divide it, …), removes the run.json it wrote: there is nothing to
 * resume, and the corrected command must not be refused as a run directory already in use.
 */
export function forgetUnstartedRun(dir: string): void {
  if (!['checkpoints/latest', 'metrics.jsonl'].some((f) => existsSync(join(dir, f)))) rmSync(join(dir, 'run.json'), { force: true });
}

export interface OpenedRun {
  dir: string;
  info: RunInfo;
  model: CompiledModel;
  runtime: ModelRuntime;
  sidecar: Sidecar;
  checkpoint: string;
}

/** A model file with overrides; a relative path is looked up in the working directory, then in the package (models/… ships with it). */
export function loadModel(spec: string, overrides: Record<string, unknown> = {}): CompiledModel {
  const inPackage = join(fileURLToPath(new URL('..', import.meta.url)), spec);
  if (!existsSync(spec) && existsSync(inPackage)) spec = inPackage;
  if (!existsSync(spec)) throw new Error(`${spec}: no such file (the paper's models are in models/: reference2d.vae, target2d.vae, reference3d.vae, target3d.vae)`);
  return compileModelFile(spec, { overrides });
}

/** The model a checkpoint was trained with, compiled from the source files it keeps. */
export function modelOfCheckpoint(ckDir: string, name: string, overrides: Record<string, unknown>): CompiledModel {
  const file = join(ckDir, `${name}.json`);
  const m = readSidecar(ckDir, name).model;
  if (!m || typeof m.files !== 'object' || m.files === null || typeof m.entryFile !== 'string' || typeof m.files[m.entryFile] !== 'string')
    throw new CheckpointError(`checkpoint ${file}: field 'model.files' / 'model.entryFile' is missing or malformed (a checkpoint keeps its model's source files)`);
  // The files must be those the run trained: a sidecar edited or torn would build another model.
  const { sourceHash } = modelSource(Object.entries(m.files));
  if (sourceHash !== m.sourceHash)
    throw new CheckpointError(`checkpoint ${file}: field 'model.files' hashes to ${sourceHash.slice(0, 12)}…, not to its 'model.sourceHash' ${String(m.sourceHash).slice(0, 12)}… (the sidecar was edited or torn); restore it from a copy, or read another checkpoint with --checkpoint <name>`);
  return compileModel(new Map(Object.entries(m.files)), m.entryFile, { overrides, model: m.name });
}

/**
 * A run's checkpoint (`best`, `latest` or a name) and the model it holds, compiled; no tensors are
 * read. `log` is told which checkpoint was taken, and why when `best` fell back to the latest.
 */
export function runModel(dir: string, which = 'best', log?: (line: string) => void, set: Record<string, unknown> = {}): { info: RunInfo; name: string; model: CompiledModel } {
  const info = readRunInfo(dir);
  const ckDir = join(dir, 'checkpoints');
  // `best` exists only once a validation ran; fall back to the latest checkpoint.
  const best = which === 'best' ? resolveCheckpoint(ckDir, 'best') : undefined;
  const name = best ?? resolveCheckpoint(ckDir, which === 'best' ? 'latest' : which);
  if (!name) {
    throw new Error(`${dir}: no checkpoint '${which}' in ${ckDir}${!checkpointNames(ckDir).length ? `: the run has none yet (it stopped before its first checkpoint); train it on with statcell train --out ${dir} --resume` : ''}`);
  }
  let model: CompiledModel;
  try {
    model = modelOfCheckpoint(ckDir, name, { ...info.overrides, ...set });
  } catch (e) {
    // An error the compiler places on the command line (`--set size=abc`) of an override that came
    // from run.json is placed in run.json's field instead.
    if (!(e instanceof DiagnosticError)) throw e;
    const runJson = join(dir, 'run.json');
    const fromRunJson = (file: string) => !Object.keys(set).some((k) => file.startsWith(`--set ${k}=`));
    const placed = e.diagnostics.map((d) => (d.span.line === 0 && fromRunJson(d.span.file) ? { ...d, span: { ...d.span, file: `${runJson}: field overrides.${d.span.file.replace(/^--set /, '')}` } } : d));
    throw new DiagnosticError(placed, e.sources);
  }
  const fellBack = `the latest: no best, as ${model.evaluation ? 'no validation has run' : `${model.name} has no \`evaluate\` to pick one by`}`;
  const why = best ? 'best' : which === 'best' ? fellBack : which === 'latest' ? 'latest' : undefined;
  log?.(`${dir}: checkpoint ${name}${why ? ` (${why})` : ''}`);
  return { info, name, model };
}

/**
 * Opens a run at a checkpoint (`best`, `latest` or a name) on a backend, in the precision it was
 * trained in: a run trained with f16-storage is evaluated with its activations rounded the same way.
 */
export async function openRun(dir: string, backend: Backend, which = 'best', log?: (line: string) => void): Promise<OpenedRun> {
  const { info, name, model } = runModel(dir, which, log);
  const ckDir = join(dir, 'checkpoints');
  const { sidecar, tensors } = loadCheckpoint(ckDir, name, model);
  const runtime = new ModelRuntime(backend, model, { precision: info.precision });
  runtime.writeAll(tensors, join(ckDir, name));
  return { dir, info, model, runtime, sidecar, checkpoint: name };
}
