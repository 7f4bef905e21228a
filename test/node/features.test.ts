// The feature regression (analysis/features.ts, analysis/feature-regression.ts): shape features of
// antialiased discs and ellipses against their closed forms, intensity statistics against a
// float64 implementation written here, PCA and regression on constructed data with known R², and
// the regression on a model trained on synthetic cells, whose cell size is a known factor.

import { describe, expect, test } from 'vitest';
import { CHANNEL_FEATURES, channelFeatures, cellFeatures, contourLength, histogramEntropy, FEATURE_NAMES, MASK_THRESHOLD } from '../../analysis/features.ts';
import { featuresOfCells, fitFeaturePca, folds, pcScores, regressPcs, rSquared, selectedDims, weightedR2 } from '../../analysis/feature-regression.ts';
import { seededRandom } from '../../data/random.ts';

/**
 * An ellipse (semi-axes a along angle θ, b across), centred at (cy, cx), rasterised by coverage:
 * each pixel's value is the fraction of its s×s subsamples inside, times `peak`.
 */
function ellipse(size: [number, number], cy: number, cx: number, a: number, b: number, theta = 0, peak = 1, s = 16): Float32Array {
  const [Y, X] = size;
  const img = new Float32Array(Y * X);
  const c = Math.cos(theta);
  const sn = Math.sin(theta);
  for (let y = 0; y < Y; y++)
    for (let x = 0; x < X; x++) {
      let n = 0;
      for (let i = 0; i < s; i++)
        for (let j = 0; j < s; j++) {
          const dy = y - 0.5 + (i + 0.5) / s - cy;
          const dx = x - 0.5 + (j + 0.5) / s - cx;
          const u = (dy * c + dx * sn) / a;
          const v = (-dy * sn + dx * c) / b;
          if (u * u + v * v <= 1) n++;
        }
      img[y * X + x] = (peak * n) / (s * s);
    }
  return img;
}

/** Ramanujan's second approximation of an ellipse's perimeter (relative error < 1e-9 at a/b ≤ 3). */
const ramanujan = (a: number, b: number) => {
  const h = ((a - b) / (a + b)) ** 2;
  return Math.PI * (a + b) * (1 + (3 * h) / (10 + Math.sqrt(4 - 3 * h)));
};
const rel = (x: number, want: number) => Math.abs(x - want) / want;

describe('shape features', () => {
  // Level 0.5 of the coverage: the contour of the true shape, and the pixels at least half inside.
  const half = 0.5;
  test.each([4, 6, 10, 16])('disc of radius %d: area, perimeter, roundness within 2%%', (r) => {
    const size: [number, number] = [2 * r + 8, 2 * r + 10];
    const img = ellipse(size, r + 3.7, r + 5.2, r, r);
    const f = channelFeatures(img, size, half);
    expect(rel(f.area, Math.PI * r * r)).toBeLessThan(0.02);
    expect(rel(f.perimeter, 2 * Math.PI * r)).toBeLessThan(0.02);
    expect(rel(f.roundness, 1)).toBeLessThan(0.02);
  });

  test.each([
    [8, 4, 0],
    [12, 6, 0.4],
    [15, 5, 1.1],
    [10, 7, -0.7],
  ])('ellipse a=%d b=%d θ=%d: area, perimeter (Ramanujan), roundness within 2%%', (a, b, theta) => {
    const size: [number, number] = [2 * a + 8, 2 * a + 8];
    const img = ellipse(size, a + 4.3, a + 3.6, a, b, theta);
    const f = channelFeatures(img, size, half);
    const P = ramanujan(a, b);
    expect(rel(f.area, Math.PI * a * b)).toBeLessThan(0.02);
    expect(rel(f.perimeter, P)).toBeLessThan(0.02);
    expect(rel(f.roundness, (4 * Math.PI * Math.PI * a * b) / (P * P))).toBeLessThan(0.02);
  });

  test('a hard-edged (binary) disc: the interpolated contour is still within 5%; a pixel-edge count is not', () => {
    const r = 12;
    const size: [number, number] = [32, 32];
    const img = ellipse(size, 15.5, 15.5, r, r, 0, 1, 1); // one sample per pixel: 0 or 1
    const P = contourLength(img, size, half);
    expect(rel(P, 2 * Math.PI * r)).toBeLessThan(0.05);
    let edges = 0; // pixel edges between inside and outside
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) if (img[y * 32 + x] >= half) for (const [dy, dx] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) if (!(img[(y + dy) * 32 + x + dx] >= half)) edges++;
    expect(rel(edges, 2 * Math.PI * r)).toBeGreaterThan(0.2);
  });

  test('a 6×6 block of ones: four straight runs of 5 and four cut corners of √2/2; an empty image has no mask', () => {
    const size = [10, 10];
    const img = new Float32Array(100);
    for (let y = 2; y < 8; y++) for (let x = 2; x < 8; x++) img[y * 10 + x] = 1;
    // At level 0.5 the contour runs half-way between pixel centres: straight along each side (5 px
    // between the outer centres), a diagonal √(0.5² + 0.5²) across each corner square.
    expect(contourLength(img, size, 0.5)).toBeCloseTo(4 * 5 + 4 * Math.SQRT1_2, 10);
    const e = channelFeatures(new Float32Array(100), size);
    expect([e.area, e.perimeter]).toEqual([0, 0]);
    expect(e.mean).toBeNaN();
    expect(() => channelFeatures(new Float32Array(99), size)).toThrow('an image of 99 pixels is not 10×10');
  });
});

