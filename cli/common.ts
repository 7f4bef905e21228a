// Shared by the CLI commands: loading a model (a .vae file with --set overrides, or the tiny
// built-in `tiny:reference` / `tiny:target`), opening a backend, opening a data split, and the
// run directory's run.json that lets eval / embed / generate rebuild the model a run trained.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileModelFile } from '../compiler/index.ts';
import type { CompiledModel } from '../compiler/model.ts';
import { CellDataset } from '../data/dataset.ts';
import { readManifest } from '../data/manifest.ts';
import type { Split } from '../data/split.ts';
import { openBackend, type BackendChoice } from '../runtime/device.ts';
import { tinyVae, type TinyOptions } from '../train/tiny.ts';

/** `--set k=v`: v as JSON when it parses (numbers, lists, booleans), else as a string. */
export function parseSet(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new Error(`--set ${value}: expected name=value, e.g. --set beta=0.3 or --set size=[64,40]`);
  const k = value.slice(0, eq).trim();
  const raw = value.slice(eq + 1).trim();
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    v = raw;
  }
  // JSON reads 1e309 as Infinity: no parameter wants that.
  const finite = (x: unknown): boolean => (typeof x === 'number' ? Number.isFinite(x) : Array.isArray(x) ? x.every(finite) : true);
  if (!finite(v)) throw new Error(`--set ${value}: ${Array.isArray(v) ? 'a number in the list' : raw} is beyond ±1.8e308, the largest a 64-bit float holds (it would be Infinity); give a finite number`);
  return { ...previous, [k]: v };
}

export async function loadModel(spec: string, overrides: Record<string, unknown> = {}): Promise<CompiledModel> {
  if (spec.startsWith('tiny:')) {
    const role = spec.slice(5);
    if (role !== 'reference' && role !== 'target') throw new Error(`--model ${spec}: the built-in tiny models are tiny:reference and tiny:target`);
    const base: Partial<TinyOptions> = role === 'target' ? { conditioned: true, channels: 1 } : {};
    return tinyVae({ ...base, ...(overrides as Partial<TinyOptions>) });
  }
  // Relative paths: from the working directory, else from the package (models/… ships with it).
  const inPackage = join(fileURLToPath(new URL('..', import.meta.url)), spec);
  if (!existsSync(spec) && existsSync(inPackage)) spec = inPackage;
  if (!existsSync(spec)) throw new Error(`--model ${spec}: no such file (the paper's models are in models/: reference2d.vae, target2d.vae, reference3d.vae, target3d.vae)`);
  return compileModelFile(spec, { overrides });
}

export async function backendFor(choice: string, log: (l: string) => void) {
  if (!['auto', 'webgpu', 'wasm'].includes(choice)) throw new Error(`--backend ${choice}: expected auto, webgpu or wasm`);
  const opened = await openBackend(choice as BackendChoice);
  log(opened.reason);
  return opened.backend;
}

/** Spatial size and dimensionality the model was built for. */
export function modelSize(model: CompiledModel): number[] {
  const size = model.config.size;
  if (!Array.isArray(size)) throw new Error(`${model.name}: its config has no size list`);
  return size as number[];
}

export function openSplit(manifest: string, model: CompiledModel, split: Split | 'all', opts: { skipBad?: boolean; log?: (l: string) => void; seed?: number } = {}): CellDataset {
  const file = resolve(manifest);
  const size = modelSize(model);
  const rows = readManifest(file, { seed: opts.seed ?? 1 });
  return new CellDataset(rows, { dims: size.length as 2 | 3, size, split: split === 'all' ? undefined : split, skipBad: opts.skipBad, log: opts.log, manifestFile: file });
}

/** What a run directory records so other commands can rebuild its model and data. */
export interface RunInfo {
  model: string;
  overrides: Record<string, unknown>;
  data: string;
  batch: number;
  seed: number;
  skipBad?: boolean;
}

export function writeRunInfo(dir: string, info: RunInfo): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), JSON.stringify(info, null, 1) + '\n');
}

export function readRunInfo(dir: string): RunInfo {
  const f = join(dir, 'run.json');
  if (!existsSync(f)) throw new Error(`${dir}: not a training run directory (no run.json); give the --out directory of a 'statcell train' run`);
  return JSON.parse(readFileSync(f, 'utf8'));
}

export const log = (line: string) => process.stderr.write(line + '\n');
