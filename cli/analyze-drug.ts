// `statcell analyze drug`: the drug-shift test (statistical-cell.md §4 "Drug shift") on the
// drug-treated cells of a manifest (`statcell synth --drugs N` writes some). Both trained models
// embed the treated and the vehicle (DMSO) cells with no retraining; per model × drug ×
// structure, the distance between the centroids of μ in the dims whose per-cell KLD spreads most
// in the vehicle cells, a permutation test, and Bonferroni over every test. DMSO itself is
// tested against the untreated cells (no drug_label) of the same structure held out of training
// (the validation and test splits): the vehicle should change nothing.

import type { Command } from 'commander';
import type { Embedded } from '../analysis/drug.ts';
import type { CellRow } from '../data/manifest.ts';
import type { Backend } from '../runtime/backend.ts';
import type { OpenedRun } from '../session/run.ts';
import { backendOption, checkpointOption, int, log, positiveInt, seed } from './options.ts';

/** The command's code, loaded when it runs, so that `statcell --help` loads nothing but commander (see cli/options.ts). */
async function load() {
  const [fs, path, drug, stats, dataset, decode, manifest, feeds, run, plot, common, files] = await Promise.all([import('node:fs'), import('node:path'), import('../analysis/drug.ts'), import('../analysis/stats.ts'), import('../data/dataset.ts'), import('../data/decode.ts'), import('../data/manifest.ts'), import('../session/feeds.ts'), import('../session/run.ts'), import('../viz/drug-plot.ts'), import('./common.ts'), import('../data/files.ts')]);
  return { ...fs, ...path, writeAtomic: files.writeAtomic, makeDirs: files.makeDirs, ...drug, checkShuffles: stats.checkShuffles, ...dataset, imageDims: decode.imageDims, ...manifest, ...feeds, ...run, ...plot, backendFor: common.backendFor };
}
type Loaded = Awaited<ReturnType<typeof load>>;

export const VEHICLE = 'DMSO';

export interface DrugCommand {
  reference: string;
  target: string;
  data: string;
  permutations: number;
  dims: number;
  seed: number;
  out: string;
  batch?: number;
  /** best (default), latest or a checkpoint name, of each run. */
  checkpoint?: string;
}

export interface DrugTestRow {
  model: 'reference' | 'target';
  drug: string;
  structure: string;
  /** What the treated cells are compared with: the vehicle, or untreated cells for the vehicle itself. */
  against: string;
  nTreated: number;
  nUntreated: number;
  dims: number[];
  distance: number;
  p: number;
  pCorrected: number;
}

