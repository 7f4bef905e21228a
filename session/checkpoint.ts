// Checkpoints: <dir>/<name>.safetensors (the model's tensors by their store names: parameters
// and state) plus <name>.json (the sidecar: step, epoch, seeds, model source and hash, config,
// backend, metrics, best validation ELBO), and two pointer files, `latest` and `best`, holding a
// checkpoint's name. The optimizer state (adam.m.* / adam.v.*, as large as the parameters twice
// over) is needed only to resume, and a run resumes from its latest checkpoint: it is written
// beside that one, <name>.optimizer.safetensors, and removed from the previous checkpoint once
// `latest` names the new one. Every file is written atomically (tmp + fsync + rename + fsync of
// the directory), tensors first and pointers last, so a process killed at any moment leaves
// `latest` naming a complete checkpoint with its optimizer state.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import type { CompiledModel } from '../compiler/model.ts';
import { MAX_SAFETENSORS_BYTES, parseSafetensors, writeSafetensors } from '../runtime/safetensors.ts';
import { alive } from './lock.ts';
import type { LossScaleState } from './loss-scale.ts';
import { FileReadError, MiB, readBoundedSync, writeAtomic, makeDirs } from '../data/files.ts';

export interface Sidecar {
  format: 'statcell-checkpoint/1';
  /** Checkpoint name (file stem). */
  name: string;
  /** Iterations completed: training resumes at this iteration. */
  iteration: number;
  /** Epochs completed (fractional for a mid-epoch checkpoint). */
  epoch: number;
  /**
   * Seeds of every random stream. All generators are counter-based (Philox keyed by the
   * iteration, the batch sampler a hash of (seed, iteration)), so seeds + iteration are their
   * whole state: nothing else needs saving to continue the same streams.
   */
  seeds: { init: number; data: number };
  /** The model: its source files (relative names → text) and entry file, enough to compile it again anywhere. */
  model: { name: string; config: Record<string, unknown>; source: string; sourceHash: string; files?: Record<string, string>; entryFile?: string };
  backend: string;
  batch: number;
  optimizer: { kind: string; lr: number; beta1: number; beta2: number; eps: number; step: number };
  /** The last step's metrics and the last validation result. */
  metrics: Record<string, number>;
  /** The model's evaluation on the validation split: `elbo` (its first value) and every named value. */
  validation?: { elbo: number } & Record<string, number>;
  best?: { name: string; elbo: number };
  /** The dynamic loss scale's state (f16-storage training; session/loss-scale.ts). */
  lossScale?: LossScaleState;
  /** SHA-256 of the .safetensors file, checked on load. */
  tensorsSha256: string;
  /** SHA-256 of <name>.optimizer.safetensors while this checkpoint keeps its optimizer state (only the latest does). */
  optimizerSha256?: string;
  written: string;
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Removes temporary files (`*.tmp-PID`) that a process killed mid-write left behind. */
function removeStaleTemps(dir: string): void {
  for (const f of readdirSync(dir)) {
    const m = /\.tmp-(\d+)$/.exec(f);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(join(dir, f), { force: true });
  }
}

/** The file of a checkpoint's optimizer state, beside its tensors. */
const OPTIMIZER_FILE = '.optimizer.safetensors';

export const checkpointName = (iteration: number, epochEnd: boolean, epoch: number): string =>
  epochEnd ? `epoch-${String(epoch).padStart(4, '0')}` : `step-${String(iteration).padStart(8, '0')}`;

/** Tensor shapes by store name: the model's tensors and their Adam moments. */
function shapesOf(model: CompiledModel): Map<string, readonly number[]> {
  const shapes = new Map<string, readonly number[]>();
  for (const t of model.tensors) {
    shapes.set(t.name, t.shape);
    if (t.kind === 'param') for (const w of ['m', 'v']) shapes.set(`adam.${w}.${t.name}`, t.shape);
  }
  return shapes;
}

/**
 * Writes checkpoint `sidecar.name` from `tensors` (the runtime's store: the model's tensors, Adam's
 * moments and gradient accumulators) and points `pointers` at it. Written as the latest, it keeps
 * the optimizer state in its own file, and every older checkpoint's is removed afterwards; any
 * other checkpoint holds the model's tensors only.
 */
export function saveCheckpoint(dir: string, model: CompiledModel, tensors: Map<string, Float32Array>, sidecar: Omit<Sidecar, 'format' | 'tensorsSha256' | 'optimizerSha256' | 'written'>, pointers: ('latest' | 'best')[] = ['latest']): Sidecar {
  // JSON writes NaN as null, which would read back as "no value": a diverged run is an error, and
  // it is raised before any file is written, so the previous checkpoints stay as they were.
  for (const [where, values] of [['metrics', sidecar.metrics], ['validation', sidecar.validation ?? {}]] as const)
    for (const [k, v] of Object.entries(values)) if (!Number.isFinite(v)) throw new CheckpointError(`checkpoint ${join(dir, sidecar.name)}: ${where}.${k} is ${v} (training diverged); not saved`);
  for (const t of model.tensors) {
    const data = t.kind === 'param' ? tensors.get(t.name) : undefined;
    if (data && !data.every(Number.isFinite)) throw new CheckpointError(`checkpoint ${join(dir, sidecar.name)}: parameter '${t.name}' holds NaN or infinite values (training diverged); not saved`);
  }
  makeDirs(dir);
  removeStaleTemps(dir);
  const shapes = shapesOf(model);
  const own = new Set(model.tensors.map((t) => t.name));
  const file = (keep: (name: string) => boolean) =>
    writeSafetensors(new Map([...tensors].filter(([name]) => keep(name)).map(([name, data]) => [name, { shape: shapes.get(name) ?? [data.length], data }])), { format: 'statcell', model: model.name, iteration: String(sidecar.iteration) });
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const bytes = file((n) => own.has(n));
  const asLatest = pointers.includes('latest');
  const optimizer = asLatest && [...tensors.keys()].some((n) => !own.has(n)) ? file((n) => !own.has(n)) : undefined;
  const full: Sidecar = { format: 'statcell-checkpoint/1', ...sidecar, tensorsSha256: sha(bytes), ...(optimizer && { optimizerSha256: sha(optimizer) }), written: new Date().toISOString() };
  writeAtomic(join(dir, `${sidecar.name}.safetensors`), bytes);
  if (optimizer) writeAtomic(join(dir, sidecar.name + OPTIMIZER_FILE), optimizer);
  writeAtomic(join(dir, `${sidecar.name}.json`), JSON.stringify(full, null, 1) + '\n');
  for (const p of pointers) writeAtomic(join(dir, p), sidecar.name + '\n');
  if (asLatest) dropOptimizerState(dir, sidecar.name);
  return full;
}

/**
 * Removes the optimizer state of every checkpoint but `latest` (only the latest is resumed from):
 * first its sidecar stops naming it (rewritten atomically), then the file goes, so a crash in
 * between leaves at most a stray file, which the next call removes.
 */
function dropOptimizerState(dir: string, latest: string): void {
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(OPTIMIZER_FILE)) continue;
    const name = f.slice(0, -OPTIMIZER_FILE.length);
    if (name === latest) continue;
    const side = join(dir, `${name}.json`);
    let v: Partial<Sidecar> | undefined;
    try {
      v = JSON.parse(readBoundedSync(side, MAX_SIDECAR_BYTES).toString('utf8'));
    } catch {
      v = undefined; // no sidecar, or not one that loads anyway (not JSON, not a regular file): nothing names the file
    }
    if (v && typeof v === 'object' && v.optimizerSha256 !== undefined) {
      delete v.optimizerSha256;
      writeAtomic(side, JSON.stringify(v, null, 1) + '\n');
    }
    rmSync(join(dir, f), { force: true });
  }
}

