// `statcell train`: train a model on a manifest's training split, validating each epoch.

import { join } from 'node:path';
import type { Backend } from '../runtime/backend.ts';
import { makeProgress } from '../train/progress.ts';
import { train, type TrainResult } from '../train/trainer.ts';
import { resolveCheckpoint } from '../session/checkpoint.ts';
import { lockRun } from '../session/lock.ts';
import { assertFreshRunDir, forgetUnstartedRun, hasCheckpoint, loadModel, modelOfCheckpoint, readRunInfo, writeRunInfo } from '../session/run.ts';
import { backendFor, log, openSplit } from './common.ts';
import { batchIndices } from '../data/sampler.ts';
import { ManifestError, MAX_MANIFEST_BYTES, readManifest } from '../data/manifest.ts';
import { readBoundedSync } from '../data/files.ts';
import { formatProfile, profileUnavailable } from '../runtime/profile.ts';
import { feedsFor, oneHot } from '../session/feeds.ts';
import { microBatchFor, ModelRuntime } from '../session/model.ts';
import { profileTrainStep } from '../session/profile.ts';
import type { CompiledModel } from '../compiler/model.ts';
import { parsePrecision, type Precision } from '../compiler/precision.ts';
import type { CellSource } from '../session/evaluate.ts';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export interface TrainCommand {
  /** The model file; with --resume it may be left out (the run's checkpoint has the model). */
  model?: string;
  set: Record<string, unknown>;
  /** The manifest; with --resume, default: the run's. */
  data?: string;
  out: string;
  backend: string;
  /** Default 32, or with --resume the run's. */
  batch?: number;
  microBatch?: number;
  epochs?: number;
  iterations?: number;
  /** Default 1, or with --resume the run's. */
  seed?: number;
  checkpointEvery?: number;
  /** Epoch checkpoints kept besides the best and the latest. */
  keep?: number;
  resume?: boolean;
  skipBad?: boolean;
  evalSamples: number;
  /** Images of another size than the model's: an error (default) or centre-cropped / zero-padded. */
  fit?: 'exact' | 'crop-pad';
  logEvery?: number;
  stepDelayMs?: number;
  /** Before training, print the top kernels of one training step by time (runtime/profile.ts). */
  profile?: boolean;
  /** `--precision`: f32 or f16-storage (compiler/precision.ts); default f32, or with --resume the run's. */
  precision?: string;
  /** Reuse an opened backend (the demo trains two models on one). */
  openedBackend?: Backend;
}

/**
 * --resume with --data: the run's manifest, perhaps moved. Other cells would change the
 * validation ELBO that picks the best checkpoint mid-run, so a manifest with other contents is
 * refused while the run's own still exists; a run whose manifest is gone resumes on the one given.
 */
function sameManifest(recorded: string, given: string, out: string): void {
  if (resolve(recorded) === resolve(given)) return;
  if (!existsSync(recorded)) {
    log(`warning: ${recorded}, the manifest ${out} trained on, is gone; resuming on --data ${given}`);
    return;
  }
  // Bounded regular-file reads, as readManifest's: a FIFO given as --data blocked the resume here.
  const bytes = (file: string) => readBoundedSync(file, MAX_MANIFEST_BYTES, { fail: (why) => new ManifestError(file, 0, `cannot read the manifest: ${why}`) });
  if (!bytes(recorded).equals(bytes(given)))
    throw new Error(`--resume: ${out} trains on ${recorded}; --data ${given} is another manifest (the validation ELBO that picks the best checkpoint would be measured on other cells). Resume without --data, or start a new run with --out`);
}

