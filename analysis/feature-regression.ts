// The β sweep's feature regression (statistical-cell.md §4): PCA of the standardised real-cell
// features (analysis/features.ts), keeping principal components up to 90% explained variance, and a
// linear regression (with intercept) of each PC's score from the latent dims whose mean |μ| over
// the cells exceeds 0.6; R² per PC and the explained-variance-weighted R². R² is reported in sample
// (fitted and scored on the same cells, as the paper) and 5-fold cross-validated (each cell
// predicted by a model that never saw it: a test split of a few dozen cells gives R² too noisy to
// compare across β). Browser-safe (ml-pca, ml-regression-multivariate-linear).

import { PCA } from 'ml-pca';
import MLR from 'ml-regression-multivariate-linear';
import type { Batch } from '../data/dataset.ts';
import type { ModelRuntime } from '../session/model.ts';
import type { CellSource } from '../session/evaluate.ts';
import { cellChannels, type CellChannels } from '../session/feeds.ts';
import { encodeCells } from './kld.ts';
import { seededRandom } from '../data/random.ts';
import { cellFeatures, FEATURE_NAMES, MASK_THRESHOLD } from './features.ts';

export const EXPLAINED_TARGET = 0.9;
export const MU_THRESHOLD = 0.6;
export const CV_FOLDS = 5;

export interface FeaturePca {
  pca: PCA;
  /** PCs kept: the fewest whose cumulative explained variance reaches EXPLAINED_TARGET. */
  kept: number;
  /** Fraction of variance explained by each PC (all of them). */
  explained: number[];
  /** Loadings of the kept PCs: [pc][feature] (features in FEATURE_NAMES order). */
  loadings: number[][];
}

/** PCA of standardised feature rows (cells × features); a feature constant over the cells is an error naming it. */
export function fitFeaturePca(rows: number[][], target = EXPLAINED_TARGET, names: readonly string[] = FEATURE_NAMES): FeaturePca {
  if (rows.length < 3) throw new Error(`feature PCA: ${rows.length} cells; need at least 3`);
  const F = rows[0].length;
  rows.forEach((r, i) => {
    if (r.length !== F) throw new Error(`feature PCA: cell ${i} has ${r.length} features, the first ${F}`);
    const bad = r.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`feature PCA: cell ${i}: ${names[bad] ?? `feature ${bad}`} is ${r[bad]} (an empty mask?)`);
  });
  for (let f = 0; f < F; f++) if (rows.every((r) => r[f] === rows[0][f])) throw new Error(`feature PCA: ${names[f] ?? `feature ${f}`} is the same (${rows[0][f]}) in every cell; it cannot be standardised`);
  const pca = new PCA(rows, { center: true, scale: true });
  const explained = pca.getExplainedVariance();
  const cumulative = pca.getCumulativeVariance();
  // The fewest PCs reaching the target (a small tolerance for the rounding of the cumulative sum).
  const kept = Math.min(explained.length, cumulative.findIndex((c) => c >= target - 1e-12) + 1 || explained.length);
  const U = pca.getEigenvectors();
  const loadings = Array.from({ length: kept }, (_, k) => U.getColumn(k));
  return { pca, kept, explained, loadings };
}

/** Scores of feature rows on the kept PCs (standardised with the fitted cells' means and deviations). */
export function pcScores(p: FeaturePca, rows: number[][]): number[][] {
  if (!rows.length) return [];
  return p.pca.predict(rows, { nComponents: p.kept }).to2DArray();
}

/** The latent dims whose mean |μ_d| over the cells exceeds `threshold`. */
export function selectedDims(mu: ArrayLike<number>[], threshold = MU_THRESHOLD): number[] {
  if (!mu.length) return [];
  const L = mu[0].length;
  const out: number[] = [];
  for (let d = 0; d < L; d++) {
    let s = 0;
    for (const m of mu) s += Math.abs(m[d]);
    if (s / mu.length > threshold) out.push(d);
  }
  return out;
}

/** R² = 1 − SS_res / SS_tot, SS_tot about the observed mean (can be negative out of sample). */
export function rSquared(y: number[], yhat: number[]): number {
  const m = y.reduce((a, b) => a + b, 0) / y.length;
  let res = 0;
  let tot = 0;
  for (let i = 0; i < y.length; i++) {
    res += (y[i] - yhat[i]) ** 2;
    tot += (y[i] - m) ** 2;
  }
  return tot > 0 ? 1 - res / tot : NaN;
}

export interface PcRegression {
  /** Latent dims used (mean |μ| > threshold over all the cells). */
  dims: number[];
  /** Per kept PC: R² in sample (fitted and scored on every cell, as the paper) and k-fold cross-validated. */
  r2Fit: number[];
  r2Cv: number[];
  /** Σ explained_k R²_k / Σ explained_k over the kept PCs. */
  weightedFit: number;
  weightedCv: number;
}

const pick = (mu: ArrayLike<number>[], dims: number[]) => mu.map((m) => dims.map((d) => m[d]));
const column = (rows: number[][], k: number) => rows.map((r) => r[k]);

/** Weighted mean of R² by explained variance (NaN R² count as 0: a PC nothing predicts). */
export function weightedR2(r2: number[], explained: number[]): number {
  let s = 0;
  let w = 0;
  r2.forEach((v, k) => {
    s += explained[k] * (Number.isFinite(v) ? v : 0);
    w += explained[k];
  });
  return s / w;
}