describe('intensity features', () => {
  test('mean, median, std, entropy inside the mask = a float64 implementation', () => {
    const rand = seededRandom(7);
    const size = [20, 30];
    const img = new Float32Array(600);
    for (let i = 0; i < 600; i++) img[i] = rand() < 0.3 ? rand() * 0.09 : rand();
    const f = channelFeatures(img, size);
    const inside = Array.from(img).filter((v) => v >= MASK_THRESHOLD).map(Number);
    const n = inside.length;
    const m = inside.reduce((a, b) => a + b, 0) / n;
    const sorted = [...inside].sort((a, b) => a - b);
    const med = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    const sd = Math.sqrt(inside.reduce((a, b) => a + (b - m) ** 2, 0) / n);
    const counts = new Map<number, number>();
    for (const v of inside) counts.set(Math.min(255, Math.floor(v * 256)), (counts.get(Math.min(255, Math.floor(v * 256))) ?? 0) + 1);
    let h = 0;
    for (const c of counts.values()) h -= (c / n) * Math.log2(c / n);
    expect(f.area).toBe(n);
    expect(f.mean).toBeCloseTo(m, 12);
    expect(f.median).toBeCloseTo(med, 12);
    expect(f.std).toBeCloseTo(sd, 12);
    expect(f.entropy).toBeCloseTo(h, 12);
    // Entropy of known histograms: uniform over 4 bins = 2 bits, one level = 0.
    expect(histogramEntropy([0.01, 0.3, 0.6, 0.9], 4)).toBeCloseTo(2, 12);
    expect(histogramEntropy([0.5, 0.5, 0.5])).toBe(0);
  });

  test('14 features in name order; a missing channel is named', () => {
    expect(FEATURE_NAMES).toHaveLength(14);
    expect(FEATURE_NAMES[0]).toBe('cell_area');
    expect(FEATURE_NAMES[13]).toBe('nucleus_entropy');
    const size: [number, number] = [24, 24];
    const memb = ellipse(size, 12, 12, 10, 7);
    const dna = ellipse(size, 12, 12, 4, 4, 0, 0.6);
    const f = cellFeatures({ membrane: memb, dna }, size);
    expect(f.slice(0, 7)).toEqual(CHANNEL_FEATURES.map((k) => channelFeatures(memb, size)[k]));
    expect(f.slice(7)).toEqual(CHANNEL_FEATURES.map((k) => channelFeatures(dna, size)[k]));
    expect(() => cellFeatures({ membrane: memb }, size)).toThrow("the cell has no 'dna' channel");
  });
});