export async function trainCommand(given: TrainCommand): Promise<TrainResult> {
  const previous = given.resume && existsSync(join(given.out, 'run.json')) ? readRunInfo(given.out) : undefined;
  // --resume continues with the run's data, batch, seed and length unless told otherwise (the checkpoint refuses another batch or seed).
  const length = given.epochs !== undefined || given.iterations !== undefined ? { epochs: given.epochs, iterations: given.iterations } : { epochs: previous?.epochs, iterations: previous?.iterations };
  const o = { ...given, ...length, data: given.data ?? previous?.data, batch: given.batch ?? previous?.batch ?? 32, seed: given.seed ?? previous?.seed ?? 1 };
  if (o.epochs !== undefined && o.iterations !== undefined) throw new Error('statcell train: give --epochs or --iterations, not both');
  // A run.json written before runs kept their length cannot say how long to go on: 1 epoch would end it at once.
  if (previous && o.epochs === undefined && o.iterations === undefined) throw new Error(`--resume: ${given.out}/run.json does not record how long the run trains (it was written before statcell kept that); give --epochs or --iterations`);
  // The default length, 1 epoch, is recorded like a given one.
  if (o.epochs === undefined && o.iterations === undefined) o.epochs = 1;
  if (!o.data) throw new Error(o.resume ? `--resume: ${o.out} holds no run to resume (no run.json); give --data and --model to start one` : 'statcell train: --data <manifest> is required');
  const data = o.data;
  // Before its first checkpoint a run has no validation ELBO or label vocabulary to keep: any manifest may continue it.
  const trained = previous !== undefined && hasCheckpoint(given.out);
  if (trained && given.data) sameManifest(previous.data, given.data, o.out);
  if (!o.model && !previous) throw new Error(o.resume ? `--resume: ${o.out} holds no run to resume (no run.json); give --model to start one` : 'statcell train: --model <file> is required');
  const overrides = previous && !Object.keys(o.set).length ? previous.overrides : o.set;
  const precision = parsePrecision(o.precision ?? previous?.precision ?? 'f32');
  if (previous && o.precision && precision !== (previous.precision ?? 'f32'))
    throw new Error(`--resume: ${o.out} was trained with --precision ${previous.precision ?? 'f32'}; resume with the same one (or none: the run's is used)`);
  if (previous && JSON.stringify(overrides) !== JSON.stringify(previous.overrides))
    throw new Error(`--resume: ${o.out} was trained with ${Object.entries(previous.overrides).map(([k, v]) => `--set ${k}=${JSON.stringify(v)}`).join(' ') || 'no --set overrides'}; resume with the same ones (or none: the run's are used)`);
  // Resuming without --model takes the model from the run's latest checkpoint (its source is kept
  // there); with --model the checkpoint must match it (source hash and config, checked on load).
  const latest = previous && !o.model ? resolveCheckpoint(join(o.out, 'checkpoints'), 'latest') : null;
  const model = o.model ? loadModel(o.model, overrides) : latest ? modelOfCheckpoint(join(o.out, 'checkpoints'), latest, overrides) : loadModel(previous!.model, overrides);
  if (latest) sayIfEdited(previous!.model, model, overrides);
  const backend = o.openedBackend ?? (await backendFor(o.backend, log));
  if (precision === 'f16-storage') log(f16StorageLine(backend));
  const fit = o.fit ?? previous?.fit ?? 'exact';
  if (previous && o.fit && o.fit !== (previous.fit ?? 'exact')) throw new Error(`--resume: ${o.out} was trained with --fit ${previous.fit ?? 'exact'}; resume with the same (or none: the run's is used)`);
  // The label vocabulary comes from the training data (kept in run.json for every later use).
  const rows = readManifest(resolve(data), { seed: 1 });
  const trainSet = openSplit(data, model, 'train', { skipBad: o.skipBad, log, labels: trained ? previous.labels : undefined, fit, rows });
  // The label input's width against the data's labels, before step 0 (it failed at the first batch).
  const label = model.inputs.find((i) => i.role?.kind === 'label');
  if (label) oneHot(model, label, trainSet.classes, []);
  const validateSplit = openSplit(data, model, 'validate', { skipBad: o.skipBad, log, labels: trainSet.classes, fit, rows });
  // Training never reads the test split, but eval, embed and the analyses do: what they will miss, said now.
  try {
    openSplit(data, model, 'test', { labels: trainSet.classes, fit, rows });
  } catch (e) {
    log(`warning: the test split (read by eval, embed and the analyses, not by training): ${(e as Error).message}`);
  }
  // One trainer per run directory: a second one would interleave metrics and replace checkpoints.
  const unlock = lockRun(o.out);
  try {
    // A fresh run never replaces another's checkpoints and metrics.
    if (!o.resume) {
      const restarted = assertFreshRunDir(o.out);
      if (restarted) log(restarted);
    }
    // Every image's header before step 0 (and before --profile reads a batch): a bad row would
    // otherwise stop the run when first read, hours in (a validation row after the first epoch).
    await trainSet.checkImages();
    await validateSplit.checkImages();
    if (o.profile) await profileFirstStep(model, backend, trainSet, o, precision);
    // The validation ELBO counts each readable cell once (training batches replace unreadable rows as they meet them);
    // read once the run directory is known to be this trainer's.
    const validate = await validateSplit.readable();
    const continued = previous && resolveCheckpoint(join(o.out, 'checkpoints'), 'latest');
    writeRunInfo(o.out, { model: o.model ?? previous!.model, overrides, data: resolve(data), batch: o.batch, seed: o.seed, skipBad: o.skipBad, labels: trainSet.classes, fit, precision: precision === 'f32' ? undefined : precision, epochs: o.epochs, iterations: o.iterations });
    log(`${model.name}: ${trainSet.length} training cells, ${validate.length} validation cells, batch ${o.batch}, run directory ${o.out}`);
    try {
      return await train({
        model,
        backend,
        train: trainSet,
        validate,
        out: o.out,
        batch: o.batch,
        microBatch: o.microBatch,
        precision,
        epochs: o.epochs,
        iterations: o.iterations,
        seed: o.seed,
        checkpointEvery: o.checkpointEvery,
        keep: o.keep,
        resume: o.resume,
        evalSamples: o.evalSamples,
        handleSignals: true,
        stepDelayMs: o.stepDelayMs,
        progress: makeProgress({ every: o.logEvery }),
        log,
      });
    } catch (e) {
      // Until a checkpoint is written with the new settings (--data, --batch, …), run.json keeps the run's own.
      if (!o.resume) forgetUnstartedRun(o.out);
      else if (previous && resolveCheckpoint(join(o.out, 'checkpoints'), 'latest') === continued) writeRunInfo(o.out, previous);
      throw e;
    }
  } finally {
    unlock();
  }
}

