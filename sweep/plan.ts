// The sweep plan: the grid of overrides (`--sweep beta=0.01:0.99:25`, `--sweep latent=4,8`; several
// give the product), written as S/sweep.json — the one file every scheduler's task reads its index
// from. Validated with ajv when read back, so a hand-edited plan fails with the file and the field.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { loadModel } from '../session/run.ts';
import { makeDirs } from '../data/files.ts';

/** Most indices one sweep may have (Slurm's default MaxArraySize is 1001); past it the grid is refused before it is built. */
export const MAX_SWEEP_INDICES = 10000;

/** The options of `statcell train` that every index shares. */
export interface SweepOptions {
  backend: string;
  batch: number;
  epochs?: number;
  iterations?: number;
  seed: number;
  checkpointEvery?: number;
  evalSamples: number;
  fit?: 'exact' | 'crop-pad';
  microBatch?: number;
}

export interface SweepPlan {
  version: 1;
  model: string;
  data: string;
  /** The --set overrides every index shares; each index's own ones are laid over them. */
  set: Record<string, unknown>;
  axes: { name: string; values: unknown[] }[];
  options: SweepOptions;
  indices: { index: number; set: Record<string, unknown> }[];
}

/** `name=lo:hi:n` (n values, linear, both ends included) or `name=a,b,c` (JSON when it parses). */
export function parseAxis(spec: string): { name: string; values: unknown[] } {
  const eq = spec.indexOf('=');
  if (eq < 1) throw new Error(`--sweep ${spec}: expected name=lo:hi:n or name=a,b,c, e.g. --sweep beta=0.01:0.99:25`);
  const name = spec.slice(0, eq).trim();
  const rhs = spec.slice(eq + 1).trim();
  const range = rhs.split(':');
  if (range.length === 3) {
    const [lo, hi, n] = range.map(Number);
    if (![lo, hi].every(Number.isFinite)) throw new Error(`--sweep ${spec}: lo and hi of lo:hi:n must be numbers`);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--sweep ${spec}: n of lo:hi:n must be a positive integer`);
    if (n === 1 && lo !== hi) throw new Error(`--sweep ${spec}: one value cannot span ${lo}…${hi}; give n ≥ 2 or lo = hi`);
    if (n > MAX_SWEEP_INDICES) throw new Error(`--sweep ${spec}: ${n} values, more than the ${MAX_SWEEP_INDICES} indices a sweep may have`);
    // lo + k·step, rounded to 12 significant digits so 0.01:0.99:25 gives 0.4 rather than 0.40000000000000002.
    return { name, values: Array.from({ length: n }, (_, k) => (n === 1 ? lo : Number((lo + ((hi - lo) * k) / (n - 1)).toPrecision(12)))) };
  }
  if (range.length !== 1) throw new Error(`--sweep ${spec}: a range is lo:hi:n (three parts), got ${range.length}`);
  const texts = rhs.split(',').map((s) => s.trim());
  if (texts.some((v) => !v)) throw new Error(`--sweep ${spec}: an empty value in the list`);
  const values = texts.map((v) => {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  });
  // Two indices of one configuration would train the same run twice.
  const seen = new Set<string>();
  for (const v of values) {
    const key = JSON.stringify(v);
    if (seen.has(key)) throw new Error(`--sweep ${spec}: ${key} is given twice`);
    seen.add(key);
  }
  return { name, values };
}

/** The product of the axes, the first axis slowest: index i's overrides. */
export function grid(axes: { name: string; values: unknown[] }[]): Record<string, unknown>[] {
  const names = new Set<string>();
  for (const a of axes) {
    if (names.has(a.name)) throw new Error(`--sweep ${a.name}: given twice; put every value in one --sweep`);
    names.add(a.name);
  }
  const count = axes.reduce((n, a) => n * a.values.length, 1);
  if (count > MAX_SWEEP_INDICES) throw new Error(`--sweep ${axes.map((a) => `${a.name} (${a.values.length})`).join(' × ')}: ${count} indices, more than the ${MAX_SWEEP_INDICES} a sweep may have`);
  let out: Record<string, unknown>[] = [{}];
  for (const a of axes) out = out.flatMap((o) => a.values.map((v) => ({ ...o, [a.name]: v })));
  return out;
}

export function makePlan(o: { model: string; data: string; set: Record<string, unknown>; sweep: string[]; options: SweepOptions }): SweepPlan {
  if (!o.sweep.length) throw new Error('statcell sweep plan: give at least one --sweep, e.g. --sweep beta=0.01:0.99:25');
  const axes = o.sweep.map(parseAxis);
  for (const a of axes) if (a.name in o.set) throw new Error(`--sweep ${a.name} and --set ${a.name}: one parameter cannot be both swept and fixed`);
  if (o.options.epochs === undefined && o.options.iterations === undefined) throw new Error('statcell sweep plan: give --epochs or --iterations (every index trains that long)');
  // What train would refuse in every task of the array, refused here once.
  if (o.options.epochs !== undefined && o.options.iterations !== undefined) throw new Error('statcell sweep plan: give --epochs or --iterations, not both');
  const { batch, microBatch } = o.options;
  if (microBatch !== undefined && batch % microBatch !== 0)
    throw new Error(`statcell sweep plan: --micro-batch ${microBatch} does not divide --batch ${batch}; give one of ${Array.from({ length: batch }, (_, i) => i + 1).filter((d) => batch % d === 0).join(', ')}`);
  const plan: SweepPlan = { version: 1, model: resolve(o.model), data: resolve(o.data), set: o.set, axes, options: o.options, indices: grid(axes).map((set, index) => ({ index, set })) };
  checkIndicesCompile(plan);
  return plan;
}

/**
 * Compiles the model with every value of every axis (each laid over index 0's overrides, so each
 * is one of the plan's indices): an unknown parameter, a value of the wrong type or one the model's
 * asserts refuse fails here, not in every task of a queued job array. 1 + Σ(values − 1) compiles
 * (~0.1 s each), not the whole product.
 */
function checkIndicesCompile(plan: SweepPlan): void {
  const tried = new Set<string>();
  for (const a of plan.axes)
    for (const v of a.values) {
      const set = { ...overridesOf(plan, 0), [a.name]: v };
      const key = JSON.stringify(set);
      if (tried.has(key)) continue;
      tried.add(key);
      try {
        loadModel(plan.model, set);
      } catch (e) {
        throw new Error(`--sweep ${a.name}=${JSON.stringify(v)}: the index with ${Object.entries(set).map(([k, x]) => `${k}=${JSON.stringify(x)}`).join(' ')} does not compile: ${(e as Error).message}`);
      }
    }
}

const SCHEMA = {
  type: 'object',
  required: ['version', 'model', 'data', 'set', 'axes', 'options', 'indices'],
  additionalProperties: false,
  properties: {
    version: { const: 1 },
    model: { type: 'string', minLength: 1 },
    data: { type: 'string', minLength: 1 },
    set: { type: 'object' },
    axes: { type: 'array', minItems: 1, items: { type: 'object', required: ['name', 'values'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1 }, values: { type: 'array', minItems: 1 } } } },
    options: {
      type: 'object',
      required: ['backend', 'batch', 'seed', 'evalSamples'],
      additionalProperties: false,
      properties: {
        backend: { enum: ['auto', 'webgpu', 'wasm'] },
        batch: { type: 'integer', minimum: 1 },
        epochs: { type: 'integer', minimum: 1 },
        iterations: { type: 'integer', minimum: 1 },
        seed: { type: 'integer', minimum: 0 },
        checkpointEvery: { type: 'integer', minimum: 1 },
        evalSamples: { type: 'integer', minimum: 1 },
        fit: { enum: ['exact', 'crop-pad'] },
        microBatch: { type: 'integer', minimum: 1 },
      },
    },
    indices: { type: 'array', minItems: 1, items: { type: 'object', required: ['index', 'set'], additionalProperties: false, properties: { index: { type: 'integer', minimum: 0 }, set: { type: 'object' } } } },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

export const planFile = (dir: string) => join(dir, 'sweep.json');

/**
 * Writes the plan into a new sweep folder. One that holds a plan or runs is refused: its DONE
 * indices would be reported under the new plan's values (index 0 trained at β = 0.05 read as 0.1).
 */
export function writePlan(dir: string, plan: SweepPlan): void {
  const used = [planFile(dir), join(dir, 'runs')].find((f) => existsSync(f));
  if (used) throw new Error(`sweep plan: ${dir} already holds a sweep (${used}); its finished runs would be read under the new plan's values. Give a new --out, or remove the folder first`);
  makeDirs(dir);
  writeFileSync(planFile(dir), JSON.stringify(plan, null, 2) + '\n');
}

export function readPlan(dir: string): SweepPlan {
  const file = planFile(dir);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no sweep plan here; write one with statcell sweep plan --out ' + dir : (e as Error).message}`);
  }
  if (!validate(json)) throw new Error(`${file}: ${validate.errors!.map((e) => `${e.instancePath || '(top)'} ${e.message}${e.params && 'allowedValues' in e.params ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : ''}`).join('; ')}`);
  const plan = json as SweepPlan;
  plan.indices.forEach((x, i) => {
    if (x.index !== i) throw new Error(`${file}: /indices/${i}/index is ${x.index}; indices must be 0, 1, 2, … in order`);
  });
  return plan;
}

/** Index i's overrides: the shared --set with the swept values laid over. */
export const overridesOf = (plan: SweepPlan, index: number) => ({ ...plan.set, ...plan.indices[index].set });
