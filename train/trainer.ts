// The training loop (statistical-cell.md §2): each iteration a batch of distinct training cells
// drawn by (seed, iteration) alone, one step (forward, backward, Adam) on the backend, metrics as
// JSONL, validation ELBO and a checkpoint every epoch (best one tracked), optional extra
// checkpoints every k steps. Every random stream is keyed by the iteration, so resuming from a
// checkpoint continues bit for bit as if never stopped. NaN/Inf stops with the step named and
// leaves the last good checkpoint; SIGINT/SIGTERM finish the step, checkpoint and return.

import type { CompiledModel } from '../compiler/model.ts';
import type { Batch } from '../data/dataset.ts';
import { prefetch } from '../data/dataset.ts';
import { batchIndices } from '../data/sampler.ts';
import { reference } from '../kernels/reference.ts';
import type { Backend } from '../runtime/backend.ts';
import { microBatchFor, ModelRuntime } from '../runtime/model.ts';
import { checkpointName, loadCheckpoint, removeCheckpoint, resolveCheckpoint, saveCheckpoint, type Sidecar } from './checkpoint.ts';
import { MetricsLog } from './metrics.ts';
import type { Progress } from './progress.ts';
import { join } from 'node:path';

/** What the trainer needs of a data set (CellDataset has it; tests pass in-memory ones). */
export interface CellSource {
  readonly length: number;
  batch(indices: number[]): Promise<Batch>;
}

export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}

/** Whether a model is the target model M_T (conditioned on the reference and the label). */
export const isTarget = (model: CompiledModel): boolean => model.config.conditioned === true;

/** The model's inputs from a batch: M_R sees the reference channels, M_T the structure given both. */
export function feedsOf(model: CompiledModel, b: Pick<Batch, 'reference' | 'structure' | 'onehot'>): Record<string, Float32Array> {
  return isTarget(model) ? { x: b.structure, ref: b.reference, cls: b.onehot } : { x: b.reference };
}

/** The β that weighs KL in the evaluation ELBO: the model's β (1 once a KL warm-up has ended). */
export const elboBeta = (model: CompiledModel): number => (model.config.warmup === true ? 1 : Number(model.config.beta ?? 1));

export interface TrainOptions {
  model: CompiledModel;
  backend: Backend;
  train: CellSource;
  validate?: CellSource;
  /** Run directory: checkpoints/, metrics.jsonl. */
  out: string;
  batch: number;
  /** Split each batch into micro-batches of this size and accumulate gradients; default: the whole batch when it fits the backend, else the largest divisor that does. */
  microBatch?: number;
  /** Total iterations; default `epochs` × ceil(n_train / batch). */
  iterations?: number;
  epochs?: number;
  seed: number;
  /** Extra checkpoints every k iterations (besides every epoch and the end). */
  checkpointEvery?: number;
  resume?: boolean;
  evalSamples?: number;
  progress?: Progress;
  /** Catch SIGINT/SIGTERM: finish the step, checkpoint, return. */
  handleSignals?: boolean;
  /** Test aid: sleep this long after each step (so a test can kill the process mid-run). */
  stepDelayMs?: number;
  log?: (line: string) => void;
  label?: string;
}

export interface TrainResult {
  runtime: ModelRuntime;
  iteration: number;
  /** Why the run ended. */
  stopped: 'done' | 'SIGINT' | 'SIGTERM';
  best?: { name: string; elbo: number };
  latest: string;
  resumedFrom?: string;
}

export interface EvalResult {
  elbo: number;
  recon: number;
  kl: number;
  cells: number;
  perCell: { elbo: number; recon: number; kl: number }[];
}

/**
 * Evaluation ELBO (§2, eval mode) of every cell of a source: encode → μ, log σ²; for each of
 * `samples` draws z = μ + ε·exp(½ log σ²) (ε from the seeded Philox stream, on the host) decode
 * and take the cell's SSE; ELBO = −(mean SSE + β·Σ_d KLD_d). The last partial batch is padded
 * by repeating cells (eval mode makes cells independent) and the padding is ignored.
 */