describe('PCA and regression on constructed data', () => {
  const rand = seededRandom(11);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-300)) * Math.cos(2 * Math.PI * rand());

  test('R² = a float64 formula; PCs to 90%; a PC exactly linear in two latent dims has R² ≈ 1, noise ≈ 0', () => {
    expect(rSquared([1, 2, 3, 4], [1, 2, 3, 4])).toBe(1);
    expect(rSquared([1, 2, 3, 4], [2.5, 2.5, 2.5, 2.5])).toBe(0);
    expect(rSquared([1, 2, 3, 4], [1, 3, 3, 4])).toBeCloseTo(1 - 1 / 5, 12);
    expect(weightedR2([1, 0.5], [0.6, 0.2])).toBeCloseTo((0.6 + 0.1) / 0.8, 12);

    // 400 cells: two latent factors (dims 1 and 3, |μ| ≈ 1.6 on average) drive all 6 features; dims 0, 2 are near 0.
    const n = 400;
    const mu = Array.from({ length: n }, () => [0.1 * normal(), 2 * normal(), 0.1 * normal(), 2 * normal()]);
    const feats = mu.map(([, s, , e]) => [s, 2 * s + 1, -s + 0.5 * e, e, 3 * e - s, 0.1 * s + e]);
    const p = fitFeaturePca(feats);
    expect(p.kept).toBe(2); // rank 2: two PCs explain everything
    expect(p.explained[0] + p.explained[1]).toBeCloseTo(1, 10);
    expect(selectedDims(mu)).toEqual([1, 3]);
    const scores = pcScores(p, feats);
    const r = regressPcs(p.explained, mu, scores);
    expect(r.dims).toEqual([1, 3]);
    for (const v of [...r.r2Fit, ...r.r2Cv]) expect(v).toBeGreaterThan(1 - 1e-9);
    expect(r.weightedCv).toBeGreaterThan(1 - 1e-9);

    // Features independent of μ: R² ≈ 0 cross-validated, and in sample only the chance fit (≈ dims / cells).
    const noise = mu.map(() => Array.from({ length: 6 }, normal));
    const q = fitFeaturePca(noise);
    expect(q.kept).toBeGreaterThanOrEqual(5); // no structure: about one PC per feature
    const s = pcScores(q, noise);
    const z = regressPcs(q.explained, mu, s);
    for (const v of [...z.r2Cv, ...z.r2Fit]) expect(Math.abs(v)).toBeLessThan(0.05);
    expect(Math.abs(z.weightedCv)).toBeLessThan(0.05);

    // Half signal, half noise: PC scores y = x + e with var(x) = var(e): R² ≈ 0.5 both ways.
    const mixed = mu.map((m) => [m[1] + 2 * normal(), m[3] + 2 * normal()]);
    const h = regressPcs([0.5, 0.5], mu, mixed);
    for (const v of [...h.r2Cv, ...h.r2Fit]) expect(v).toBeGreaterThan(0.4), expect(v).toBeLessThan(0.6);

    // No dim over the threshold: the mean predicts, R² = 0 in sample.
    const flat = regressPcs(p.explained, mu.map((m) => m.map((v) => v / 100)), scores);
    expect(flat.dims).toEqual([]);
    for (const v of flat.r2Fit) expect(v).toBeCloseTo(0, 12);
  });

  test('folds: every cell in one of k folds of near-equal size, seeded', () => {
    const f = folds(103, 5, 3);
    const sizes = [0, 1, 2, 3, 4].map((k) => f.filter((x) => x === k).length);
    expect(sizes.sort()).toEqual([20, 20, 21, 21, 21]);
    expect(folds(103, 5, 3)).toEqual(f);
    expect(folds(103, 5, 4)).not.toEqual(f);
  });

  test('bad features are named', () => {
    const rows = [[1, 2], [1, 3], [1, 4]];
    expect(() => fitFeaturePca(rows, 0.9, ['a', 'b'])).toThrow('a is the same (1) in every cell');
    expect(() => fitFeaturePca([[1, 2], [2, NaN], [3, 4]], 0.9, ['a', 'b'])).toThrow('cell 1: b is NaN');
  });

  test('a real cell with an empty mask is named by CellId and manifest line (the PCA said "cell 1")', async () => {
    const [Y, X] = [6, 6];
    const n = Y * X;
    // Two cells of [membrane, DNA] references: cell 7 bright, cell 9 with a membrane below the mask threshold.
    const reference = new Float32Array(4 * n).fill(0.5);
    reference.fill(0.05, 2 * n, 3 * n);
    const rows = [{ cellId: '7', structure: 'Golgi', line: 2 }, { cellId: '9', structure: 'Golgi', line: 3 }];
    const source = { length: 2, batch: async () => ({ reference, structure: new Float32Array(2 * n), onehot: new Float32Array(0), classes: [], rows }) } as never;
    await expect(featuresOfCells(source, [Y, X])).rejects.toThrow('features: cell 9 (Golgi, manifest line 3): its membrane has no pixel ≥ 0.1 of full scale, so cell_roundness is undefined');
  });
});

// ---- on a model trained on synthetic cells (small, cached: test/node/trained-models.ts)

