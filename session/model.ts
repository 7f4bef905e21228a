// A compiled model living on a backend: one store of parameters, state and Adam moments shared
// by every entry point's program, programs built per (entry, batch) on first use, and the
// training step. Tensors are named as in checkpoints (shared/fixtures/README.md).

import type { CompiledModel, EntryGraph, Init, TensorSpec } from '../compiler/model.ts';
import type { Precision } from '../compiler/precision.ts';
import { GRADIENT_SUM, GRAD_SCALE, LOSS_SCALE } from '../compiler/train-step.ts';
import { oracle } from '../kernels/oracle.ts';
import { numel } from '../kernels/types.ts';
import type { Backend, DeviceBuffer } from '../runtime/backend.ts';
import { Executable } from '../runtime/program.ts';
import { DynamicLossScale } from './loss-scale.ts';

export const adamMoment = (which: 'm' | 'v', param: string): string => `adam.${which}.${param}`;

/** Deterministic initial values: the Philox stream of (seed, tensor index). */
export function initialValues(spec: TensorSpec, seed: number, index: number): Float32Array {
  const n = numel(spec.shape);
  const draw = (op: 'randn' | 'rand') => oracle.call(op, [], { shape: [n], seed: seed * 65536 + index, offset: 0 })[0].data;
  const init: Init = spec.init;
  switch (init.kind) {
    case 'constant':
      return new Float32Array(n).fill(init.value);
    case 'normal':
      return Float32Array.from(draw('randn'), (x) => init.mean + init.std * x);
    case 'uniform':
      return Float32Array.from(draw('rand'), (x) => init.low + (init.high - init.low) * x);
    case 'unit_vector': {
      const v = draw('randn');
      let sq = 0;
      for (const x of v) sq += x * x;
      const norm = Math.max(Math.sqrt(sq), 1e-12);
      return Float32Array.from(v, (x) => x / norm);
    }
  }
}

export interface RuntimeOptions {
  /**
   * Largest batch one program runs: a larger training batch is split into micro-batches whose
   * gradients are accumulated before one Adam step (for batches that do not fit the device).
   * BatchNorm then normalises each micro-batch by its own statistics, as PyTorch does.
   */
  microBatch?: number;
  /** Elementwise fusion (compiler/fuse.ts) before lowering; default on. */
  fuse?: boolean;
  /** 'f16-storage': every activation rounded to binary16 as f16 buffers would hold it (compiler/precision.ts); default 'f32'. */
  precision?: Precision;
  /**
   * Dynamic loss scaling (session/loss-scale.ts; for f16-storage training): every step then runs
   * in the accumulating form, and a step whose gradients overflowed is skipped.
   */
  lossScale?: { initial?: number; growthInterval?: number };
}

/**
 * The micro-batch to train `batch` in: the batch itself when its training program fits the
 * backend's limits, else its largest divisor that does (undefined when none does). Fitting means
 * every buffer of the program within one binding (`maxBufferBytes`) and, where the backend knows
 * its memory (`totalBytes`), the program's own buffers plus the store (parameters, state, Adam's
 * two moments, and gradient accumulators when accumulating) within 90% of it. WebGPU does not
 * tell an adapter's memory, so there only the binding limit is checked. `lossScaled`: the step
 * always accumulates (RuntimeOptions.lossScale).
 */
export function microBatchFor(model: CompiledModel, batch: number, limits: Backend['limits'], precision?: Precision, lossScaled = false): number | undefined {
  const paramElements = model.tensors.reduce((a, t) => a + (t.kind === 'param' ? numel(t.shape) : 0), 0);
  const storeElements = model.tensors.reduce((a, t) => a + numel(t.shape), 0) + 2 * paramElements;
  const fits = (b: number, accumulate?: number) => {
    const p = model.program(accumulate ? `accumulate:${accumulate}` : 'train', b, true, precision).program;
    // The program's own buffers (its temps and data inputs); its parameters and state are the store's.
    const own = p.buffers.reduce((a, x) => a + (x.kind === 'temp' || x.kind === 'input' ? x.elements : 0), 0);
    const bytes = (own + storeElements + (accumulate ? paramElements : 0)) * 4;
    const largest = Math.max(...p.buffers.map((x) => x.elements)) * 4;
    return largest <= limits.maxBufferBytes && (limits.totalBytes === undefined || bytes <= limits.totalBytes * 0.9);
  };
  if (fits(batch, lossScaled ? 1 : undefined)) return batch;
  for (let b = batch - 1; b >= 2; b--) if (batch % b === 0 && fits(b, batch / b)) return b;
  return undefined;
}

