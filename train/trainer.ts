// The training loop (statistical-cell.md §2): each iteration a batch of distinct training cells
// drawn by (seed, iteration) alone, one step (forward, backward, Adam) on the backend, metrics as
// JSONL, validation ELBO and a checkpoint every epoch (best one tracked), optional extra
// checkpoints every k steps. Every random stream is keyed by the iteration, so resuming from a
// checkpoint continues bit for bit as if never stopped. NaN/Inf stops with the step named and
// leaves the last good checkpoint; SIGINT/SIGTERM finish the step, checkpoint and return.
// f16-storage training scales its loss (session/loss-scale.ts): steps whose gradients overflowed
// are skipped and logged, and the scaler's state is checkpointed with the rest.

import type { CompiledModel } from '../compiler/model.ts';
import type { Precision } from '../compiler/precision.ts';
import { prefetch } from '../data/dataset.ts';
import { batchIndices } from '../data/sampler.ts';
import type { Backend } from '../runtime/backend.ts';
import { evaluateCells, type CellSource } from '../session/evaluate.ts';
import { feedsFor } from '../session/feeds.ts';
import { microBatchFor, ModelRuntime, type RuntimeOptions } from '../session/model.ts';
import { LossScaleError } from '../session/loss-scale.ts';
import { checkpointName, loadCheckpoint, removeCheckpoint, resolveCheckpoint, saveCheckpoint, type Sidecar } from '../session/checkpoint.ts';
import { MetricsLog } from './metrics.ts';
import type { Progress } from './progress.ts';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';

export type { CellSource } from '../session/evaluate.ts';

export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}

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
  /** 'f16-storage': activations rounded to binary16, as f16 buffers would hold them (compiler/precision.ts); default 'f32'. */
  precision?: Precision;
  /** Dynamic loss scaling's settings (session/loss-scale.ts); f16-storage training always scales, by default from 1, doubling every 2000 good steps. */
  lossScale?: RuntimeOptions['lossScale'];
  /** Total iterations; default `epochs` × ceil(n_train / batch). */
  iterations?: number;
  epochs?: number;
  seed: number;
  /** Extra checkpoints every k iterations (besides every epoch and the end). */
  checkpointEvery?: number;
  /** Epoch checkpoints kept besides the best and the latest (older ones are deleted); default 5. */
  keep?: number;
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * One turn of the event loop. Signal handlers run as macrotasks; with the data cached and the
 * Wasm backend every `await` of a step resolves as a microtask, so without this the loop never
 * yields and a SIGINT/SIGTERM is only seen after the last iteration (issue 11).
 */
const turn = () => new Promise<void>((r) => setImmediate(r));