export async function evaluateElbo(rt: ModelRuntime, source: CellSource, opts: { batch: number; samples?: number; seed?: number; limit?: number }): Promise<EvalResult> {
  const model = rt.model;
  const B = opts.batch;
  const S = opts.samples ?? 10;
  const beta = elboBeta(model);
  const n = Math.min(source.length, opts.limit ?? Infinity);
  const perCell: EvalResult['perCell'] = [];
  for (let start = 0, chunk = 0; start < n; start += B, chunk++) {
    const idx = Array.from({ length: B }, (_, k) => (start + k < n ? start + k : start + (k % (n - start))));
    const b = await source.batch(idx);
    const feeds = feedsOf(model, b);
    const enc = Object.values(await rt.run('encode', feeds, B));
    const [mu, logvar] = enc;
    const L = mu.length / B;
    const sse = new Float64Array(B);
    for (let s = 0; s < S; s++) {
      const draws = B * L;
      const eps = reference.call('randn', [], { shape: [draws], seed: opts.seed ?? 1, offset: (chunk * S + s) * Math.ceil(draws / 4) })[0].data;
      const z = Float32Array.from(mu, (m, i) => m + eps[i] * Math.exp(0.5 * logvar[i]));
      const xhat = Object.values(await rt.run('decode', { ...feeds, z }, B))[0];
      const x = feeds.x;
      const per = x.length / B;
      for (let c = 0; c < B; c++) {
        let acc = 0;
        for (let i = c * per; i < (c + 1) * per; i++) acc += (xhat[i] - x[i]) ** 2;
        sse[c] += acc / S;
      }
    }
    for (let c = 0; c < Math.min(B, n - start); c++) {
      let kl = 0;
      for (let d = c * L; d < (c + 1) * L; d++) kl += -0.5 * (1 + logvar[d] - mu[d] ** 2 - Math.exp(logvar[d]));
      perCell.push({ elbo: -(sse[c] + beta * kl), recon: sse[c], kl });
    }
  }
  const mean = (k: 'elbo' | 'recon' | 'kl') => perCell.reduce((a, c) => a + c[k], 0) / perCell.length;
  return { elbo: mean('elbo'), recon: mean('recon'), kl: mean('kl'), cells: perCell.length, perCell };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function train(o: TrainOptions): Promise<TrainResult> {
  const { model, backend, batch: B } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ckDir = join(o.out, 'checkpoints');
  const metrics = new MetricsLog(join(o.out, 'metrics.jsonl'));
  const perEpoch = Math.ceil(o.train.length / B);
  const total = o.iterations ?? (o.epochs ?? 1) * perEpoch;
  if (B > o.train.length) throw new TrainError(`${model.name}: a batch of ${B} distinct cells needs at least ${B} training cells, the training split has ${o.train.length}; lower --batch or add cells`);

  // A batch whose training program does not fit the backend runs in micro-batches.
  const microBatch = o.microBatch ?? microBatchFor(model, B, backend.limits);
  if (microBatch === undefined) throw new TrainError(`${model.name}: a batch of ${B} does not fit ${backend.kind} (largest buffer ${backend.limits.maxBufferBytes} bytes${backend.limits.totalBytes ? `, ${backend.limits.totalBytes} in all` : ''}) even in micro-batches of 2; use a smaller model or --set size=…`);
  if (microBatch < B) log(`${model.name}: a batch of ${B} does not fit ${backend.kind} at once: ${B / microBatch} micro-batches of ${microBatch}, gradients accumulated`);
  const rt = new ModelRuntime(backend, model, { microBatch: microBatch < B ? microBatch : undefined });
  let start = 0;
  let best: Sidecar['best'];
  let lastVal: Sidecar['validation'];
  let latest = '';
  let resumedFrom: string | undefined;
  const found = o.resume ? resolveCheckpoint(ckDir, 'latest') : null;
  if (found) {
    const ck = loadCheckpoint(ckDir, found, model);
    if (ck.sidecar.batch !== B) throw new TrainError(`resume: checkpoint ${found} was trained with batch ${ck.sidecar.batch}, this run asks for ${B}; resume with --batch ${ck.sidecar.batch}`);
    if (ck.sidecar.seeds.data !== o.seed) throw new TrainError(`resume: checkpoint ${found} was trained with seed ${ck.sidecar.seeds.data}, this run asks for ${o.seed}; resume with --seed ${ck.sidecar.seeds.data}`);
    rt.writeAll(ck.tensors, `checkpoint ${join(ckDir, found)}`);
    start = ck.sidecar.iteration;
    best = ck.sidecar.best;
    lastVal = ck.sidecar.validation;
    latest = resumedFrom = found;
    metrics.truncateTo(start);
    log(`${model.name}: resuming from ${join(ckDir, found)} at iteration ${start}`);
  } else {
    rt.init(o.seed);
    metrics.truncateTo(0);
  }

  let stopSignal = null as 'SIGINT' | 'SIGTERM' | null;
  const onSignal = (s: 'SIGINT' | 'SIGTERM') => () => {
    stopSignal = s;
  };
  const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
  if (o.handleSignals) for (const [s, h] of Object.entries(handlers)) process.on(s, h);

  const save = async (iteration: number, last: Record<string, number>) => {
    const epochEnd = iteration % perEpoch === 0;
    const epoch = iteration / perEpoch;
    const name = checkpointName(iteration, epochEnd, Math.round(epoch));
    const pointers: ('latest' | 'best')[] = ['latest'];
    if (epochEnd && o.validate) {
      const v = await evaluateElbo(rt, o.validate, { batch: B, samples: o.evalSamples ?? 10, seed: o.seed });
      lastVal = { elbo: v.elbo, recon: v.recon, kl: v.kl };
      metrics.append({ kind: 'validate', iteration, epoch, ...lastVal });
      if (!best || v.elbo > best.elbo) {
        best = { name, elbo: v.elbo };
        pointers.push('best');
      }
      o.progress?.log(`${model.name}: epoch ${epoch} validation ELBO ${v.elbo.toFixed(3)} (recon ${v.recon.toFixed(3)}, KL ${v.kl.toFixed(3)})${pointers.includes('best') ? ' — best so far' : ''}`);
    }
    const prev = latest;
    saveCheckpoint(
      ckDir,
      model,
      await rt.readAll(),
      {
        name,
        iteration,
        epoch,
        seeds: { init: o.seed, data: o.seed },
        model: { name: model.name, config: model.config, source: model.source, sourceHash: model.sourceHash },
        backend: backend.kind,
        batch: B,
        optimizer: { ...opt, step: iteration },
        metrics: last,
        validation: lastVal,
        best,
      },
      pointers,
    );
    latest = name;
    // Mid-epoch checkpoints are only for resuming: keep the newest.
    if (prev.startsWith('step-') && prev !== best?.name) removeCheckpoint(ckDir, prev);
  };

  const opt = model.trainStep(B).optimizer;
  let t = start;
  let last: Record<string, number> = {};
  try {
    o.progress?.start(total, start, o.label ?? model.name);
    const batches = prefetch(start, total, (i) => o.train.batch(batchIndices(o.train.length, B, o.seed, i)));
    for await (const b of batches) {
      last = await rt.trainStep(feedsOf(model, b), B, t);
      const bad = Object.entries(last).find(([, v]) => !Number.isFinite(v));
      if (bad)
        throw new TrainError(
          `${model.name}: ${bad[0]} became ${bad[1]} at step ${t} (iteration ${t}, epoch ${(t / perEpoch).toFixed(2)}); stopped. ${latest ? `The last good checkpoint is ${join(ckDir, latest)}` : 'No checkpoint was written yet'}. Lower the learning rate (--set lr=…) or check the data of this batch (rows ${b.rows.map((r) => r.cellId).join(', ')})`,
        );
      metrics.append({ kind: 'step', iteration: t, epoch: t / perEpoch, ...last });
      t++;
      o.progress?.update(t, last);
      const due = t % perEpoch === 0 || t === total || (o.checkpointEvery && t % o.checkpointEvery === 0) || stopSignal;
      if (due) await save(t, last);
      if (stopSignal) {
        o.progress?.log(`${model.name}: ${stopSignal} received, checkpoint ${latest} written at iteration ${t}`);
        break;
      }
      if (o.stepDelayMs) await sleep(o.stepDelayMs);
    }
  } finally {
    o.progress?.stop();
    if (o.handleSignals) for (const [s, h] of Object.entries(handlers)) process.off(s, h);
  }
  return { runtime: rt, iteration: t, stopped: stopSignal ?? 'done', best, latest, resumedFrom };
}