export class ModelRuntime {
  /** Every persistent tensor: parameters, state, Adam moments (and gradient accumulators). */
  readonly store = new Map<string, DeviceBuffer>();
  private programs = new Map<string, { exe: Executable; entry: EntryGraph }>();
  readonly lossScale?: DynamicLossScale;
  /** With loss scaling: the scale the last training step ran at, and whether Adam applied it. */
  lastStep?: { lossScale: number; applied: boolean };

  constructor(readonly backend: Backend, readonly model: CompiledModel, readonly opts: RuntimeOptions = {}) {
    if (opts.lossScale) this.lossScale = new DynamicLossScale(opts.lossScale.growthInterval, opts.lossScale.initial);
    for (const t of model.tensors) this.store.set(t.name, backend.alloc(numel(t.shape)));
    for (const t of model.tensors) {
      if (t.kind !== 'param') continue;
      for (const w of ['m', 'v'] as const) this.store.set(adamMoment(w, t.name), backend.alloc(numel(t.shape)));
      if (opts.microBatch || opts.lossScale) {
        const acc = backend.alloc(numel(t.shape));
        backend.write(acc, new Float32Array(numel(t.shape)));
        this.store.set(`grad.${t.name}`, acc);
      }
    }
  }

  /** Fresh initial parameters and state, zero Adam moments. */
  init(seed: number): void {
    this.model.tensors.forEach((t, i) => {
      this.backend.write(this.store.get(t.name)!, initialValues(t, seed, i));
      if (t.kind !== 'param') return;
      for (const name of [adamMoment('m', t.name), adamMoment('v', t.name), `grad.${t.name}`]) {
        const buf = this.store.get(name);
        if (buf) this.backend.write(buf, new Float32Array(numel(t.shape)));
      }
    });
  }

  /** Every stored tensor, for checkpoints. */
  async readAll(): Promise<Map<string, Float32Array>> {
    await this.backend.sync();
    const out = new Map<string, Float32Array>();
    for (const [name, buf] of this.store) out.set(name, await this.backend.read(buf));
    return out;
  }

  /** Loads tensors by name; every parameter and state tensor must be given, Adam moments are optional. */
  writeAll(tensors: Map<string, Float32Array>, source = 'checkpoint'): void {
    for (const t of this.model.tensors) {
      const data = tensors.get(t.name);
      if (!data) throw new Error(`${source}: no tensor '${t.name}' (shape [${t.shape.join(', ')}])`);
      if (data.length !== numel(t.shape)) throw new Error(`${source}: tensor '${t.name}' has ${data.length} values, the model needs [${t.shape.join(', ')}] = ${numel(t.shape)}`);
    }
    for (const [name, buf] of this.store) {
      const data = tensors.get(name);
      if (data) this.backend.write(buf, data);
    }
  }

  private program(name: string, batch: number): { exe: Executable; entry: EntryGraph } {
    const key = `${name}@${batch}`;
    let p = this.programs.get(key);
    if (!p) {
      const { graph, program } = this.model.program(name, batch, this.opts.fuse !== false, this.opts.precision);
      p = { exe: new Executable(this.backend, program, this.store), entry: graph };
      this.programs.set(key, p);
    }
    return p;
  }

  private feed(p: { exe: Executable; entry: EntryGraph }, inputs: Record<string, Float32Array>, iteration: number): void {
    for (const { name } of p.entry.inputs) {
      const data = inputs[name];
      if (!data) throw new Error(`${this.model.name}: the ${name} input is missing (inputs: ${p.entry.inputs.map((i) => i.name).join(', ')})`);
      p.exe.write(name, data);
    }
    for (const h of p.entry.hostScalars) p.exe.write(h.name, Float32Array.of(h.at(iteration)));
  }