/** μ and log σ² of the given rows under one trained model (eval mode), in batches. */
async function embed(m: Loaded, r: OpenedRun, rows: CellRow[], manifestFile: string, batchSize: number): Promise<Embedded> {
  const enc = r.model.roles.encode;
  if (!enc) throw new Error(`${r.dir}: the model ${r.model.name} has no encoder entry (an entry \`as encode\` returning mu and logvar), which the drug test needs`);
  const size = m.imageSize(r.model);
  const takesLabels = r.model.inputs.some((i) => i.role?.kind === 'label');
  // The target model: each cell's label is its own structure, in the run's vocabulary.
  const ds = new m.CellDataset(rows, { dims: m.imageDims(size), size, manifestFile, labels: takesLabels ? r.info.labels : undefined, fit: r.info.fit });
  const out: Embedded = { mu: [], logvar: [] };
  const batch = Math.max(1, Math.min(batchSize, ds.length));
  for (let start = 0; start < ds.length; start += batch) {
    const idx = Array.from({ length: batch }, (_, k) => Math.min(start + k, ds.length - 1));
    const res = await r.runtime.run(enc.entry, m.feedsFor(r.model, await ds.batch(idx)), batch);
    const mu = res[enc.mean];
    const lv = res[enc.logvar];
    const L = mu.length / batch;
    for (let c = 0; c < Math.min(batch, ds.length - start); c++) {
      out.mu.push(mu.slice(c * L, (c + 1) * L));
      out.logvar.push(lv.slice(c * L, (c + 1) * L));
    }
  }
  return out;
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const fmtP = (p: number) => (p < 1e-3 ? p.toExponential(2) : p.toFixed(4));

export async function drugCommand(o: DrugCommand, backend: Backend, say: (l: string) => void): Promise<DrugTestRow[]> {
  const m = await load();
  m.checkShuffles(o.permutations);
  // The runs' roles before any cell is read: the rows are labelled by them.
  m.requireUnconditioned(m.runModel(o.reference, o.checkpoint).model, "be the drug test's reference model", `--reference takes a model of the cell alone; give ${o.reference} as --target`);
  m.inputWithRole(m.runModel(o.target, o.checkpoint).model, 'reference', "the drug test's target model (conditioned on the cell)");
  const file = m.resolve(o.data);
  const rows = m.readManifest(file);
  const treatedRows = rows.filter((r) => r.columns.drug_label);
  if (!treatedRows.length) throw new Error(`${file}: no drug-treated cells (rows with a drug_label; \`statcell synth --drugs N\` writes some)`);
  const structures = [...new Set(treatedRows.map((r) => r.structure))].sort();
  const drugs = [...new Set(treatedRows.map((r) => r.columns.drug_label))].sort((a, b) => (a === VEHICLE ? 1 : b === VEHICLE ? -1 : a.localeCompare(b)));
  if (!drugs.includes(VEHICLE)) throw new Error(`${file}: no vehicle cells (drug_label ${VEHICLE}), against which the drugs are tested`);
  const started = performance.now();
  const groups: { drug: string; structure: string; treated: CellRow[]; untreated: CellRow[]; against: string }[] = [];
  for (const structure of structures) {
    const vehicle = treatedRows.filter((r) => r.structure === structure && r.columns.drug_label === VEHICLE);
    for (const drug of drugs) {
      const treated = treatedRows.filter((r) => r.structure === structure && r.columns.drug_label === drug);
      if (!treated.length) continue;
      const untreated = drug === VEHICLE ? rows.filter((r) => r.structure === structure && !r.columns.drug_label && r.split !== 'train') : vehicle;
      const against = drug === VEHICLE ? 'untreated (held out)' : VEHICLE;
      if (untreated.length < 2)
        throw new Error(`${file}: ${drug} · ${structure}: ${untreated.length} ${against} cells of ${structure}; the test needs at least 2${drug === VEHICLE ? ` (untreated ${structure} cells of the validate and test splits, about 20% of them: add cells, e.g. statcell synth --cells 300)` : ''}`);
      groups.push({ drug, structure, treated, untreated, against });
    }
  }
  const tests: Omit<DrugTestRow, 'pCorrected'>[] = [];
  for (const [model, dir] of [['reference', o.reference], ['target', o.target]] as const) {
    const r = await m.openRun(dir, backend, o.checkpoint, log);
    try {
      // Each cell embedded once, whichever groups it belongs to.
      const need = [...new Set(groups.flatMap((g) => [...g.treated, ...g.untreated]))];
      const t0 = performance.now();
      const e = await embed(m, r, need, file, o.batch ?? r.info.batch);
      say(`${model}: embedded ${need.length} cells in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const at = new Map(need.map((row, i) => [row, i]));
      const pick = (list: CellRow[]): Embedded => ({ mu: list.map((x) => e.mu[at.get(x)!]), logvar: list.map((x) => e.logvar[at.get(x)!]) });
      for (const g of groups) {
        const s = m.drugShift(pick(g.treated), pick(g.untreated), { dims: Math.min(o.dims, e.mu[0].length), permutations: o.permutations, seed: o.seed });
        tests.push({ model, drug: g.drug, structure: g.structure, against: g.against, ...s });
      }
    } finally {
      r.runtime.destroy();
    }
  }
  const result = m.correctAll(tests);
  m.makeDirs(o.out);
  const header = ['model', 'drug', 'structure', 'against', 'n_treated', 'n_untreated', 'dims', 'distance', 'p', 'p_bonferroni'];
  const line = (t: DrugTestRow) => [t.model, t.drug, t.structure, t.against, t.nTreated, t.nUntreated, t.dims.join(' '), t.distance, t.p, t.pCorrected].map((v) => csvField(String(v))).join(',');
  m.writeAtomic(m.join(o.out, 'drug-shift.csv'), [header.join(','), ...result.map(line)].join('\n') + '\n');
  // A latent space smaller than --dims is used whole: said per model.
  const fewer = [...new Map(result.filter((t) => t.dims.length < o.dims).map((t) => [t.model, t.dims.length])).entries()];
  const md = [
    `Drug shift: centroid distance of μ in the top ${o.dims} dims${fewer.map(([model, n]) => ` (the ${model} model has ${n}: all of them)`).join('')} (ranked by per-cell KLD spread in the untreated cells), ${o.permutations} label shuffles (seed ${o.seed}), Bonferroni over ${result.length} tests.`,
    '',
    '| model | drug | structure | against | treated | untreated | distance | p | corrected p |',
    '|---|---|---|---|---:|---:|---:|---:|---:|',
    ...result.map((t) => `| ${t.model} | ${t.drug} | ${t.structure} | ${t.against} | ${t.nTreated} | ${t.nUntreated} | ${t.distance.toFixed(4)} | ${fmtP(t.p)} | ${fmtP(t.pCorrected)}${t.pCorrected < 0.05 ? ' *' : ''} |`),
  ].join('\n');
  m.writeAtomic(m.join(o.out, 'drug-shift.md'), md + '\n');
  const fig = m.drugPlot(result, o.permutations);
  m.writeAtomic(m.join(o.out, 'drug-shift.svg'), fig.svg);
  m.writeAtomic(m.join(o.out, 'drug-shift.png'), fig.png);
  say(`drug test: ${result.length} tests in ${((performance.now() - started) / 1000).toFixed(1)} s → ${o.out}/drug-shift.{csv,md,svg,png}`);
  return result;
}

export function registerDrugAnalysis(analyze: Command): void {
  analyze
    .command('drug')
    .description('drug shift: treated vs vehicle cells in both models’ latent spaces, permutation test, Bonferroni')
    .requiredOption('--reference <run>', 'the trained reference model run')
    .requiredOption('--target <run>', 'the trained target model run')
    .requiredOption('--data <manifest>', 'a manifest with drug-treated cells (drug_label, concentration columns)')
    .option('--permutations <n>', 'label shuffles per test', positiveInt, 10000)
    .option('--dims <k>', 'top latent dims (by per-cell KLD spread in untreated cells) the distance uses', positiveInt, 8)
    .option('--seed <n>', 'permutation seed', seed, 1)
    .option('--batch <n>', 'cells per encoder batch (default: the run’s)', positiveInt)
    .option('--out <dir>', 'where the table and the plot go', 'drug-shift')
    .addOption(checkpointOption())
    .addOption(backendOption())
    .action(async (o: DrugCommand & { backend: string }) => {
      const backend = await (await load()).backendFor(o.backend, log);
      const rows = await drugCommand(o, backend, log);
      for (const t of rows) process.stdout.write(`${t.model}\t${t.drug}\t${t.structure}\tdistance ${t.distance.toFixed(4)}\tp ${fmtP(t.p)}\tcorrected ${fmtP(t.pCorrected)}\n`);
    });
}