export async function train(o: TrainOptions): Promise<TrainResult> {
  const { model, backend, batch: B } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ckDir = join(o.out, 'checkpoints');
  const metrics = new MetricsLog(join(o.out, 'metrics.jsonl'));
  const perEpoch = Math.ceil(o.train.length / B);
  const total = o.iterations ?? (o.epochs ?? 1) * perEpoch;
  if (B > o.train.length) throw new TrainError(`${model.name}: a batch of ${B} distinct cells needs at least ${B} training cells, the training split has ${o.train.length}; lower --batch or add cells`);

  // Checked before any step: a micro-batch that does not divide the batch failed only at the first one.
  if (o.microBatch !== undefined && B % o.microBatch)
    throw new TrainError(`${model.name}: --micro-batch ${o.microBatch} does not divide the batch of ${B}; give one of ${Array.from({ length: B }, (_, i) => i + 1).filter((d) => B % d === 0).join(', ')}`);
  // A batch whose training program does not fit the backend runs in micro-batches.
  // f16-storage stores activation gradients in binary16: the loss is scaled against its overflow.
  const lossScale = o.precision === 'f16-storage' ? (o.lossScale ?? {}) : undefined;
  const microBatch = o.microBatch ?? microBatchFor(model, B, backend.limits, o.precision, lossScale !== undefined);
  if (microBatch === undefined) throw new TrainError(`${model.name}: a batch of ${B} does not fit ${backend.kind} (largest buffer ${backend.limits.maxBufferBytes} bytes${backend.limits.totalBytes ? `, ${backend.limits.totalBytes} in all` : ''}) even in micro-batches of 2; use a smaller model or --set size=…`);
  if (microBatch < B) log(`${model.name}: a batch of ${B} ${o.microBatch ? 'as asked (--micro-batch)' : `does not fit ${backend.kind} at once`}: ${B / microBatch} micro-batches of ${microBatch}, gradients accumulated`);
  const rt = new ModelRuntime(backend, model, { microBatch: microBatch < B ? microBatch : undefined, precision: o.precision, lossScale });
  if (o.validate && !model.evaluation) log(`${model.name}: its training step has no \`evaluate\`, so no validation ELBO is computed and no best checkpoint chosen`);
  let start = 0;
  let best: Sidecar['best'];
  let lastVal: Sidecar['validation'];
  let latest = '';
  let resumedFrom: string | undefined;
  const found = o.resume ? resolveCheckpoint(ckDir, 'latest') : null;
  if (found) {
    const ck = loadCheckpoint(ckDir, found, model, { optimizer: true });
    if (ck.sidecar.batch !== B) throw new TrainError(`resume: checkpoint ${found} was trained with batch ${ck.sidecar.batch}, this run asks for ${B}; resume with --batch ${ck.sidecar.batch}`);
    if (ck.sidecar.seeds.data !== o.seed) throw new TrainError(`resume: checkpoint ${found} was trained with seed ${ck.sidecar.seeds.data}, this run asks for ${o.seed}; resume with --seed ${ck.sidecar.seeds.data}`);
    rt.writeAll(ck.tensors, `checkpoint ${join(ckDir, found)}`);
    if (rt.lossScale && ck.sidecar.lossScale) {
      if (ck.sidecar.lossScale.skipped > ck.sidecar.iteration) throw new TrainError(`checkpoint ${join(ckDir, found)}.json: /lossScale/skipped ${ck.sidecar.lossScale.skipped} exceeds its iteration ${ck.sidecar.iteration}`);
      try {
        rt.lossScale.restore(ck.sidecar.lossScale, `checkpoint ${join(ckDir, found)}.json: /lossScale`);
      } catch (e) {
        throw new TrainError((e as Error).message);
      }
    }
    start = ck.sidecar.iteration;
    best = ck.sidecar.best;
    lastVal = ck.sidecar.validation;
    latest = resumedFrom = found;
    metrics.truncateTo(start);
    log(`${model.name}: resuming from ${join(ckDir, found)} at iteration ${start}`);
    // A length the run has already passed trains nothing: said, not reported as a finished run.
    if (start >= total) log(`${model.name}: the run is at iteration ${start}, at or past the ${total} asked for (--epochs or --iterations): nothing to train; give a longer length to go on`);
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
    if (epochEnd && o.validate && model.evaluation) {
      // The model's own evaluation; its first value (the ELBO) picks the best checkpoint.
      const v = await evaluateCells(rt, o.validate, { batch: B, samples: o.evalSamples ?? 10, iteration });
      const [score, ...parts] = v.names;
      lastVal = { elbo: v.mean[score], ...v.mean };
      const bad = Object.entries(lastVal).find(([, x]) => !Number.isFinite(x));
      if (bad) throw new TrainError(`${model.name}: validation ${bad[0]} is ${bad[1]} at iteration ${iteration} (epoch ${epoch}); stopped. ${latest ? `The last good checkpoint is ${join(ckDir, latest)}` : 'No checkpoint was written yet'}. Lower the learning rate (--set lr=…) or check the validation data`);
      metrics.append({ kind: 'validate', iteration, epoch, ...lastVal });
      if (!best || lastVal.elbo > best.elbo) {
        best = { name, elbo: lastVal.elbo };
        pointers.push('best');
      }
      o.progress?.log(`${model.name}: epoch ${epoch} validation ${score} ${lastVal.elbo.toFixed(3)} (${parts.map((p) => `${p} ${v.mean[p].toFixed(3)}`).join(', ')})${pointers.includes('best') ? ' — best so far' : ''}`);
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
        model: { name: model.name, config: model.config, source: model.source, sourceHash: model.sourceHash, files: model.files, entryFile: model.entryFile },
        backend: backend.kind,
        batch: B,
        optimizer: { ...opt, step: iteration - (rt.lossScale?.state.skipped ?? 0) },
        lossScale: rt.lossScale && { ...rt.lossScale.state },
        metrics: last,
        validation: lastVal,
        best,
      },
      pointers,
    );
    latest = name;
    // Mid-epoch checkpoints are only for resuming: keep the newest.
    if (prev.startsWith('step-') && prev !== best?.name) removeCheckpoint(ckDir, prev);
    // Epoch checkpoints: the newest `keep`, and always the best and the latest (only the latest keeps its Adam state, for --resume).
    const epochs = readdirSync(ckDir).filter((f) => /^epoch-\d+\.json$/.test(f)).map((f) => f.slice(0, -5)).sort();
    const keep = o.keep ?? 5;
    const kept = new Set([...(keep > 0 ? epochs.slice(-keep) : []), name, best?.name]);
    for (const e of epochs) if (!kept.has(e)) removeCheckpoint(ckDir, e);
  };

  const opt = model.trainStep(B).optimizer;
  let t = start;
  let last: Record<string, number> = {};
  try {
    o.progress?.start(total, start, o.label ?? model.name);
    // A stop leaves up to two prefetched batches unread: mark them handled, so that one failing
    // to load after the loop ended cannot turn a clean 130/143 into an unhandled rejection (a
    // batch the loop does read still throws where it is awaited).
    const batches = prefetch(start, total, (i) => {
      const b = o.train.batch(batchIndices(o.train.length, B, o.seed, i));
      b.catch(() => {});
      return b;
    });
    // The first of a run of skipped (overflowed) steps, reported once the run ends.
    let skippedFrom: number | undefined;
    for await (const b of batches) {
      try {
        last = await rt.trainStep(feedsFor(model, b), B, t);
      } catch (e) {
        if (!(e instanceof LossScaleError)) throw e;
        throw new TrainError(`${model.name}: at step ${t}, ${e.message}; stopped. ${latest ? `The last good checkpoint is ${join(ckDir, latest)}` : 'No checkpoint was written yet'}. Lower the learning rate (--set lr=…) or train in f32`);
      }
      const bad = Object.entries(last).find(([, v]) => !Number.isFinite(v));
      if (bad)
        throw new TrainError(
          `${model.name}: ${bad[0]} became ${bad[1]} at step ${t} (iteration ${t}, epoch ${(t / perEpoch).toFixed(2)}); stopped. ${latest ? `The last good checkpoint is ${join(ckDir, latest)}` : 'No checkpoint was written yet'}. Lower the learning rate (--set lr=…) or check the data of this batch (manifest lines ${b.rows.map((r) => r.line).join(', ')}; CellIds ${b.rows.map((r) => r.cellId).join(', ')})`,
        );
      const scaled = rt.lastStep;
      metrics.append({ kind: 'step', iteration: t, epoch: t / perEpoch, ...last, ...(scaled && { loss_scale: scaled.lossScale, ...(!scaled.applied && { skipped: true }) }) });
      if (scaled && !scaled.applied) skippedFrom ??= t;
      else if (skippedFrom !== undefined) {
        o.progress?.log(`${model.name}: ${t === skippedFrom + 1 ? `step ${skippedFrom}` : `steps ${skippedFrom}–${t - 1}`} skipped: gradients overflowed binary16; loss scale now 2^${Math.log2(scaled!.lossScale)}`);
        skippedFrom = undefined;
      }
      t++;
      o.progress?.update(t, last);
      await turn();
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
