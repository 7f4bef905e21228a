// The drug-shift analysis (statistical-cell.md §4 "Drug shift"): given the encoder's μ and
// log σ² for treated and untreated (vehicle) cells, rank latent dims by the spread of per-cell
// KLD in the untreated cells, measure the distance between the two centroids in the top dims,
// test it by permutation, and Bonferroni-correct over every drug × structure × model test.
// Browser-safe: embedding the cells is the caller's job.

import { standardDeviation } from 'simple-statistics';
import { kldPerDim } from './kld.ts';
import { bonferroni, permutationTest } from './stats.ts';

/** Per-cell, per-dimension KLD: the one definition is analysis/kld.ts's. */
export { kldPerDim };

export interface Embedded {
  mu: ArrayLike<number>[];
  logvar: ArrayLike<number>[];
}

/** Dims sorted by the standard deviation across cells of their per-cell KLD, largest first. */
export function rankDimsByKldSpread(cells: Embedded): { dims: number[]; spread: number[] } {
  if (cells.mu.length < 2) throw new Error(`drug shift: ranking dims needs at least 2 untreated cells, got ${cells.mu.length}`);
  const kld = cells.mu.map((m, i) => kldPerDim(m, cells.logvar[i]));
  const spread = Array.from(kld[0], (_, d) => standardDeviation(kld.map((c) => c[d])));
  const dims = spread.map((_, d) => d).sort((a, b) => spread[b] - spread[a] || a - b);
  return { dims, spread };
}

export interface ShiftOptions {
  /** How many top-ranked dims the distance uses. */
  dims: number;
  permutations: number;
  seed: number;
}

export interface Shift {
  dims: number[];
  distance: number;
  p: number;
  nTreated: number;
  nUntreated: number;
}

export function drugShift(treated: Embedded, untreated: Embedded, o: ShiftOptions): Shift {
  const { dims: ranked } = rankDimsByKldSpread(untreated);
  if (!Number.isInteger(o.dims) || o.dims < 1) throw new Error(`drug shift: --dims must be a whole number ≥ 1, got ${o.dims}`);
  const dims = ranked.slice(0, o.dims);
  const t = permutationTest(treated.mu, untreated.mu, dims, o.permutations, o.seed);
  return { dims, distance: t.observed, p: t.p, nTreated: treated.mu.length, nUntreated: untreated.mu.length };
}

/** Adds the Bonferroni-corrected p over all the tests given. */
export function correctAll<T extends { p: number }>(tests: T[]): (T & { pCorrected: number })[] {
  const pc = bonferroni(tests.map((t) => t.p));
  return tests.map((t, i) => ({ ...t, pCorrected: pc[i] }));
}
