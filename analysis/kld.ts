// Per-dimension KL divergence of a VAE's posterior from N(0, I) (statistical-cell.md §4): per cell
// and latent dimension KLD_d = −½(1 + logvar_d − μ_d² − exp(logvar_d)); the mean over cells sorted
// descending; the "effective dimensions", whose per-cell KLD varies across cells (standard
// deviation > 0.05: a dimension that carries no information about the cell has the same KLD,
// near 0, for every cell), and the count of dims with mean KLD ≥ 0.01. Browser-safe.

import { mean, standardDeviation } from 'simple-statistics';
import type { Batch } from '../data/dataset.ts';
import type { ModelRuntime } from '../session/model.ts';
import type { CellSource } from '../session/evaluate.ts';
import { feedsFor } from '../session/feeds.ts';

/** Per-cell KLD above which a dimension's spread counts as effective, and the mean-KLD threshold of the second count. */
export const EFFECTIVE_STD = 0.05;
export const ACTIVE_MEAN = 0.01;

/** KLD_d of one cell, in float64. */
export function kldPerDim(mu: ArrayLike<number>, logvar: ArrayLike<number>): Float64Array {
  if (mu.length !== logvar.length) throw new Error(`kld: μ has ${mu.length} dims but logvar has ${logvar.length}`);
  const out = new Float64Array(mu.length);
  for (let d = 0; d < mu.length; d++) out[d] = -0.5 * (1 + logvar[d] - mu[d] * mu[d] - Math.exp(logvar[d]));
  return out;
}

export interface KldSummary {
  /** Per dimension (in dimension order): mean and (population) standard deviation over cells. */
  mean: number[];
  std: number[];
  /** Dimensions by mean KLD, descending (ties by index). */
  order: number[];
  /** Dims with per-cell KLD standard deviation > EFFECTIVE_STD. */
  effective: number;
  /** Dims with mean KLD ≥ ACTIVE_MEAN. */
  active: number;
  cells: number;
}

/** The summary of per-cell KLD rows (cells × dims). */
export function summarizeKld(perCell: ArrayLike<number>[]): KldSummary {
  if (!perCell.length) throw new Error('kld: no cells to summarize');
  const L = perCell[0].length;
  const col = (d: number) => perCell.map((row) => row[d]);
  const m = Array.from({ length: L }, (_, d) => mean(col(d)));
  // A single cell has no spread; simple-statistics returns 0 for it.
  const s = Array.from({ length: L }, (_, d) => standardDeviation(col(d)));
  const order = m.map((_, d) => d).sort((a, b) => m[b] - m[a] || a - b);
  return { mean: m, std: s, order, effective: s.filter((v) => v > EFFECTIVE_STD).length, active: m.filter((v) => v >= ACTIVE_MEAN).length, cells: perCell.length };
}

export interface Encoded {
  rows: Batch['rows'];
  mu: Float32Array[];
  logvar: Float32Array[];
}

/** The encoder's μ and logvar of every cell of a source (eval mode), in batches of `batch`. */
export async function encodeCells(rt: ModelRuntime, source: CellSource, batch: number): Promise<Encoded> {
  const enc = rt.model.roles.encode;
  if (!enc) throw rt.model.error('SC5001', { need: 'entry', model: rt.model.name, role: 'encode', purpose: 'give its per-dimension KL divergence' }, { notes: ['add `entry encode(<inputs>) -> (mu: [B, L], logvar: [B, L]) { ... }` (or mark an entry `as encode`)'] });
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`encode: batch ${batch}: expected a positive whole number`);
  // A batch past the cells would only repeat the last one.
  batch = Math.min(batch, source.length);
  const out: Encoded = { rows: [], mu: [], logvar: [] };
  for (let start = 0; start < source.length; start += batch) {
    const idx = Array.from({ length: batch }, (_, k) => Math.min(start + k, source.length - 1));
    const b = await source.batch(idx);
    const res = await rt.run(enc.entry, feedsFor(rt.model, b), batch);
    const L = res[enc.mean].length / batch;
    for (let c = 0; c < Math.min(batch, source.length - start); c++) {
      out.rows.push(b.rows[c]);
      out.mu.push(res[enc.mean].slice(c * L, (c + 1) * L));
      out.logvar.push(res[enc.logvar].slice(c * L, (c + 1) * L));
    }
  }
  return out;
}