describe('on a trained model', async () => {
  const { trainedPair, trainedReference } = await import('./trained-models.ts');
  const { featuresCommand } = await import('../../cli/analyze-features.ts');
  const { WasmBackend } = await import('../../runtime/wasm.ts');
  const { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { dirname, join } = await import('node:path');
  const { parse } = await import('csv-parse/sync');

  test('cell size is a known factor of the synthetic cells: it dominates PC1 of the interphase cells, and the latent space predicts PC1 with cross-validated R² ≥ 0.8', async () => {
    // β 0.1 and 600 iterations (8 epochs): the pair's reference (β 0.5, 150 iterations) has only 2 dims
    // with mean |μ| > 0.6, and R² of PC1 0.05. The features are of the interphase cells: at 32×24 a
    // mitotic nucleus is a few pixels of constant DNA, so with them PC1 is mitosis (|corr| 0.95 with
    // truth_mitotic, R² 0.51), not size.
    const pair = await trainedPair();
    const run = await trainedReference(0.1, 600);
    const [header, ...rows] = parse(readFileSync(pair.data, 'utf8')) as string[][];
    const interphase = join(dirname(pair.data), 'interphase.csv'); // beside the manifest: its image paths are relative
    const field = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
    writeFileSync(`${interphase}.${process.pid}`, [header, ...rows.filter((r) => r[header.indexOf('truth_mitotic')] === '0')].map((r) => r.map(field).join(',')).join('\n') + '\n');
    renameSync(`${interphase}.${process.pid}`, interphase);
    const out = mkdtempSync(join(tmpdir(), 'statcell-features-'));
    const s = await featuresCommand({ run, data: interphase, out, generated: 16, checkpoint: 'best' }, await WasmBackend.create());
    const m = s.models[0];
    console.log(`features: ${s.cells} cells; ${s.kept} PCs (explained ${s.explained.slice(0, s.kept).map((e) => e.toFixed(3)).join(', ')}); ${m.dims.length} dims with mean |μ| > 0.6; R² 5-fold cross-validated ${m.r2Cv.map((v) => v.toFixed(3)).join(', ')} (weighted ${m.weightedCv.toFixed(3)}), in sample ${m.r2Fit.map((v) => v.toFixed(3)).join(', ')} (weighted ${m.weightedFit.toFixed(3)})`);
    // The synthesizer's ground truth: PC1 follows the cell's size (truth_cell_voxels) on the real cells.
    const real = parse(readFileSync(join(out, 'features-real.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    const truth = new Map((parse(readFileSync(pair.data, 'utf8'), { columns: true }) as Record<string, string>[]).map((r) => [r.CellId, Number(r.truth_cell_voxels)]));
    const x = real.map((r) => truth.get(r.CellId)!);
    const y = real.map((r) => Number(r.PC1));
    const corr = (a: number[], b: number[]) => {
      const ma = a.reduce((p, q) => p + q, 0) / a.length;
      const mb = b.reduce((p, q) => p + q, 0) / b.length;
      let sab = 0, saa = 0, sbb = 0;
      for (let i = 0; i < a.length; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) ** 2; sbb += (b[i] - mb) ** 2; }
      return sab / Math.sqrt(saa * sbb);
    };
    console.log(`|corr(PC1, truth_cell_voxels)| = ${Math.abs(corr(x, y)).toFixed(3)}`);
    expect(Math.abs(corr(x, y))).toBeGreaterThan(0.8);
    expect(m.dims.length).toBeGreaterThan(0);
    expect(m.r2Cv[0]).toBeGreaterThanOrEqual(0.8);
    expect(m.generated + m.generatedEmpty).toBe(16);
    for (const f of ['features-real.csv', 'features-generated.csv', 'pca.csv', 'r2.csv', 'summary.csv', 'summary.json', 'r2.png', 'pcs.png']) expect(existsSync(join(out, f)), f).toBe(true);
  }, 900_000);

  test("a run at the model's default β gets that β in every table (its beta column was empty: β was read from the overrides only)", async () => {
    const pair = await trainedPair();
    expect(JSON.parse(readFileSync(join(pair.reference, 'run.json'), 'utf8')).overrides.beta).toBeUndefined();
    const out = mkdtempSync(join(tmpdir(), 'statcell-features-'));
    const s = await featuresCommand({ run: pair.reference, data: pair.data, out, generated: 0, checkpoint: 'best' }, await WasmBackend.create());
    expect(s.models[0].beta).toBe(0.5); // StatCell's beta default (models/statcell.vae), which reference2d.vae keeps
    for (const f of ['summary.csv', 'r2.csv']) {
      const rows = parse(readFileSync(join(out, f), 'utf8'), { columns: true }) as Record<string, string>[];
      expect(rows.length, f).toBeGreaterThan(0);
      for (const r of rows) expect(r.beta, f).toBe('0.5');
    }
  }, 300_000);
});