/**
 * A resume without --model trains on with the checkpoint's copy of the source: an edit of the file
 * since is said, not silently ignored (or, unreadable, not a reason to stop).
 */
function sayIfEdited(file: string, model: CompiledModel, overrides: Record<string, unknown>): void {
  if (!existsSync(file)) return;
  let now: string;
  try {
    now = loadModel(file, overrides).sourceHash;
  } catch {
    now = '';
  }
  if (now !== model.sourceHash) log(`--resume: ${file} has changed since the checkpoint; the run goes on with the checkpoint's copy of its source (give --model ${file} to check it against the checkpoint)`);
}

/**
 * --profile: a warm-up step (profiled, its times dropped) and 1 to 5 profiled steps (what fits 3 s)
 * on the run's first batch, in a runtime of their own (fresh weights, destroyed after), so the run itself is the same
 * with or without it.
 */
async function profileFirstStep(model: CompiledModel, backend: Backend, trainSet: CellSource, o: TrainCommand & { batch: number; seed: number }, precision: Precision): Promise<void> {
  const why = profileUnavailable(backend);
  if (why) {
    log(why);
    return;
  }
  if (o.batch > trainSet.length) return; // train() says why
  const micro = o.microBatch ?? microBatchFor(model, o.batch, backend.limits, precision);
  if (micro === undefined) return; // does not fit: train() says why
  const rt = new ModelRuntime(backend, model, { microBatch: micro < o.batch ? micro : undefined, precision });
  try {
    rt.init(o.seed);
    const batch = await trainSet.batch(batchIndices(trainSet.length, o.batch, o.seed, 0));
    log(formatProfile(await profileTrainStep(rt, feedsFor(model, batch), o.batch, { budgetMs: 3000 })));
  } finally {
    rt.destroy();
  }
}

/**
 * What --precision f16-storage does on this backend. Real f16 buffers (shader-f16) are not built:
 * every backend rounds in f32 buffers, so an adapter with shader-f16 gets the same values, not
 * half the memory.
 */
export function f16StorageLine(backend: Backend): string {
  const hasF16 = (backend as { features?: readonly string[] }).features?.includes('shader-f16');
  return `--precision f16-storage: activations rounded to binary16, emulated in f32 buffers${hasF16 ? ' (this adapter has shader-f16, but f16 buffers are not built: values identical, memory not halved)' : ''}`;
}