/** A checkpoint name: a file stem in the checkpoint folder, never a path out of it. */
const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Refuses a file that resolves (through symlinks) outside `dir`: a checkpoint is its folder's own. */
function confine(dir: string, file: string): void {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return; // missing: the read that follows names it
  }
  const root = realpathSync(dir);
  if (!real.startsWith(root + sep)) throw new CheckpointError(`${file}: resolves to ${real}, outside the checkpoint folder ${root} (a symbolic link?); refused`);
}

/**
 * The checkpoint a pointer (`latest`, `best`) or a name refers to; null when the pointer does not
 * exist. A pointer that names no checkpoint of this folder (a path, an empty or huge file) is an
 * error naming the pointer file.
 */
export function resolveCheckpoint(dir: string, which = 'latest'): string | null {
  if (which === 'latest' || which === 'best') {
    const p = join(dir, which);
    if (!existsSync(p)) return null;
    confine(dir, p);
    const must = `${p}: the pointer must hold the name of a checkpoint in ${dir} (like epoch-0003)`;
    let name: string;
    try {
      name = readBoundedSync(p, 200).toString('utf8').trim(); // a regular file only: a FIFO blocked every command of the run
    } catch (e) {
      throw e instanceof FileReadError ? new CheckpointError(`${must}; ${e.reason}`) : e;
    }
    if (!CHECKPOINT_NAME.test(name) || name.includes('..')) throw new CheckpointError(`${must}, it holds ${JSON.stringify(name)}`);
    return name;
  }
  const name = which.replace(/\.(safetensors|json)$/, '');
  if (!CHECKPOINT_NAME.test(name) || name.includes('..')) throw new CheckpointError(`--checkpoint ${which}: give best, latest or the name of a checkpoint in ${dir} (like epoch-0003)`);
  return name;
}