/** A linear model (with intercept) of every score column from the selected dims, fitted on these cells; with no dim, their mean. */
function fitPredictor(mu: ArrayLike<number>[], scores: number[][], dims: number[]): (mu: ArrayLike<number>[]) => number[][] {
  const K = scores[0].length;
  if (!dims.length) {
    const means = Array.from({ length: K }, (_, k) => column(scores, k).reduce((a, b) => a + b, 0) / scores.length);
    return (m) => m.map(() => means);
  }
  if (mu.length <= dims.length + 1) throw new Error(`feature regression: ${mu.length} cells for ${dims.length} latent dims and an intercept; need more cells`);
  const mlr = new MLR(pick(mu, dims), scores, { intercept: true, statistics: false });
  return (m) => (m.length ? mlr.predict(pick(m, dims)) : []);
}

/** Fold of each of n cells: a seeded shuffle dealt round-robin into k folds. */
export function folds(n: number, k: number, seed = 1): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const fold = new Array<number>(n);
  order.forEach((cell, rank) => (fold[cell] = rank % k));
  return fold;
}

/**
 * Regresses every kept PC score from the latent dims with mean |μ| > threshold: in sample (fitted
 * and scored on all cells) and by k-fold cross-validation (each fold predicted by a model whose
 * dims and weights come from the other folds; R² over all the held-out predictions).
 */
export function regressPcs(explained: number[], mu: ArrayLike<number>[], scores: number[][], opts: { threshold?: number; k?: number; seed?: number } = {}): PcRegression {
  const threshold = opts.threshold ?? MU_THRESHOLD;
  const k = opts.k ?? CV_FOLDS;
  if (mu.length !== scores.length) throw new Error(`feature regression: μ of ${mu.length} cells but PC scores of ${scores.length}`);
  if (mu.length < 2 * k) throw new Error(`feature regression: ${mu.length} cells are too few for ${k}-fold cross-validation`);
  const K = scores[0].length;
  const dims = selectedDims(mu, threshold);
  const fitted = fitPredictor(mu, scores, dims)(mu);
  const fold = folds(mu.length, k, opts.seed);
  const held: number[][] = new Array(mu.length);
  for (let f = 0; f < k; f++) {
    const inF = mu.map((_, i) => i).filter((i) => fold[i] === f);
    const rest = mu.map((_, i) => i).filter((i) => fold[i] !== f);
    const restMu = rest.map((i) => mu[i]);
    const predict = fitPredictor(restMu, rest.map((i) => scores[i]), selectedDims(restMu, threshold));
    predict(inF.map((i) => mu[i])).forEach((p, j) => (held[inF[j]] = p));
  }
  const r2Fit = Array.from({ length: K }, (_, c) => rSquared(column(scores, c), column(fitted, c)));
  const r2Cv = Array.from({ length: K }, (_, c) => rSquared(column(scores, c), column(held, c)));
  const ex = explained.slice(0, K);
  return { dims, r2Fit, r2Cv, weightedFit: weightedR2(r2Fit, ex), weightedCv: weightedR2(r2Cv, ex) };
}

// ---- the features and μ of a model's cells

export interface CellRecord {
  cellId: string;
  label: string;
  features: number[];
}

/**
 * The features of every cell of a source (its membrane and DNA channels). A real cell whose mask
 * is empty (no pixel at MASK_THRESHOLD) has no shape or intensity: an error naming the cell and its
 * manifest line (the PCA of every cell would otherwise fail on "cell i").
 */
export async function featuresOfCells(source: CellSource, size: readonly number[], batch = 16): Promise<CellRecord[]> {
  const out: CellRecord[] = [];
  for (let start = 0; start < source.length; start += batch) {
    const idx = Array.from({ length: Math.min(batch, source.length - start) }, (_, k) => start + k);
    const b: Batch = await source.batch(idx);
    idx.forEach((_, c) => {
      const row = b.rows[c];
      const features = cellFeatures(cellChannels(b, c, idx.length), size);
      const bad = features.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        const channel = FEATURE_NAMES[bad].startsWith('cell_') ? 'membrane' : 'DNA';
        throw new Error(`features: cell ${row.cellId} (${row.structure}, manifest line ${row.line}): its ${channel} has no pixel ≥ ${MASK_THRESHOLD} of full scale, so ${FEATURE_NAMES[bad]} is undefined (an empty mask: a dark image, or an intensity_scale above its values?)`);
      }
      out.push({ cellId: String(row.cellId), label: row.structure, features });
    });
  }
  return out;
}

/** μ of every cell of a source under a model (its encode role), in source order. */
export async function muOfCells(rt: ModelRuntime, source: CellSource, batch: number): Promise<Float32Array[]> {
  return (await encodeCells(rt, source, Math.min(batch, source.length))).mu;
}

/** Features of generated cells; cells with an empty mask (NaN features) are counted, not returned. */
export function featuresOfGenerated(cells: CellChannels[], size: readonly number[]): { features: number[][]; empty: number } {
  const features: number[][] = [];
  let empty = 0;
  for (const c of cells) {
    const f = cellFeatures(c, size);
    if (f.every(Number.isFinite)) features.push(f);
    else empty++;
  }
  return { features, empty };
}
