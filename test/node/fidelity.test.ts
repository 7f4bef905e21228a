// Label fidelity (analysis/fidelity.ts): the nucleus fraction against a float64 count on shapes
// whose answer is known, and against the synthetic data's rules (nucleoli inside the nucleus,
// mitochondria and the plasma membrane outside it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { fractionInside, labelFidelity, labelVersusCellDifference, nucleusMask } from '../../analysis/fidelity.ts';
import { CellDataset } from '../../data/dataset.ts';
import { readManifest } from '../../data/manifest.ts';
import { synthesize } from '../../data/synth.ts';

const Y = 40;
const X = 30;
/** A disc of radius r at (cy, cx) with value v, as float64. */
const disc = (cy: number, cx: number, r: number, v = 1) => Float64Array.from({ length: Y * X }, (_, i) => ((Math.floor(i / X) - cy) ** 2 + ((i % X) - cx) ** 2 <= r * r ? v : 0));

describe('nucleus fraction', () => {
  test('a structure half inside the nucleus: the count of its pixels in the DNA disc over all', () => {
    const dna = disc(20, 15, 8, 0.7);
    const structure = Float64Array.from({ length: Y * X }, (_, i) => (i % X < 15 ? 1 : 0)); // left half of the image
    let inside = 0;
    let total = 0;
    for (let i = 0; i < Y * X; i++) {
      total += structure[i];
      if (dna[i] > 0) inside += structure[i];
    }
    expect(fractionInside(structure, nucleusMask(dna))).toBeCloseTo(inside / total, 12);
    expect(inside / total).toBeGreaterThan(0.1); // the case is not trivial
  });

  test('the mask follows the level: faint DNA below 0.2 × the maximum is outside', () => {
    const dna = Float64Array.from(disc(20, 15, 8, 1), (v, i) => v || (i % X === 0 ? 0.1 : 0));
    const m = nucleusMask(dna);
    expect(m.reduce((a, b) => a + b, 0)).toBe(disc(20, 15, 8).reduce((a, b) => a + b, 0));
    expect(fractionInside(new Float64Array(Y * X), m)).toBeNaN(); // no signal: nothing to say
  });

  test('labelFidelity: per-label means over cells and their distance', () => {
    const dna = disc(20, 15, 8);
    const inNuc = disc(20, 15, 4);
    const outside = disc(4, 4, 3);
    const both = Float64Array.from(inNuc, (v, i) => v + outside[i]);
    const f = labelFidelity(
      ['A', 'B', 'C'],
      [
        { label: 'A', cell: { dna, structure: inNuc } },
        { label: 'A', cell: { dna, structure: both } },
        { label: 'B', cell: { dna, structure: outside } },
      ],
      [
        { label: 'A', cell: { dna, structure: both } },
        { label: 'B', cell: { dna, structure: inNuc } },
      ],
    );
    const fBoth = disc(20, 15, 4).reduce((a, b) => a + b, 0) / both.reduce((a, b) => a + b, 0);
    expect(f[0]).toMatchObject({ label: 'A', nReal: 2, nGenerated: 1 });
    expect(f[0].real).toBeCloseTo((1 + fBoth) / 2, 12);
    expect(f[0].generated).toBeCloseTo(fBoth, 12);
    expect(f[0].error).toBeCloseTo((1 - fBoth) / 2, 12);
    expect(f[1]).toMatchObject({ real: 0, generated: 1, error: 1 });
    expect(f[2].real).toBeNaN(); // no real cell of C
  });

  test('labelVersusCellDifference: a model that ignores its label has no difference between labels', () => {
    const cells = [disc(10, 10, 5), disc(25, 20, 6)];
    const ignoresLabel = [cells, cells, cells];
    const madCells = cells[0].reduce((s, v, i) => s + Math.abs(v - cells[1][i]), 0) / (Y * X);
    expect(labelVersusCellDifference(ignoresLabel)).toEqual({ betweenLabels: 0, betweenCells: madCells });
    const onlyLabel = [[cells[0], cells[0]], [cells[1], cells[1]]];
    expect(labelVersusCellDifference(onlyLabel)).toEqual({ betweenLabels: madCells, betweenCells: 0 });
  });
});

describe('on synthetic cells (the rules that place each structure)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'statcell-fidelity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('nucleoli lie inside the nucleus, mitochondria and the plasma membrane outside, the envelope between', async () => {
    const manifest = synthesize({ out: dir, cells: 96, dims: 2, size: [64, 40], seed: 3 });
    const rows = readManifest(manifest, { seed: 1 }).filter((r) => r.columns.truth_mitotic !== '1');
    const ds = new CellDataset(rows, { dims: 2, size: [64, 40] });
    const b = await ds.batch(Array.from({ length: ds.length }, (_, i) => i));
    const v = 64 * 40;
    const real = ds.rows.map((r, i) => ({ label: r.structure, cell: { dna: b.reference.subarray((2 * i + 1) * v, (2 * i + 2) * v), structure: b.structure.subarray(i * v, (i + 1) * v) } }));
    const by = Object.fromEntries(labelFidelity(['Nucleolus (Granular Component)', 'Nucleolus (Dense Fibrillar Component)', 'Nuclear envelope', 'Mitochondria', 'Plasma membrane'], real, real).map((f) => [f.label, f]));
    expect(by['Nucleolus (Granular Component)'].nReal).toBeGreaterThan(0);
    expect(by['Nucleolus (Granular Component)'].real).toBeGreaterThan(0.9);
    expect(by['Nucleolus (Dense Fibrillar Component)'].real).toBeGreaterThan(0.9);
    expect(by['Mitochondria'].real).toBeLessThan(0.1);
    expect(by['Plasma membrane'].real).toBeLessThan(0.1);
    expect(by['Nuclear envelope'].real).toBeGreaterThan(0.2);
    expect(by['Nuclear envelope'].real).toBeLessThan(0.9);
  });
});
