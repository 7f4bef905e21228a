// The drug-shift analysis: its formulas against independent float64 implementations on small
// cases, and the synthetic drug cells against their effects by construction, in pixel space.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, test } from 'vitest';
import { correctAll, drugShift, kldPerDim, rankDimsByKldSpread } from '../../analysis/drug.ts';
import { bonferroni, centroidDistance, permutationTest } from '../../analysis/stats.ts';
import { CellDataset } from '../../data/dataset.ts';
import { readPng2d } from '../../data/images.ts';
import { readManifest } from '../../data/manifest.ts';
import { BUNDLES, DRUG_STRUCTURES, synthesize } from '../../data/synth.ts';
import { drugCommand, type DrugTestRow } from '../../cli/analyze-drug.ts';
import { trainCommand } from '../../cli/train.ts';
import { WasmBackend } from '../../runtime/wasm.ts';

/** A small seeded normal generator of the test's own (not the code's). */
function gaussians(seed: number): () => number {
  let s = seed;
  const u = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** Centroid distance straight from the definition, in float64. */
function refDistance(a: number[][], b: number[][], dims: number[]): number {
  let s = 0;
  for (const d of dims) {
    let ma = 0;
    let mb = 0;
    for (const c of a) ma += c[d] / a.length;
    for (const c of b) mb += c[d] / b.length;
    s += (ma - mb) ** 2;
  }
  return Math.sqrt(s);
}

/** Every way of choosing k of n indices. */
function* subsets(n: number, k: number, from = 0, chosen: number[] = []): Generator<number[]> {
  if (chosen.length === k) yield chosen;
  else for (let i = from; i < n; i++) yield* subsets(n, k, i + 1, [...chosen, i]);
}

describe('drug-shift statistics', () => {
  const g = gaussians(7);
  const a = Array.from({ length: 5 }, () => [g() + 1.5, g(), g() * 3]);
  const b = Array.from({ length: 4 }, () => [g(), g() + 0.5, g()]);

  test('centroid distance is the Euclidean distance of the group means in the chosen dims', () => {
    for (const dims of [[0], [1, 2], [0, 1, 2], [2, 0]]) expect(centroidDistance(a, b, dims)).toBeCloseTo(refDistance(a, b, dims), 12);
    // By hand: means (1, 0) and (0, 4) → 5 in dims 0, 1 (the 3-4-5 triangle).
    expect(centroidDistance([[0, 0], [2, 0]], [[0, 3], [0, 5]], [0, 1])).toBeCloseTo(Math.sqrt(1 + 16), 14);
    expect(() => centroidDistance(a, b, [3])).toThrow(/dim 3 is outside 0…2/);
    expect(() => centroidDistance([], b, [0])).toThrow(/at least one cell/);
  });

  test('the permutation p-value matches the exact enumeration of every relabelling', () => {
    const dims = [0, 1];
    const pool = [...a, ...b];
    const observed = refDistance(a, b, dims);
    let atLeast = 0;
    let total = 0;
    for (const s of subsets(pool.length, a.length)) {
      const inA = new Set(s);
      const pa = pool.filter((_, i) => inA.has(i));
      const pb = pool.filter((_, i) => !inA.has(i));
      if (refDistance(pa, pb, dims) >= observed * (1 - 1e-12)) atLeast++;
      total++;
    }
    const exact = atLeast / total; // 126 relabellings
    const r = permutationTest(a, b, dims, 10000, 3);
    expect(r.observed).toBeCloseTo(observed, 12);
    expect(r.p).toBe((1 + r.atLeast) / (1 + 10000));
    // Monte Carlo with 10,000 shuffles: within 4 standard errors of the exact p.
    expect(Math.abs(r.p - exact)).toBeLessThan(4 * Math.sqrt((exact * (1 - exact)) / 10000) + 2e-4);
    expect(exact).toBeGreaterThan(0);
    // Seeded: the same seed, the same p; a different seed, (almost surely) another count.
    expect(permutationTest(a, b, dims, 10000, 3).atLeast).toBe(r.atLeast);
  });

  test('identical groups give p = 1; well separated groups give the smallest possible p', () => {
    const same = [[1, 2], [1, 2], [1, 2]];
    expect(permutationTest(same, same, [0, 1], 99, 1).p).toBe(1);
    const far = permutationTest(Array.from({ length: 8 }, (_, i) => [10 + i * 0.01]), Array.from({ length: 8 }, (_, i) => [i * 0.01]), [0], 999, 1);
    // Only the observed split (and its mirror, which has the same distance) reach the observed distance: 2 of C(16, 8).
    expect(far.p).toBeLessThan(0.01);
  });

  test('shuffle counts past 10⁶ are refused at once (10⁹ ran for hours without a word)', () => {
    const t0 = performance.now();
    expect(() => permutationTest([[0], [1]], [[2], [3]], [0], 1e9)).toThrow('permutation test: --permutations 1000000000: expected a whole number from 1 to 1000000');
    expect(() => permutationTest([[0], [1]], [[2], [3]], [0], 0)).toThrow(/--permutations 0/);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  test('Bonferroni multiplies by the number of tests and caps at 1', () => {
    expect(bonferroni([0.01, 0.2, 0.5, 0.0001])).toEqual([0.04, 0.8, 1, 0.0004]);
    expect(() => bonferroni([0.1, Number.NaN])).toThrow(/p-value 1 is NaN/);
    expect(correctAll([{ p: 0.01 }, { p: 0.03 }]).map((t) => t.pCorrected)).toEqual([0.02, 0.06]);
  });

  test('per-dim KLD and the ranking by its spread in untreated cells', () => {
    const mu = [[0.5, -1, 0], [1.5, -1, 0.1], [-0.5, -1, -0.1]];
    const logvar = [[-1, 0, 0], [-2, 0, 0], [0, 0, 0]];
    for (const [i, m] of mu.entries()) for (const [d, v] of kldPerDim(m, logvar[i]).entries()) expect(v).toBeCloseTo(0.5 * (m[d] ** 2 + Math.exp(logvar[i][d]) - 1 - logvar[i][d]), 14);
    // Dim 1 has the same KLD in every cell (spread 0); dim 0 varies most.
    const { dims, spread } = rankDimsByKldSpread({ mu, logvar });
    expect(dims).toEqual([0, 2, 1]);
    expect(spread[1]).toBe(0);
    const k0 = mu.map((m, i) => 0.5 * (m[0] ** 2 + Math.exp(logvar[i][0]) - 1 - logvar[i][0]));
    const mean0 = k0.reduce((s, v) => s + v, 0) / 3;
    expect(spread[0]).toBeCloseTo(Math.sqrt(k0.reduce((s, v) => s + (v - mean0) ** 2, 0) / 3), 12); // population SD
    // The shift uses the top dims only: a shift in dim 1 (no KLD spread) is not looked at with --dims 1.
    const shifted = { mu: mu.map((m) => [m[0], m[1] + 5, m[2]]), logvar };
    expect(drugShift(shifted, { mu, logvar }, { dims: 1, permutations: 99, seed: 1 })).toMatchObject({ dims: [0], distance: 0 });
    expect(drugShift(shifted, { mu, logvar }, { dims: 3, permutations: 99, seed: 1 }).distance).toBeCloseTo(5, 12);
  });
});

describe('synthetic drug cells', () => {
  const size = [64, 40];
  const plainDir = mkdtempSync(join(tmpdir(), 'statcell-drug-'));
  const drugDir = mkdtempSync(join(tmpdir(), 'statcell-drug-'));
  const plain = synthesize({ out: plainDir, cells: 20, dims: 2, size, seed: 4 });
  const manifest = synthesize({ out: drugDir, cells: 20, dims: 2, size, seed: 4, drugs: 12 });
  const rows = readManifest(manifest);
  const drugRows = rows.filter((r) => r.columns.drug_label);

  test('drug columns, the other cells unchanged, and no split holds a treated cell', () => {
    const before = readFileSync(plain, 'utf8').trim().split('\n');
    const after = readFileSync(manifest, 'utf8').trim().split('\n');
    expect(after[0]).toBe(`${before[0]},drug_label,concentration,truth_drug_effect`);
    for (const [i, line] of before.slice(1).entries()) expect(after[i + 1]).toBe(`${line},,,`);
    for (const r of rows.slice(0, before.length - 1)) expect(readFileSync(r.png2d!)).toEqual(readFileSync(r.png2d!.replace(drugDir, plainDir)));
    expect(drugRows.length).toBe(3 * 2 * 12);
    const count = (drug: string, structure: string, effect: string) => drugRows.filter((r) => r.columns.drug_label === drug && r.structure === structure && r.columns.truth_drug_effect === effect).length;
    expect(count('Brefeldin A', 'Golgi', 'golgi_dispersed')).toBe(12);
    expect(count('Brefeldin A', 'Microtubules', 'none')).toBe(12);
    expect(count('Paclitaxel', 'Microtubules', 'microtubules_bundled')).toBe(12);
    expect(count('DMSO', 'Golgi', 'none')).toBe(12);
    expect(new Set(drugRows.map((r) => r.columns.concentration))).toEqual(new Set(['5 µM', '0.1% v/v']));
    expect(new Set(drugRows.map((r) => r.cellId)).size).toBe(drugRows.length);
    let seen = 0;
    for (const split of ['train', 'validate', 'test'] as const) {
      const ds = new CellDataset(rows, { dims: 2, size, split });
      expect(ds.rows.some((r) => r.columns.drug_label)).toBe(false);
      seen += ds.rows.length;
    }
    expect(seen).toBe(rows.length - drugRows.length);
    expect(() => synthesize({ out: drugDir, cells: 2, dims: 2, size, seed: 4, drugs: 1.5 })).toThrow(/drugs must be a whole number/);
  });

  /** The structure channel (PNG green) of a row, with the cell centre from the truth columns. */
  const structureOf = async (r: (typeof rows)[number]) => {
    const img = await readPng2d(r.png2d!);
    const [Y, X] = img.spatial;
    return { s: img.data.subarray(Y * X, 2 * Y * X), Y, X, cy: Number(r.columns.truth_centre_y), cx: Number(r.columns.truth_centre_x) };
  };
  const interphase = (drug: string, structure: string) => drugRows.filter((r) => r.columns.drug_label === drug && r.structure === structure && r.columns.truth_mitotic === '0');
  /** Mean over the cells with any signal (a small synthetic cell may have room for no Golgi at all: NaN). */
  const average = (v: number[]) => {
    const ok = v.filter((x) => Number.isFinite(x));
    return ok.reduce((s, x) => s + x, 0) / ok.length;
  };

  test('Brefeldin A scatters the Golgi over the cytoplasm (the intensity-weighted spread about its centroid grows)', async () => {
    const spread = async (r: (typeof rows)[number]) => {
      const { s, Y, X } = await structureOf(r);
      let w = 0;
      let my = 0;
      let mx = 0;
      for (let i = 0; i < Y * X; i++) {
        w += s[i];
        my += s[i] * Math.floor(i / X);
        mx += s[i] * (i % X);
      }
      my /= w;
      mx /= w;
      let v = 0;
      for (let i = 0; i < Y * X; i++) v += s[i] * ((Math.floor(i / X) - my) ** 2 + ((i % X) - mx) ** 2);
      return Math.sqrt(v / w) / Math.sqrt(Number(r.columns.truth_cell_voxels)); // in units of the cell's size
    };
    const bfa = await Promise.all(interphase('Brefeldin A', 'Golgi').map(spread));
    const dmso = await Promise.all(interphase('DMSO', 'Golgi').map(spread));
    const paclitaxel = await Promise.all(interphase('Paclitaxel', 'Golgi').map(spread));
    expect(average(bfa)).toBeGreaterThan(1.5 * average(dmso));
    expect(Math.min(...bfa)).toBeGreaterThan(average(dmso)); // every treated cell has puncta: NaN would fail here
    // Paclitaxel leaves the Golgi as the vehicle does.
    expect(Math.abs(average(paclitaxel) - average(dmso))).toBeLessThan(0.25 * average(dmso));
  });

  test(`paclitaxel bundles the microtubules (at most ${BUNDLES} angular bundles, against many fine filaments)`, async () => {
    // Signal summed per 5° sector about the cell centre; bundles = runs of sectors above half the peak.
    const bundles = async (r: (typeof rows)[number]) => {
      const { s, Y, X, cy, cx } = await structureOf(r);
      const bins = new Float64Array(72);
      for (let i = 0; i < Y * X; i++) {
        const t = Math.atan2(Math.floor(i / X) - cy, (i % X) - cx);
        bins[Math.min(71, Math.floor(((t + Math.PI) / (2 * Math.PI)) * 72))] += s[i];
      }
      const half = Math.max(...bins) / 2;
      let runs = 0;
      for (let k = 0; k < 72; k++) if (bins[k] > half && bins[(k + 71) % 72] <= half) runs++;
      return runs;
    };
    const taxol = await Promise.all(interphase('Paclitaxel', 'Microtubules').map(bundles));
    const dmso = await Promise.all(interphase('DMSO', 'Microtubules').map(bundles));
    const bfa = await Promise.all(interphase('Brefeldin A', 'Microtubules').map(bundles));
    expect(Math.max(...taxol)).toBeLessThanOrEqual(BUNDLES);
    expect(average(dmso)).toBeGreaterThan(average(taxol) + 2);
    expect(average(bfa)).toBeGreaterThan(average(taxol) + 2);
  });
});

describe('the drug test on trained models', () => {
  // A small Reference2D/Target2D pair trained on untreated Golgi and microtubule cells of the
  // synthesizer (the drug-treated cells are in the manifest, but no split holds them).
  const size = [32, 24];
  const dir = mkdtempSync(join(tmpdir(), 'statcell-drug-trained-'));
  let result: DrugTestRow[] = [];
  let seconds = 0;

  beforeAll(async () => {
    const manifest = synthesize({ out: join(dir, 'data'), cells: 19 * 60, dims: 2, size, seed: 3, drugs: 96 });
    const [header, ...lines] = parse(readFileSync(manifest, 'utf8')) as string[][];
    const name = header.indexOf('StructureDisplayName');
    const keep = new Set<string>(DRUG_STRUCTURES);
    writeFileSync(manifest, [header, ...lines.filter((l) => keep.has(l[name]))].map((l) => l.join(',')).join('\n') + '\n');
    const backend = await WasmBackend.create();
    // The target model at lr 2e-3, as in trained-models.ts and the demo: at the paper's 2e-4, 250
    // steps are too few on the cells whose nucleus varies on its own (Brefeldin A corrected p 0.16,
    // paclitaxel 1.0).
    for (const [model, out, iterations, lr] of [['models/reference2d.vae', 'reference', 150, 2e-4], ['models/target2d.vae', 'target', 250, 2e-3]] as const) {
      const r = await trainCommand({ model, set: { size, channels: [8, 16, 32], latent: 16, lr }, data: manifest, out: join(dir, out), backend: 'wasm', batch: 16, iterations, seed: 1, evalSamples: 1, openedBackend: backend });
      r.runtime.destroy();
    }
    const t0 = performance.now();
    result = await drugCommand({ reference: join(dir, 'reference'), target: join(dir, 'target'), data: manifest, permutations: 10000, dims: 8, seed: 1, out: join(dir, 'drug') }, backend, () => {});
    seconds = (performance.now() - t0) / 1000;
    for (const t of result) console.log(`${t.model}\t${t.drug}\t${t.structure}\tn ${t.nTreated}/${t.nUntreated}\tdistance ${t.distance.toFixed(4)}\tp ${t.p.toExponential(2)}\tcorrected ${t.pCorrected.toExponential(2)}`);
    console.log(`drug analysis: ${seconds.toFixed(1)} s`);
  }, 240_000);

  test('the target model finds Brefeldin A in the Golgi and paclitaxel in the microtubules, and nothing else', () => {
    const at = (model: string, drug: string, structure: string) => result.find((t) => t.model === model && t.drug === drug && t.structure === structure)!;
    expect(result.length).toBe(2 * 3 * 2);
    expect(at('target', 'Brefeldin A', 'Golgi').pCorrected).toBeLessThan(0.05);
    expect(at('target', 'Paclitaxel', 'Microtubules').pCorrected).toBeLessThan(0.05);
    for (const s of DRUG_STRUCTURES) expect(at('target', 'DMSO', s).pCorrected).toBeGreaterThanOrEqual(0.05);
    // By construction the drugs change only their own structure, never the membrane or the DNA.
    for (const t of result.filter((t) => t.model === 'reference')) expect(t.pCorrected).toBeGreaterThanOrEqual(0.05);
    expect(at('target', 'Brefeldin A', 'Microtubules').pCorrected).toBeGreaterThanOrEqual(0.05);
    expect(at('target', 'Paclitaxel', 'Golgi').pCorrected).toBeGreaterThanOrEqual(0.05);
    for (const t of result) expect(t.pCorrected).toBe(Math.min(1, t.p * result.length));
  });

  test('--dims past a latent space uses all of it, and the table says so (it said "the top 40 dims" of a latent space of 16)', async () => {
    const backend = await WasmBackend.create();
    const out = join(dir, 'drug-all-dims');
    const rows = await drugCommand({ reference: join(dir, 'reference'), target: join(dir, 'target'), data: join(dir, 'data', 'manifest.csv'), permutations: 10, dims: 40, seed: 1, out }, backend, () => {});
    expect(rows.every((t) => t.dims.length === 16)).toBe(true);
    expect(readFileSync(join(out, 'drug-shift.md'), 'utf8')).toMatch(/^Drug shift: centroid distance of μ in the top 40 dims \(the reference model has 16: all of them\) \(the target model has 16: all of them\)/);
  }, 120_000);

  test('the table and the plot are written', () => {
    const csv = readFileSync(join(dir, 'drug', 'drug-shift.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('model,drug,structure,against,n_treated,n_untreated,dims,distance,p,p_bonferroni');
    expect(csv.length).toBe(1 + result.length);
    expect(readFileSync(join(dir, 'drug', 'drug-shift.md'), 'utf8')).toMatch(/\| target \| Brefeldin A \| Golgi \| DMSO \| \d+ \| \d+ \|/);
    expect(readFileSync(join(dir, 'drug', 'drug-shift.svg'), 'utf8')).toMatch(/^<svg xmlns/);
    expect(readFileSync(join(dir, 'drug', 'drug-shift.md'), 'utf8')).toMatch(/^Drug shift: centroid distance of μ in the top 8 dims \(ranked/);
    expect([...readFileSync(join(dir, 'drug', 'drug-shift.png')).subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
  });
});
