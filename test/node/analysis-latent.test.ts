// The latent analyses (statistical-cell.md §4): each formula against an independent float64
// implementation on small cases, then the properties the paper shows on trained models
// (test/node/trained-models.ts): the controls' coupling, the nucleus/membrane ordering of the
// synthetic rules, and fewer effective dimensions at a larger β.

import { describe, expect, test } from 'vitest';
import { kldPerDim, summarizeKld } from '../../analysis/kld.ts';
import { couplingOf, mitoticOf, partnersOf, summarizeCoupling, type CellCoupling } from '../../analysis/coupling.ts';
import { walkValues } from '../../analysis/walk.ts';
import type { CellRow } from '../../data/manifest.ts';

// ---- float64 references, written from the spec's formulas

/** KL(N(μ, σ²) ‖ N(0, 1)) = ½(σ² + μ² − 1 − ln σ²), with σ² = e^logvar. */
const klRef = (mu: number, logvar: number) => 0.5 * (Math.exp(logvar) + mu * mu - 1 - logvar);
const meanRef = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stdRef = (xs: number[]) => {
  const m = meanRef(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
};
const medianRef = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

describe('per-dimension KL', () => {
  test('KLD_d matches the closed form, and is 0 exactly at the prior', () => {
    const mu = [0, 1.5, -0.3, 0, 2];
    const lv = [0, -1, 0.7, -3, 0.1];
    const got = kldPerDim(Float32Array.from(mu), Float32Array.from(lv));
    mu.forEach((m, d) => expect(got[d]).toBeCloseTo(klRef(Math.fround(m), Math.fround(lv[d])), 12));
    expect(Math.abs(kldPerDim([0], [0])[0])).toBe(0);
    expect(() => kldPerDim([0, 1], [0])).toThrow(/2 dims but logvar has 1/);
  });

  test('mean sorted descending, effective dims by per-cell std > 0.05, active by mean ≥ 0.01', () => {
    // Dim 0: varies a lot (effective); dim 1: constant 0.5 (not effective, active); dim 2: ~0
    // (neither); dim 3: varies a little (std just under 0.05: not effective).
    const rows = [
      [0.1, 0.5, 0.001, 0.2],
      [0.9, 0.5, 0.002, 0.29],
      [0.4, 0.5, 0.0, 0.25],
      [1.6, 0.5, 0.001, 0.21],
    ];
    const s = summarizeKld(rows);
    const cols = [0, 1, 2, 3].map((d) => rows.map((r) => r[d]));
    cols.forEach((c, d) => {
      expect(s.mean[d]).toBeCloseTo(meanRef(c), 12);
      expect(s.std[d]).toBeCloseTo(stdRef(c), 12);
    });
    const order = [0, 1, 2, 3].sort((a, b) => meanRef(cols[b]) - meanRef(cols[a]));
    expect(s.order).toEqual(order);
    expect(s.effective).toBe(cols.filter((c) => stdRef(c) > 0.05).length);
    expect(s.effective).toBe(1);
    expect(s.active).toBe(3);
  });
});

describe('coupling', () => {
  test('1 − ELBO / mean(permuted ELBOs), positive when permuting hurts', () => {
    expect(couplingOf(-100, [-120, -130, -110])).toBeCloseTo(1 - -100 / -120, 12);
    expect(couplingOf(-100, [-100])).toBe(0);
    expect(couplingOf(-100, [-80])).toBeLessThan(0);
    expect(() => couplingOf(-1, [])).toThrow(/no permuted/);
  });

  test('per-structure medians of memb − dna, split by mitosis, sorted ascending', () => {
    const cells: CellCoupling[] = [];
    const add = (structure: string, mitotic: boolean, memb: number, dna: number) => cells.push({ cellId: String(cells.length), structure, mitotic, elbo: -1, memb, dna });
    add('A', false, 0.5, 0.1);
    add('A', false, 0.2, 0.3);
    add('A', true, 0.9, 0.0);
    add('A', false, 0.4, 0.4);
    add('B', false, 0.0, 0.6);
    add('B', true, 0.1, 0.2);
    const s = summarizeCoupling(cells);
    for (const [structure, phase] of [['A', 'all'], ['A', 'interphase'], ['A', 'mitotic'], ['B', 'all'], ['B', 'interphase'], ['B', 'mitotic']] as const) {
      const these = cells.filter((c) => c.structure === structure && (phase === 'all' || c.mitotic === (phase === 'mitotic')));
      const row = s.find((r) => r.structure === structure && r.phase === phase)!;
      expect(row.cells).toBe(these.length);
      expect(row.differential).toBeCloseTo(medianRef(these.map((c) => c.memb - c.dna)), 12);
      expect(row.memb).toBeCloseTo(medianRef(these.map((c) => c.memb)), 12);
      expect(row.dna).toBeCloseTo(medianRef(these.map((c) => c.dna)), 12);
    }
    // The median of differences is not the difference of medians: A interphase is 0 (0.4, −0.1, 0), not 0.4 − 0.3.
    expect(s.find((r) => r.structure === 'A' && r.phase === 'interphase')!.differential).toBeCloseTo(0, 12);
    expect(s.map((r) => r.differential)).toEqual([...s.map((r) => r.differential)].sort((a, b) => a - b));
    // Without a mitosis column: only 'all'.
    const plain = summarizeCoupling(cells.map((c) => ({ ...c, mitotic: undefined })));
    expect(plain.map((r) => r.phase)).toEqual(['all', 'all']);
  });

  test('mitosis from the manifest columns', () => {
    const row = (columns: Record<string, string>) => ({ columns }) as unknown as CellRow;
    expect(mitoticOf(row({ truth_mitotic: '1' }))).toBe(true);
    expect(mitoticOf(row({ truth_mitotic: '0' }))).toBe(false);
    expect(mitoticOf(row({ 'MitoticStateId/Name': 'M0' }))).toBe(false);
    expect(mitoticOf(row({ 'MitoticStateId/Name': 'M4/M5' }))).toBe(true);
    expect(mitoticOf(row({ other: '1' }))).toBeUndefined();
  });

  test('partners: seeded, uniform over the test cells, independent of other cells', () => {
    const a = partnersOf(7, 3, 20, 2000);
    expect(partnersOf(7, 3, 20, 2000)).toEqual(a);
    expect(partnersOf(8, 3, 20, 2000).membrane).not.toEqual(a.membrane);
    for (const ch of ['membrane', 'dna'] as const) {
      const counts = new Array(20).fill(0);
      for (const p of a[ch]) counts[p]++;
      // 100 expected per cell; a uniform draw stays within ±45 (4.5 σ).
      for (const c of counts) expect(Math.abs(c - 100)).toBeLessThan(45);
    }
  });

  test('walk values span ±range', () => {
    expect(walkValues(5, 2)).toEqual([-2, -1, 0, 1, 2]);
    expect(walkValues(1, 2)).toEqual([0]);
    expect(() => walkValues(0, 1)).toThrow(/--steps/);
  });
});