const nat = { type: 'integer', minimum: 0 } as const;
const finite = { type: 'number' } as const; // JSON has no NaN or Infinity: a non-finite value was written as null
/** The sidecar's JSON schema: every field the trainer and the commands read back. */
const SIDECAR_SCHEMA = {
  type: 'object',
  required: ['format', 'name', 'iteration', 'epoch', 'seeds', 'model', 'backend', 'batch', 'optimizer', 'metrics', 'tensorsSha256'],
  properties: {
    format: { const: 'statcell-checkpoint/1' },
    name: { type: 'string', pattern: CHECKPOINT_NAME.source },
    iteration: nat,
    epoch: { type: 'number', minimum: 0 },
    seeds: { type: 'object', required: ['init', 'data'], properties: { init: { type: 'integer' }, data: { type: 'integer' } } },
    model: {
      type: 'object',
      required: ['name', 'config', 'sourceHash'],
      properties: { name: { type: 'string' }, config: { type: 'object' }, source: { type: 'string' }, sourceHash: { type: 'string' }, files: { type: 'object', additionalProperties: { type: 'string' } }, entryFile: { type: 'string' } },
    },
    backend: { type: 'string' },
    batch: { type: 'integer', minimum: 1 },
    optimizer: { type: 'object', required: ['step'], properties: { kind: { type: 'string' }, lr: finite, beta1: finite, beta2: finite, eps: finite, step: nat } },
    metrics: { type: 'object', additionalProperties: finite },
    validation: { type: 'object', required: ['elbo'], additionalProperties: finite },
    best: { type: 'object', required: ['name', 'elbo'], properties: { name: { type: 'string', pattern: CHECKPOINT_NAME.source }, elbo: finite } },
    lossScale: { type: 'object', required: ['scale', 'goodSteps', 'skipped'], properties: { scale: { type: 'number', exclusiveMinimum: 0 }, goodSteps: nat, skipped: nat } },
    tensorsSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    optimizerSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    written: { type: 'string' },
  },
};
const validateSidecar = new Ajv({ allErrors: true }).compile(SIDECAR_SCHEMA);

/** "file: /field must be …" for each schema violation (ajv's instancePath names the field). */
export const schemaErrors = (file: string, errors: ErrorObject[] | null | undefined): string =>
  `${file}: ${(errors ?? []).map((e) => `${e.instancePath || '(top level)'} ${e.message}`).join('; ')}`;

/** Largest sidecar read: it keeps the model's source files (the paper's are ~20 KB). */
export const MAX_SIDECAR_BYTES = 64 * MiB;

/**
 * A checkpoint's file: a regular file within `maxBytes` (a FIFO blocked the command for good, a
 * huge file filled memory), any failure named with the file.
 */
