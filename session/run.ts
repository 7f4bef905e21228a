// A training run directory: run.json (how it was trained: model file, overrides, data, label
// vocabulary) and checkpoints/. Opening one rebuilds its model from the source kept in the
// checkpoint, so a run opens from any working directory and after being moved or copied. And
// loading a model file by name. Node only.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileModelFile } from '../compiler/index.ts';
import { compileModel } from '../compiler/compile.ts';
import type { CompiledModel } from '../compiler/model.ts';
import type { Backend } from '../runtime/backend.ts';
import { ModelRuntime } from './model.ts';
import { CheckpointError, loadCheckpoint, resolveCheckpoint, type Sidecar } from './checkpoint.ts';

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
}

export function writeRunInfo(dir: string, info: RunInfo): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), JSON.stringify(info, null, 1) + '\n');
}

export function readRunInfo(dir: string): RunInfo {
  const f = join(dir, 'run.json');
  if (!existsSync(f)) throw new Error(`${dir}: not a training run directory (no run.json); give the --out directory of a 'statcell train' run`);
  let info: RunInfo;
  try {
    info = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new Error(`${f}: not valid JSON (${(e as Error).message})`);
  }
  for (const [k, ok] of [['overrides', typeof info.overrides === 'object' && info.overrides !== null], ['data', typeof info.data === 'string'], ['batch', Number.isInteger(info.batch) && info.batch > 0], ['labels', Array.isArray(info.labels)]] as const)
    if (!ok) throw new Error(`${f}: field '${k}' is missing or malformed`);
  return info;
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
  if (!existsSync(spec)) throw new Error(`--model ${spec}: no such file (the paper's models are in models/: reference2d.vae, target2d.vae, reference3d.vae, target3d.vae)`);
  return compileModelFile(spec, { overrides });
}

/** The model a checkpoint was trained with, compiled from the source files it keeps. */
export function modelOfCheckpoint(ckDir: string, name: string, overrides: Record<string, unknown>): CompiledModel {
  const file = join(ckDir, `${name}.json`);
  let sidecar: Sidecar;
  try {
    sidecar = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`checkpoint ${file}: cannot read it (${(e as Error).message})`);
  }
  const m = sidecar.model;
  if (!m || typeof m.files !== 'object' || m.files === null || typeof m.entryFile !== 'string' || typeof m.files[m.entryFile] !== 'string')
    throw new CheckpointError(`checkpoint ${file}: field 'model.files' / 'model.entryFile' is missing or malformed (a checkpoint keeps its model's source files)`);
  return compileModel(new Map(Object.entries(m.files)), m.entryFile, { overrides, model: m.name });
}

/** Opens a run at a checkpoint (`best`, `latest` or a name) on a backend. */
export async function openRun(dir: string, backend: Backend, which = 'best'): Promise<OpenedRun> {
  const info = readRunInfo(dir);
  const ckDir = join(dir, 'checkpoints');
  // `best` exists only once a validation ran; fall back to the latest checkpoint.
  const name = resolveCheckpoint(ckDir, which) ?? (which === 'best' ? resolveCheckpoint(ckDir, 'latest') : null);
  if (!name) throw new Error(`${dir}: no checkpoint '${which}' in ${ckDir}`);
  const model = modelOfCheckpoint(ckDir, name, info.overrides);
  const { sidecar, tensors } = loadCheckpoint(ckDir, name, model);
  const runtime = new ModelRuntime(backend, model);
  runtime.writeAll(tensors, join(ckDir, name));
  return { dir, info, model, runtime, sidecar, checkpoint: name };
}
