// The latent analyses (statistical-cell.md §4): each formula against an independent float64
// implementation on small cases, then the properties the paper shows on trained models
// (test/node/trained-models.ts): the controls' coupling, the nucleus/membrane ordering of the
// synthetic rules, and fewer effective dimensions at a larger β.

import { describe, expect, test } from 'vitest';
import { kldPerDim, summarizeKld } from '../../analysis/kld.ts';
import { checkCouplingCounts, COUPLED, couplingOf, mitoticOf, partnersOf, summarizeCoupling, type CellCoupling } from '../../analysis/coupling.ts';
import { median } from 'simple-statistics';
import { latentWalk, topDims, walkValues } from '../../analysis/walk.ts';
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

  test('partner and sample counts are bounded (10⁹ partners per channel ran the process out of memory)', () => {
    expect(() => checkCouplingCounts(1e9, 1)).toThrow('coupling: --permutations 1000000000 and --samples 1 must be whole numbers from 1 to 10000 and from 1 to 1000');
    expect(() => checkCouplingCounts(100, 0)).toThrow(/--samples 0/);
    expect(() => checkCouplingCounts(100, 10)).not.toThrow();
  });

  test('coupling needs two cells of the split (a lone cell is its own partner) and a --limit of at least 1 (0 evaluated one cell)', async () => {
    const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { synthesize } = await import('../../data/synth.ts');
    const { trainCommand } = await import('../../cli/train.ts');
    const { couplingCommand } = await import('../../cli/analyze-latent.ts');
    const { WasmBackend } = await import('../../runtime/wasm.ts');
    const { TINY_FILE, TINY_TARGET } = await import('./tiny-model.ts');
    const dir = mkdtempSync(join(tmpdir(), 'statcell-coupling-'));
    synthesize({ out: dir, cells: 24, dims: 2, size: [24, 16], seed: 3 });
    const manifest = join(dir, 'manifest.csv');
    const backend = await WasmBackend.create();
    const target = join(dir, 'target');
    const r = await trainCommand({ model: TINY_FILE, set: { ...TINY_TARGET, size: [24, 16] }, data: manifest, out: target, backend: 'wasm', batch: 4, iterations: 1, seed: 1, evalSamples: 1, openedBackend: backend });
    r.runtime.destroy();
    await expect(couplingCommand({ target, split: 'test', permutations: 2, samples: 1, seed: 1, limit: 0 }, backend)).rejects.toThrow('coupling: --limit 0: expected a positive whole number');
    const [header, ...lines] = readFileSync(manifest, 'utf8').trim().split('\n');
    const one = join(dir, 'one.csv');
    writeFileSync(one, `${header}\n${lines[0]}\n`);
    await expect(couplingCommand({ target, data: one, split: 'all', permutations: 2, samples: 1, seed: 1, out: join(dir, 'c') }, backend)).rejects.toThrow(`coupling: the all split of ${one} has 1 cell(s); the partners are other cells of it, so it needs at least 2`);
  }, 60_000);

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
    // 100000 steps were decoded in one batch, past Wasm's 4 GiB ("use a smaller batch", of a command without one).
    expect(walkValues(101, 1)).toHaveLength(101);
    expect(() => walkValues(100000, 1)).toThrow('walk: --steps 100000: expected a whole number from 1 to 101');
  });

  test('walk dims: the top k by KLD, all of them when k is larger; --dims 0 is an error (it was a TypeError of the PNG grid)', () => {
    expect(topDims([3, 1, 2, 0], 2)).toEqual([3, 1]);
    expect(topDims([3, 1, 2, 0], 10)).toEqual([3, 1, 2, 0]);
    expect(() => topDims([3, 1], 0)).toThrow('walk: --dims 0: expected a positive integer');
  });

  test('a walk decoded a few values at a time equals the linear decoder in float64 (W z + b, z = value in one dim)', async () => {
    const { tinyModel } = await import('./tiny-model.ts');
    const { WasmBackend } = await import('../../runtime/wasm.ts');
    const { ModelRuntime } = await import('../../session/model.ts');
    const rt = new ModelRuntime(await WasmBackend.create(), tinyModel());
    rt.init(3);
    const p = await rt.readAll();
    const [W, b] = [p.get('dec.fc.weight')!, p.get('dec.fc.bias')!]; // [96, 4] (out × in), [96]
    const values = walkValues(5, 2);
    const tiles = await latentWalk(rt, { latent: 4, dims: [2, 0], values, batch: 2 });
    expect(tiles.map((t) => [t.dim, t.value])).toEqual([2, 0].flatMap((d) => values.map((v) => [d, v])));
    for (const t of tiles) {
      // Channels membrane, dna, each [8, 6]: output o = c·48 + pixel.
      ['membrane', 'dna'].forEach((c, k) => {
        const got = t.channels[c]!;
        for (let i = 0; i < 48; i++) expect(got[i]).toBeCloseTo(b[k * 48 + i] + W[(k * 48 + i) * 4 + t.dim] * t.value, 5);
      });
    }
    rt.destroy();
  });
});