function readCheckpointFile(file: string, maxBytes: number, what: string): Buffer {
  return readBoundedSync(file, maxBytes, { fail: (why) => new CheckpointError(`checkpoint ${file}: cannot read ${what} (${why})`) });
}

/** Checkpoint `name`'s sidecar, read within its bound and checked against its schema, naming the file and the field that is wrong. */
export function readSidecar(dir: string, name: string): Sidecar {
  const file = join(dir, `${name}.json`);
  confine(dir, file);
  requireCheckpoint(dir, name);
  let v: unknown;
  try {
    v = JSON.parse(readCheckpointFile(file, MAX_SIDECAR_BYTES, 'its sidecar').toString('utf8'));
  } catch (e) {
    throw e instanceof CheckpointError ? e : new CheckpointError(`checkpoint ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!validateSidecar(v)) throw new CheckpointError(schemaErrors(file, validateSidecar.errors));
  return v as unknown as Sidecar;
}

export interface LoadedCheckpoint {
  sidecar: Sidecar;
  tensors: Map<string, Float32Array>;
}

/** The checkpoints in `dir` (their sidecars' names), sorted; none when the folder is missing. */
export function checkpointNames(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort() : [];
}

/** What else a run holds, for the messages: a reading command can take another with --checkpoint. */
function otherCheckpoints(dir: string, name: string): string {
  const names = checkpointNames(dir).filter((n) => n !== name);
  return names.length ? `the run's other checkpoints: ${names.join(', ')}` : 'the run has no other checkpoint';
}

/** CheckpointError unless checkpoint `name` (its sidecar) is in `dir`, naming the others. */
export function requireCheckpoint(dir: string, name: string): void {
  if (!existsSync(join(dir, `${name}.json`))) throw new CheckpointError(`checkpoint ${join(dir, name)}: no such checkpoint (${otherCheckpoints(dir, name)})`);
}

/**
 * Loads and verifies a checkpoint (hash of the tensors file, and the model source hash when
 * `model` is given). With `optimizer` (to resume training) it also loads the optimizer state, and
 * a checkpoint without it is an error: Adam restarted from zero moments would take steps of
 * about 3·lr (its bias correction assumes moments averaged over every step so far), so the run
 * would neither continue exactly nor smoothly.
 */
export function loadCheckpoint(dir: string, name: string, model?: CompiledModel, opts: { optimizer?: boolean } = {}): LoadedCheckpoint {
  const stem = join(dir, name);
  if (!CHECKPOINT_NAME.test(name) || name.includes('..')) throw new CheckpointError(`${stem}: not a checkpoint name`);
  const sidecar = readSidecar(dir, name);
  confine(dir, `${stem}.safetensors`);
  const bytes = readCheckpointFile(`${stem}.safetensors`, MAX_SAFETENSORS_BYTES, 'its tensors');
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== sidecar.tensorsSha256)
    throw new CheckpointError(
      `checkpoint ${stem}.safetensors: its SHA-256 ${sha.slice(0, 12)}… differs from the sidecar's ${sidecar.tensorsSha256.slice(0, 12)}… (a torn or replaced file). Restore it from a copy; eval, embed, generate, report, run, export-web, serve and analyze features read another with --checkpoint <name> (${otherCheckpoints(dir, name)}); training resumes only from the latest, which alone keeps the optimizer's state`,
    );
  if (model && (sidecar.model.sourceHash !== model.sourceHash || JSON.stringify(sidecar.model.config) !== JSON.stringify(model.config))) {
    // Say which differs: the source, or which parameter values (the --set options, or run.json's overrides).
    const was = sidecar.model.config as Record<string, unknown>, now = model.config;
    const params = [...new Set([...Object.keys(was), ...Object.keys(now)])].filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]));
    const what = sidecar.model.sourceHash !== model.sourceHash
      ? `its source (hash ${sidecar.model.sourceHash.slice(0, 12)}…) differs from the model's now (${model.sourceHash.slice(0, 12)}…)`
      : `its parameters differ: ${params.map((k) => `${k} was ${JSON.stringify(was[k])}, now ${JSON.stringify(now[k])}`).join('; ')} (from --set, or the run's run.json overrides)`;
    throw new CheckpointError(`checkpoint ${stem}: written by model ${sidecar.model.name}, but ${what}; use the same model and --set options, or start a fresh run in another directory`);
  }
  const tensors = new Map<string, Float32Array>();
  const shapes = model ? shapesOf(model) : new Map<string, readonly number[]>();
  const params = new Set(model?.tensors.filter((t) => t.kind === 'param').map((t) => t.name));
  const take = (file: string, b: Uint8Array) => {
    let parsed;
    try {
      parsed = parseSafetensors(b);
    } catch (e) {
      throw new CheckpointError(`checkpoint ${file}: ${(e as Error).message}`);
    }
    for (const [n, t] of parsed.tensors) {
      // Float values only: an integer tensor is no weight (an I64 one failed as "Cannot convert a BigInt value to a number").
      if (!['F32', 'F64', 'F16', 'BF16'].includes(t.dtype)) throw new CheckpointError(`checkpoint ${file}: tensor '${n}' is ${t.dtype}; a checkpoint holds float tensors (F32)`);
      const want = shapes.get(n);
      // A tensor must have the model's shape, not only its number of values ([2, 8] is not [8, 2]).
      if (want && want.join() !== t.shape.join()) throw new CheckpointError(`checkpoint ${file}: tensor '${n}' is [${t.shape.length > 8 ? `${t.shape.slice(0, 8).join(', ')}, … (${t.shape.length} dims)` : t.shape.join(', ')}], the model's is [${want.join(', ')}]`);
      const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
      // As saveCheckpoint refuses to write them: NaN weights made eval print a null ELBO and generate write NaN images.
      const bad = params.has(n) ? data.findIndex((v) => !Number.isFinite(v)) : -1;
      if (bad >= 0) throw new CheckpointError(`checkpoint ${file}: parameter '${n}' holds ${data[bad]} at index ${bad}; a checkpoint's weights are finite`);
      tensors.set(n, data);
    }
  };
  take(`${stem}.safetensors`, bytes);
  if (opts.optimizer) {
    const file = stem + OPTIMIZER_FILE;
    if (sidecar.optimizerSha256 !== undefined) {
      confine(dir, file);
      let ob: Buffer;
      try {
        ob = readBoundedSync(file, MAX_SAFETENSORS_BYTES);
      } catch (e) {
        throw new CheckpointError(`checkpoint ${stem}: cannot read its optimizer state (${e instanceof FileReadError ? `${e.reason}: ${file}` : (e as Error).message}); it cannot be resumed from. Restore the file from a copy, or start a fresh run with --out another folder (eval, embed, generate and the analyses still read the checkpoint's weights)`);
      }
      const osha = createHash('sha256').update(ob).digest('hex');
      if (osha !== sidecar.optimizerSha256) throw new CheckpointError(`checkpoint ${file}: its SHA-256 ${osha.slice(0, 12)}… differs from the sidecar's ${sidecar.optimizerSha256.slice(0, 12)}… (a torn or replaced file); it cannot be resumed from`);
      take(file, ob);
    }
    // (A checkpoint written before the optimizer state had its own file holds adam.* itself.)
    const lacking = model?.tensors.filter((t) => t.kind === 'param' && !(tensors.has(`adam.m.${t.name}`) && tensors.has(`adam.v.${t.name}`))) ?? [];
    if ((model && lacking.length) || ![...tensors.keys()].some((n) => n.startsWith('adam.')))
      throw new CheckpointError(
        `checkpoint ${stem}: holds no optimizer state (Adam's moments${lacking.length ? ` of ${lacking[0].name}${lacking.length > 1 ? ` and ${lacking.length - 1} more` : ''}` : ''}; no ${stem}${OPTIMIZER_FILE}), so training cannot resume from it. Only a run's latest checkpoint keeps them; its weights still serve eval, embed, generate and report`,
      );
  }
  return { sidecar, tensors };
}

/** Removes a checkpoint's files (used to keep only the newest few mid-epoch checkpoints). */
export function removeCheckpoint(dir: string, name: string): void {
  for (const f of [name + OPTIMIZER_FILE, `${name}.safetensors`, `${name}.json`]) rmSync(join(dir, f), { force: true });
}
