// Scoring cells with the model's own evaluation (its training step's `evaluate` values, per
// cell, in evaluation mode): each cell's values averaged over `samples` draws of the step's
// noise (statistical-cell.md §2: 10 z samples). The first value is the ELBO.

import type { CompiledModel } from '../compiler/model.ts';
import type { Batch } from '../data/dataset.ts';
import type { ModelRuntime } from './model.ts';
import { feedsFor } from './feeds.ts';

/** What evaluation needs of a data set (CellDataset has it; tests pass in-memory ones). */
export interface CellSource {
  readonly length: number;
  batch(indices: number[]): Promise<Batch>;
}

export interface Evaluation {
  /** The model's `evaluate` names; the first is the ELBO. */
  names: string[];
  /** Mean over cells of each value. */
  mean: Record<string, number>;
  /** Each cell's values, in source order. */
  perCell: Record<string, number>[];
  cells: number;
}

/** The model's `evaluate` names, or SC5001 at the model when it declares none. */
export function evaluationOf(model: CompiledModel): string[] {
  if (!model.evaluation)
    throw model.error('SC5001', { need: 'scoring', model: model.name }, {
      notes: ['add `evaluate elbo, recon, kl` to the training step, with per-cell ([B]) values and the ELBO first (docs/language.md, "Evaluation")'],
    });
  return model.evaluation;
}

/**
 * Evaluates every cell of a source (or the first `limit`) in batches of `batch`. The last partial
 * batch is padded by repeating cells (evaluation mode keeps cells independent) and the padding is
 * ignored. `iteration` feeds the step's run-time scalars (a KL warm-up's β_t); draw j of chunk c
 * is random stream c·samples + j, so results do not depend on anything but these arguments.
 */
export async function evaluateCells(rt: ModelRuntime, source: CellSource, opts: { batch: number; samples?: number; iteration?: number; limit?: number; progress?: (done: number, of: number) => void }): Promise<Evaluation> {
  const names = evaluationOf(rt.model);
  const B = opts.batch;
  const S = opts.samples ?? 10;
  // A batch of 0 would never advance, and 0 samples would average over nothing (an ELBO of 0).
  if (!(Number.isInteger(B) && B >= 1 && Number.isInteger(S) && S >= 1)) throw new Error(`evaluation needs a batch and a number of z samples of at least 1, got batch ${B}, samples ${S}`);
  const n = Math.min(source.length, opts.limit ?? Infinity);
  const perCell: Evaluation['perCell'] = [];
  for (let start = 0, chunk = 0; start < n; start += B, chunk++) {
    const idx = Array.from({ length: B }, (_, k) => (start + k < n ? start + k : start + (k % (n - start))));
    const feeds = feedsFor(rt.model, await source.batch(idx));
    const sums = names.map(() => new Float64Array(B));
    for (let s = 0; s < S; s++) {
      const out = await rt.run('evaluate', feeds, B, opts.iteration ?? 0, chunk * S + s);
      names.forEach((name, k) => out[name].forEach((v, c) => (sums[k][c] += v / S)));
    }
    for (let c = 0; c < Math.min(B, n - start); c++) perCell.push(Object.fromEntries(names.map((name, k) => [name, sums[k][c]])));
    opts.progress?.(perCell.length, n);
  }
  const mean = Object.fromEntries(names.map((name) => [name, perCell.reduce((a, c) => a + c[name], 0) / perCell.length]));
  return { names, mean, perCell, cells: perCell.length };
}