// ---- on trained models (small, cached: test/node/trained-models.ts)

describe('on trained models', async () => {
  const { trainedPair, trainedReference, NUCLEAR, MEMBRANE } = await import('./trained-models.ts');
  const { couplingCommand, kldCommand } = await import('../../cli/analyze-latent.ts');
  const { WasmBackend } = await import('../../runtime/wasm.ts');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const out = mkdtempSync(join(tmpdir(), 'statcell-latent-'));
  let coupling: Awaited<ReturnType<typeof couplingCommand>> | undefined;
  const summary = async () => {
    if (!coupling) {
      const pair = await trainedPair();
      // 10 partners × 2 z draws per ELBO: the paper's 100 × 10 costs 50× more; the medians over
      // ~30 control cells are stable at this size.
      coupling = await couplingCommand({ reference: pair.reference, target: pair.target, split: 'test', permutations: 10, samples: 2, seed: 1, out: join(out, 'coupling') }, await WasmBackend.create());
      console.log(`coupling: ${coupling.cells} test cells, ${coupling.cellsPerSecond.toFixed(2)} cells/s on Wasm (21 ELBOs × 2 draws each)`);
      for (const s of coupling.summary.filter((x) => x.phase === 'all')) console.log(`  ${s.structure.padEnd(32)} n=${s.cells}  memb ${s.memb.toFixed(3)}  dna ${s.dna.toFixed(3)}  memb−dna ${s.differential.toFixed(3)}`);
    }
    const at = (structure: string) => coupling!.summary.find((s) => s.structure === structure && s.phase === 'all')!;
    return { at, all: coupling };
  };

  // The controls as in the paper: each couples to its own channel (median > COUPLED) more than to
  // the other, by MARGIN (on the median over cells of memb − dna). Permuting the other channel is
  // not free for this small model: a membrane and a DNA of two different cells make a pair it never
  // saw, and its output degrades (measured over five trainings of these data: Control - DNA's
  // membrane coupling 0.15–0.24, Control - Memb's DNA coupling 0.16–0.24), so "not to the other" is
  // a margin rather than the paper's |coupling| < UNCOUPLED. MARGIN = COUPLED: the difference alone
  // is as large as what the analysis calls coupled. Measured here: Control - DNA −0.20, Control -
  // Memb 0.76. The target model trained at the paper's lr 2e-4 (same steps) fails: Control - DNA
  // +0.03 (DNA coupling 0.02), as it did on the earlier data whose nucleus followed the cell.
  const MARGIN = COUPLED;
  /** Per cell, what permuting each channel costs in nats: mean(permuted ELBO) − ELBO, from coupling = 1 − ELBO / mean. */
  const drops = (structure: string, ch: 'memb' | 'dna') => median(coupling!.perCell.filter((c) => c.structure === structure).map((c) => c.elbo - c.elbo / (1 - c[ch])));

  test('Control - DNA couples to DNA more than to the membrane', async () => {
    const { at } = await summary();
    const dna = at('Control - DNA');
    expect(dna.dna).toBeGreaterThan(COUPLED);
    expect(-dna.differential).toBeGreaterThan(MARGIN); // median over cells of (dna − memb)
  }, 300_000);

  test('Control - Memb couples to the membrane more than to DNA', async () => {
    const { at } = await summary();
    const memb = at('Control - Memb');
    expect(memb.memb).toBeGreaterThan(COUPLED);
    expect(memb.differential).toBeGreaterThan(MARGIN);
  }, 300_000);

  // Control - Blank's ELBO is under 1 nat (measured: −0.45 to −2.3 over the trainings; the other
  // controls' −4 to −8), so coupling, a ratio to it, turns a tenth of a nat into 0.1: its couplings
  // were 0.01–0.26, noisy with the training. "Neither" is therefore read in nats: permuting either
  // channel costs the blank under a tenth of what permuting the DNA costs Control - DNA (measured:
  // 0.01–0.11 nats against 2.7–5.0), and its coupling to each channel is below the coupling of the
  // control that does couple to it.
  test('Control - Blank couples to neither channel', async () => {
    const { at } = await summary();
    const blank = at('Control - Blank');
    const dnaCost = drops('Control - DNA', 'dna');
    console.log(`nats lost by permuting: Control - Blank memb ${drops('Control - Blank', 'memb').toFixed(3)}, dna ${drops('Control - Blank', 'dna').toFixed(3)}; Control - DNA dna ${dnaCost.toFixed(3)}; Control - Memb memb ${drops('Control - Memb', 'memb').toFixed(3)}`);
    expect(dnaCost).toBeGreaterThan(0);
    for (const ch of ['memb', 'dna'] as const) expect(Math.abs(drops('Control - Blank', ch))).toBeLessThan(0.1 * dnaCost);
    expect(Math.abs(blank.memb)).toBeLessThan(at('Control - Memb').memb);
    expect(Math.abs(blank.dna)).toBeLessThan(at('Control - DNA').dna);
  }, 300_000);

  test('structures bound to the nucleus have lower differential coupling than those bound to the membrane', async () => {
    const { at } = await summary();
    const nuclear = NUCLEAR.map((s) => at(s).differential);
    const membrane = MEMBRANE.map((s) => at(s).differential);
    expect(Math.max(...nuclear)).toBeLessThan(Math.min(...membrane));
  }, 300_000);

  test('coupling resumes: a second call with the same output evaluates nothing and gives the same results', async () => {
    const { all } = await summary();
    const pair = await trainedPair();
    const again = await couplingCommand({ reference: pair.reference, target: pair.target, split: 'test', permutations: 10, samples: 2, seed: 1, out: join(out, 'coupling') }, await WasmBackend.create());
    expect(again.evaluated).toBe(0);
    expect(again.summary).toEqual(all.summary);
    // Another configuration into the same folder is refused, saying what differs (it called complete results "partial").
    await expect(couplingCommand({ reference: pair.reference, target: pair.target, split: 'test', permutations: 20, samples: 2, seed: 1, out: join(out, 'coupling') }, await WasmBackend.create()))
      .rejects.toThrow(/holds coupling results of another configuration \(.*config\.json: permutations 10 there, 20 now\); give another --out or remove it/);
  }, 300_000);

  test('a larger β gives fewer effective dimensions', async () => {
    const pair = await trainedPair();
    const backend = await WasmBackend.create();
    const low = await kldCommand({ run: pair.reference, split: 'test', out: join(out, 'kld-0.5') }, backend);
    const high = await kldCommand({ run: await trainedReference(0.95), split: 'test', out: join(out, 'kld-0.95') }, backend);
    console.log(`effective dims (per-cell KLD std > 0.05) of ${low.latent}: β 0.5 → ${low.effective}, β 0.95 → ${high.effective}; mean ≥ 0.01: ${low.active} → ${high.active}`);
    expect(high.effective).toBeLessThan(low.effective);
  }, 300_000);
});
