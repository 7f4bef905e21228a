// Statistics for the drug-shift test (statistical-cell.md §4 "Drug shift"): the distance between
// two groups' centroids in chosen latent dims, a seeded label-permutation test of that distance,
// and the Bonferroni correction. Browser-safe (no node: imports).

import { mean } from 'simple-statistics';
import { seededRandom } from '../data/random.ts';

function checkGroups(a: ArrayLike<number>[], b: ArrayLike<number>[], dims: readonly number[], what: string): void {
  if (!a.length || !b.length) throw new Error(`${what}: both groups need at least one cell (got ${a.length} and ${b.length})`);
  if (!dims.length) throw new Error(`${what}: no dims chosen`);
  const width = a[0].length;
  for (const [g, cells] of [a, b].entries())
    for (const [i, c] of cells.entries()) if (c.length !== width) throw new Error(`${what}: cell ${i} of group ${g + 1} has ${c.length} dims, expected ${width}`);
  for (const d of dims) if (!Number.isInteger(d) || d < 0 || d >= width) throw new Error(`${what}: dim ${d} is outside 0…${width - 1}`);
}

/** Euclidean distance between the centroids of groups a and b (cells × dims) in the dims chosen. */
export function centroidDistance(a: ArrayLike<number>[], b: ArrayLike<number>[], dims: readonly number[]): number {
  checkGroups(a, b, dims, 'centroid distance');
  let s = 0;
  for (const d of dims) s += (mean(a.map((c) => c[d])) - mean(b.map((c) => c[d]))) ** 2;
  return Math.sqrt(s);
}

/** Most label shuffles of one test: p is resolved to 1e-6, and each shuffle costs a pass over the cells (10⁹ ran for hours without a word). */
export const MAX_SHUFFLES = 1_000_000;

/** Refuses a shuffle count under 1 or past MAX_SHUFFLES (before any cell is embedded, when called first). */
export function checkShuffles(permutations: number): void {
  if (!Number.isInteger(permutations) || permutations < 1 || permutations > MAX_SHUFFLES) throw new Error(`permutation test: --permutations ${permutations}: expected a whole number from 1 to ${MAX_SHUFFLES}`);
}

export interface PermutationResult {
  observed: number;
  /** (1 + #{permuted ≥ observed}) / (1 + permutations): never 0, exact-test conservative. */
  p: number;
  permutations: number;
  /** How many permuted distances reached the observed one. */
  atLeast: number;
}

/**
 * Permutation test of the centroid distance: the group labels of the pooled cells are shuffled
 * (Fisher–Yates, seeded) `permutations` times, keeping the group sizes.
 */
export function permutationTest(a: ArrayLike<number>[], b: ArrayLike<number>[], dims: readonly number[], permutations = 10000, seed = 1): PermutationResult {
  checkGroups(a, b, dims, 'permutation test');
  checkShuffles(permutations);
  // Only the chosen dims matter: pool them once into a flat array, cells × k.
  const k = dims.length;
  const pool = [...a, ...b];
  const n = pool.length;
  const x = new Float64Array(n * k);
  for (const [i, c] of pool.entries()) for (const [j, d] of dims.entries()) x[i * k + j] = c[d];
  const total = new Float64Array(k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) total[j] += x[i * k + j];
  const na = a.length;
  const nb = n - na;
  // Distance from the sum over the first na cells of an ordering (the rest's sum is total − it).
  const sumA = new Float64Array(k);
  const distance = (order: Int32Array) => {
    sumA.fill(0);
    for (let i = 0; i < na; i++) for (let j = 0; j < k; j++) sumA[j] += x[order[i] * k + j];
    let s = 0;
    for (let j = 0; j < k; j++) s += (sumA[j] / na - (total[j] - sumA[j]) / nb) ** 2;
    return Math.sqrt(s);
  };
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const observed = distance(order);
  const rand = seededRandom(seed);
  // A relative tolerance, so that a permutation equal to the observed split counts as ≥ despite rounding.
  const bar = observed * (1 - 1e-12);
  let atLeast = 0;
  for (let t = 0; t < permutations; t++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
    if (distance(order) >= bar) atLeast++;
  }
  return { observed, p: (1 + atLeast) / (1 + permutations), permutations, atLeast };
}

/** Bonferroni: each p times the number of tests, capped at 1. */
export function bonferroni(p: readonly number[]): number[] {
  for (const [i, v] of p.entries()) if (!(v >= 0 && v <= 1)) throw new Error(`bonferroni: p-value ${i} is ${v}, not in [0, 1]`);
  return p.map((v) => Math.min(1, v * p.length));
}