  /** Reads an output of the last run of a program (e.g. a gradient exposed for tests). */
  async output(name: string, batch: number, output: string): Promise<Float32Array> {
    return this.program(name, batch).exe.read(output);
  }

  /**
   * One training step (forward, backward, Adam, state updates); returns the reported metrics. With
   * micro-batches or loss scaling it runs the accumulating form: k micro-batches add their
   * gradients, then (loss scaling: unless one overflowed) Adam applies them.
   */
  async trainStep(inputs: Record<string, Float32Array>, batch: number, iteration: number): Promise<Record<string, number>> {
    const micro = this.opts.microBatch && this.opts.microBatch < batch ? this.opts.microBatch : batch;
    const scaler = this.lossScale;
    if (micro === batch && !scaler) {
      const p = this.program('train', batch);
      this.feed(p, inputs, iteration);
      p.exe.run({ iteration });
      return this.metrics(p);
    }
    if (batch % micro) throw new Error(`${this.model.name}: a batch of ${batch} does not split into micro-batches of ${micro}`);
    if (!this.model.applyStep) throw new Error(`${this.model.name}: this model cannot accumulate gradients over micro-batches`);
    const k = batch / micro;
    const p = this.program(`accumulate:${k}`, micro);
    const scale = scaler?.state.scale ?? 1;
    p.exe.write(LOSS_SCALE, Float32Array.of(scale));
    p.exe.write(GRAD_SCALE, Float32Array.of(1 / (k * scale)));
    const sums: Record<string, number> = {};
    for (let j = 0; j < k; j++) {
      const part: Record<string, Float32Array> = {};
      for (const [name, data] of Object.entries(inputs)) part[name] = data.subarray((j * data.length) / k, ((j + 1) * data.length) / k);
      this.feed(p, part, iteration);
      // Each micro-batch draws its own noise; Adam and the KL warm-up see the real iteration.
      p.exe.run({ iteration, draw: iteration * k + j });
      for (const [m, v] of Object.entries(await this.metrics(p))) sums[m] = (sums[m] ?? 0) + v / k;
    }
    if (!scaler) {
      this.program('apply', 0).exe.run({ iteration });
      return sums;
    }
    const check = this.program('gradient-check', 0).exe;
    check.run();
    const applied = scaler.update(Number.isFinite((await check.read(GRADIENT_SUM))[0]));
    this.lastStep = { lossScale: scale, applied };
    // Adam counts the steps it took (its bias correction), not the skipped ones.
    if (applied) this.program('apply', 0).exe.run({ iteration: iteration - scaler.state.skipped });
    else for (const t of this.model.tensors) if (t.kind === 'param') this.backend.write(this.store.get(`grad.${t.name}`)!, new Float32Array(numel(t.shape)));
    return sums;
  }

  private async metrics(p: { exe: Executable; entry: EntryGraph }): Promise<Record<string, number>> {
    const metrics: Record<string, number> = {};
    for (const m of (p.entry as ReturnType<CompiledModel['trainStep']>).metrics) metrics[m] = (await p.exe.read(m))[0];
    return metrics;
  }

  /**
   * Runs an entry point (encode, decode, generate, …, or `evaluate`: the training step in
   * evaluation mode); `iteration` feeds its run-time scalars (the KL warm-up's β) and, unless
   * `draw` is given, picks its random draws.
   */
  async run(name: string, inputs: Record<string, Float32Array>, batch: number, iteration = 0, draw?: number): Promise<Record<string, Float32Array>> {
    const p = this.program(name, batch);
    this.feed(p, inputs, iteration);
    p.exe.run(draw === undefined ? { iteration } : { iteration, draw });
    const out: Record<string, Float32Array> = {};
    for (const o of p.entry.outputs) out[o] = await p.exe.read(o);
    return out;
  }

  /** Output names and shapes of an entry point's program. */
  outputShapes(name: string, batch: number): [string, readonly number[]][] {
    const p = this.program(name, batch);
    return p.entry.outputs.map((o) => [o, p.entry.graph.outputs.get(o)!.shape]);
  }

  destroy(): void {
    for (const { exe } of this.programs.values()) exe.destroy();
    for (const b of this.store.values()) this.backend.free(b);
  }
}
