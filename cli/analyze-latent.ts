// statcell analyze kld | walk | coupling: the latent-space analyses of trained runs
// (statistical-cell.md §4). This module is loaded with the command line, so it imports only
// commander and the option parsers; each command loads its code when it runs.

import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import type { Split } from '../data/split.ts';
import type { Backend } from '../runtime/backend.ts';
import type { OpenedRun } from '../session/run.ts';
import type { CellCoupling } from '../analysis/coupling.ts';
import { backendOption, checkpointOption, int, log, positiveInt, seed } from './options.ts';
import { writeAtomic, makeDirs } from '../data/files.ts';

const csv = (s: string | number) => (typeof s === 'number' ? String(s) : /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const writeCsv = (file: string, header: string[], rows: (string | number)[][]) => writeAtomic(file, [header, ...rows].map((r) => r.map(csv).join(',')).join('\n') + '\n');
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${v}: expected a positive number`);
  return n;
};

async function opened(backendChoice: string) {
  const { backendFor } = await import('./common.ts');
  return backendFor(backendChoice, log);
}

/** A run and one split of a manifest (default: the run's), all cells in memory as batches of one. */
async function runAndCells(dir: string, backend: Backend, data: string | undefined, split: Split | 'all', checkpoint = 'best') {
  const { openRun } = await import('../session/run.ts');
  const { openSplit } = await import('./common.ts');
  const r = await openRun(dir, backend, checkpoint, log);
  const ds = openSplit(data ?? r.info.data, r.model, split, { log, labels: r.info.labels, fit: r.info.fit });
  if (!ds.length) throw new Error(`${data ?? r.info.data}: no cells in the ${split} split`);
  return { r, ds };
}

// ---- kld

export interface KldCommand {
  run: string;
  split: Split | 'all';
  /** best (default), latest or a checkpoint name. */
  checkpoint?: string;
  data?: string;
  out?: string;
  batch?: number;
}

/** Writes kld-per-cell.csv, kld-sorted.csv, kld-summary.json, kld.svg/png; returns the summary. */
export async function kldCommand(o: KldCommand, backend: Backend) {
  const { r, ds } = await runAndCells(o.run, backend, o.data, o.split, o.checkpoint);
  try {
    return await kldOf(r, ds, o);
  } finally {
    r.runtime.destroy();
  }
}

/** kldCommand on a run already opened (walk's, which goes on to decode with it). */
async function kldOf(r: OpenedRun, ds: Awaited<ReturnType<typeof runAndCells>>['ds'], o: KldCommand) {
  const { encodeCells, kldPerDim, summarizeKld } = await import('../analysis/kld.ts');
  const { kldPlot } = await import('../viz/analysis-plots.ts');
  const enc = await encodeCells(r.runtime, ds, o.batch ?? Math.min(r.info.batch, ds.length));
  const perCell = enc.mu.map((mu, i) => kldPerDim(mu, enc.logvar[i]));
  const s = summarizeKld(perCell);
  const out = o.out ?? join(o.run, 'analysis', 'kld');
  makeDirs(out);
  const L = s.mean.length;
  writeCsv(join(out, 'kld-per-cell.csv'), ['CellId', 'label', ...Array.from({ length: L }, (_, d) => `kld_${d}`)], enc.rows.map((row, i) => [row.cellId, row.structure, ...Array.from(perCell[i])]));
  writeCsv(join(out, 'kld-sorted.csv'), ['rank', 'dim', 'mean', 'std'], s.order.map((d, k) => [k + 1, d, s.mean[d], s.std[d]]));
  const summary = { run: o.run, model: r.model.name, split: o.split, cells: s.cells, latent: L, effective: s.effective, active: s.active, order: s.order };
  writeAtomic(join(out, 'kld-summary.json'), JSON.stringify(summary, null, 1) + '\n');
  const fig = kldPlot(s, `Per-dimension KL of ${r.model.name} (${o.split} split)`);
  writeAtomic(join(out, 'kld.svg'), fig.svg);
  writeAtomic(join(out, 'kld.png'), fig.png);
  return { ...summary, out, summaryOf: s };
}

// ---- walk

export interface WalkCommand {
  /** The reference run walked alone; not read with `target`. */
  run?: string;
  /** best (default), latest or a checkpoint name. */
  checkpoint?: string;
  target?: string;
  /** Labels separated by ";" or "," (data/labels.ts parseLabelList). */
  labels?: string;
  data?: string;
  split: Split | 'all';
  dims: number;
  steps: number;
  range: number;
  /** Which test cell the target model's walk is conditioned on (index in the split). */
  cell: number;
  out?: string;
}

/** The target run's labels to walk: those asked for, else its structures; read from run.json, so that a walk with none fails before the KLD pass. */
async function targetLabels(run: string, asked: string | undefined): Promise<string[]> {
  const [{ readRunInfo }, { parseLabelList }] = await Promise.all([import('../session/run.ts'), import('../data/labels.ts')]);
  const labels = readRunInfo(run).labels;
  const list = asked === undefined ? [] : parseLabelList(asked, labels);
  const walked = list.length ? list : labels.filter((l) => !l.startsWith('Control'));
  if (!walked.length) throw new Error(`${run}: the target run's labels are all controls (${labels.join(', ')}); name the ones to walk with --labels`);
  for (const label of walked) if (!labels.includes(label)) throw new Error(`--labels: '${label}' is not one of the target run's labels (${labels.join(', ')})`);
  return walked;
}

/** Walks the reference run (or, with --target, the target run in a real cell, per label); writes PNG grids (rows: dims, columns: values) and an OME-TIFF and an OME-Zarr per dimension. */
export async function walkCommand(o: WalkCommand, backend: Backend): Promise<string[]> {
  const { latentWalk, topDims, walkValues } = await import('../analysis/walk.ts');
  const { cellRgb, contrastStretch, grid, pngOf, scaleUp } = await import('../viz/images.ts');
  const { fileChannels, omeTiffOf } = await import('../data/ome-tiff.ts');
  const { feedsFrom, cellChannels } = await import('../session/feeds.ts');
  const values = walkValues(o.steps, o.range);
  topDims([], o.dims); // a bad --dims fails before the KLD pass
  if (!o.run && !o.target) throw new Error('analyze walk: give --run <reference run>, or --target <target run> to walk it per label');
  if (o.run && o.target) log(`analyze walk: --target ${o.target} is walked (in real cells of --data, per label); --run ${o.run} is not read`);
  const walked = (o.target ?? o.run)!;
  const walkedLabels = o.target ? await targetLabels(o.target, o.labels) : [];
  // The runs' roles before the KLD pass: a reference run is walked alone, a target run per label.
  const { runModel } = await import('../session/run.ts');
  const { requireUnconditioned, inputWithRole } = await import('../session/feeds.ts');
  if (o.target) inputWithRole(runModel(o.target, o.checkpoint).model, 'label', 'a walk per label (--target)');
  else requireUnconditioned(runModel(walked, o.checkpoint).model, 'be walked on its own', `walk it with --target ${walked} (in a real cell of --data, per label)`);
  const { r, ds } = await runAndCells(walked, backend, o.data, o.split, o.checkpoint);
  const files: string[] = [];
  try {
    const k = await kldOf(r, ds, { run: walked, split: o.split, data: o.data, out: o.out ? join(o.out, 'kld') : undefined });
    const dims = topDims(k.order, o.dims);
    if (o.dims > dims.length) log(`walk: --dims ${o.dims}, but the latent space has ${dims.length} dims: all ${dims.length} are walked`);
    const out = o.out ?? join(walked, 'analysis', 'walk');
    makeDirs(out);
    const { imageSize } = await import('../session/feeds.ts');
    const size = imageSize(r.model);
    const { pixelSizeForRun } = await import('./generate.ts');
    const { writeOmeZarr } = await import('../data/images.ts');
    const { imageDims } = await import('../data/decode.ts');
    const pixelSize = await pixelSizeForRun(o.data ?? r.info.data, imageDims(size));
    const runs: { tag: string; conditions?: Record<string, Float32Array>; real?: Record<string, Float32Array | undefined> }[] = [];
    if (o.target) {
      if (o.cell >= ds.length) throw new Error(`--cell ${o.cell}: the ${o.split} split has ${ds.length} cells`);
      const b = await ds.batch([o.cell]);
      const real = cellChannels(b, 0, 1);
      for (const label of walkedLabels)
        runs.push({ tag: label, conditions: feedsFrom(r.model, [real], [label], r.info.labels, ['reference', 'label']), real: { membrane: real.membrane, dna: real.dna } });
    } else runs.push({ tag: 'reference' });
    const { uniqueStems } = await import('../data/labels.ts');
    const stems = uniqueStems(runs.map((x) => x.tag));
    for (const [i, run] of runs.entries()) {
      const tiles = await latentWalk(r.runtime, { latent: k.latent, dims, values, conditions: run.conditions, batch: r.info.batch });
      const cells = tiles.map((t) => ({ ...run.real, ...t.channels }));
      const gain = contrastStretch(cells);
      const stem = join(out, `walk-${stems[i]}`);
      writeAtomic(`${stem}.png`, pngOf(scaleUp(grid(cells.map((c) => cellRgb(size, c, gain)), values.length), 3)));
      files.push(`${stem}.png`);
      for (const d of dims) {
        const these = tiles.filter((t) => t.dim === d);
        const chans = these.flatMap((t) => fileChannels({ ...run.real, ...t.channels }, o.target ? run.tag : null, (name) => `${name} z${d}=${t.value.toFixed(2)}`));
        writeAtomic(`${stem}-dim${d}.ome.tiff`, omeTiffOf(size, chans, pixelSize));
        await writeOmeZarr(`${stem}-dim${d}.ome.zarr`, { size, channels: chans, pixelSize, name: `walk ${run.tag} z${d}` });
        files.push(`${stem}-dim${d}.ome.tiff`, `${stem}-dim${d}.ome.zarr`);
      }
    }
    writeAtomic(join(out, 'walk.json'), JSON.stringify({ run: walked, dims, values, labels: runs.map((x) => x.tag), cell: o.target ? o.cell : undefined, layout: 'rows: latent dims by mean KLD (descending); columns: values' }, null, 1) + '\n');
    return files;
  } finally {
    r.runtime.destroy();
  }
}

// ---- coupling

export interface CouplingCommand {
  reference?: string;
  target: string;
  data?: string;
  split: Split | 'all';
  permutations: number;
  samples: number;
  seed: number;
  batch?: number;
  out?: string;
  /** Evaluate at most this many cells now (the rest on a later call: resume). */
  limit?: number;
  /** best (default), latest or a checkpoint name, of each run. */
  checkpoint?: string;
}

const CELL_HEADER = ['CellId', 'structure', 'mitotic', 'elbo', 'coupling_memb', 'coupling_dna', 'differential'];

/** Reads the per-cell results written so far (the resume file). */
function readCells(file: string): CellCoupling[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as CellCoupling];
      } catch {
        return []; // a line cut by an interruption: that cell is redone
      }
    });
}

/**
 * Coupling of every cell of the split under the target run; per-cell results are appended to
 * cells.jsonl as they come, so an interrupted run resumes where it stopped. Writes coupling-cells.csv,
 * coupling-summary.csv, coupling.svg/png once every cell is done.
 */
export async function couplingCommand(o: CouplingCommand, backend: Backend) {
  const { cellKey, checkCouplingCounts, couplingOfCells, PERMUTED, summarizeCoupling } = await import('../analysis/coupling.ts');
  checkCouplingCounts(o.permutations, o.samples);
  if (o.limit !== undefined && !(Number.isInteger(o.limit) && o.limit >= 1)) throw new Error(`coupling: --limit ${o.limit}: expected a positive whole number (cells to evaluate now)`);
  const { couplingPlot } = await import('../viz/analysis-plots.ts');
  const { runModel } = await import('../session/run.ts');
  const { conditionsOf, referenceReading, requireUnconditioned } = await import('../session/feeds.ts');
  // The reference run is recorded with the results: it must be one, of the cell alone.
  if (o.reference) requireUnconditioned(runModel(o.reference, o.checkpoint).model, "be coupling's reference model", `a reference model is of the cell alone; give ${o.reference} as --target`);
  // Before any cell is read: a model that does not read both channels would only show z-sampling noise.
  const target = runModel(o.target, o.checkpoint).model;
  if (!conditionsOf(target).length)
    throw new Error(`coupling: ${o.target} holds model ${target.name}, of the cell alone (a reference model); --target takes the target run (a structure given the cell), --reference this one`);
  referenceReading(target, PERMUTED, 'structure coupling');
  const { r, ds } = await runAndCells(o.target, backend, o.data, o.split, o.checkpoint);
  // A lone cell's only partner is itself: its "permuted" channels are its own.
  if (ds.length < 2) {
    r.runtime.destroy();
    throw new Error(`coupling: the ${o.split} split of ${o.data ?? r.info.data} has ${ds.length} cell(s); the partners are other cells of it, so it needs at least 2`);
  }
  const out = o.out ?? join(o.target, 'analysis', 'coupling');
  makeDirs(out);
  const partial = join(out, 'cells.jsonl');
  const config = { target: o.target, reference: o.reference, data: o.data ?? r.info.data, split: o.split, permutations: o.permutations, samples: o.samples, seed: o.seed, checkpoint: r.checkpoint };
  const cfgFile = join(out, 'config.json');
  if (existsSync(cfgFile) && existsSync(partial)) {
    const before = readFileSync(cfgFile, 'utf8');
    if (before !== JSON.stringify(config, null, 1) + '\n') {
      // Say what differs: complete results of another --permutations are not "partial".
      let was: Record<string, unknown> = {};
      try {
        was = JSON.parse(before);
      } catch {
        // not JSON: every field differs
      }
      const differ = Object.entries(config).filter(([k, v]) => JSON.stringify(was[k]) !== JSON.stringify(v)).map(([k, v]) => `${k} ${JSON.stringify(was[k] ?? null)} there, ${JSON.stringify(v)} now`);
      throw new Error(`${out}: holds coupling results of another configuration (${cfgFile}: ${differ.length ? differ.join('; ') : 'its contents differ'}); give another --out or remove it`);
    }
  }
  writeAtomic(cfgFile, JSON.stringify(config, null, 1) + '\n');
  try {
    const cells = [];
    for (let i = 0; i < ds.length; i++) cells.push(await ds.batch([i]));
    const done = readCells(partial);
    const doneKeys = new Set(done.map(cellKey));
    const todo = cells.filter((c) => !doneKeys.has(cellKey(c.rows[0]))).length;
    if (done.length) log(`coupling: ${done.length} of ${cells.length} cells already done (${partial}); ${todo} left`);
    const t0 = performance.now();
    let n = 0;
    let stopAt = o.limit ?? Infinity;
    await couplingOfCells(r.runtime, cells, {
      permutations: o.permutations,
      samples: o.samples,
      batch: o.batch ?? r.info.batch,
      seed: o.seed,
      done: doneKeys,
      onCell: (c) => {
        appendFileSync(partial, JSON.stringify(c) + '\n');
        done.push(c);
        n++;
        const s = (performance.now() - t0) / 1000;
        if (n === 1 || n % 10 === 0 || n === todo) log(`coupling: ${done.length}/${cells.length} cells, ${(n / s).toFixed(2)} cells/s (${(1 + 2 * o.permutations) * o.samples} ELBO evaluations each)`);
        if (n >= stopAt) {
          stopAt = -1;
          throw new StopEarly();
        }
      },
    }).catch((e) => {
      if (!(e instanceof StopEarly)) throw e;
    });
    const seconds = (performance.now() - t0) / 1000;
    const complete = done.length === cells.length;
    const summary = summarizeCoupling(done);
    writeCsv(join(out, 'coupling-cells.csv'), CELL_HEADER, done.map((c) => [c.cellId, c.structure, c.mitotic === undefined ? '' : c.mitotic ? 1 : 0, c.elbo, c.memb, c.dna, c.memb - c.dna]));
    writeCsv(join(out, 'coupling-summary.csv'), ['structure', 'phase', 'cells', 'median_coupling_memb', 'median_coupling_dna', 'median_differential', 'control'], summary.map((s) => [s.structure, s.phase, s.cells, s.memb, s.dna, s.differential, s.structure.startsWith('Control') ? 1 : 0]));
    if (summary.length) {
      const fig = couplingPlot(summary, `Structure coupling under ${r.model.name}${complete ? '' : ` (partial: ${done.length}/${cells.length} cells)`}`);
      writeAtomic(join(out, 'coupling.svg'), fig.svg);
      writeAtomic(join(out, 'coupling.png'), fig.png);
    }
    return { out, cells: done.length, of: cells.length, complete, evaluated: n, seconds, cellsPerSecond: n / seconds, summary, perCell: done };
  } finally {
    r.runtime.destroy();
  }
}

class StopEarly extends Error {}

// ---- registration

export function registerLatentAnalyses(analyze: Command): void {
  const split = () => new Option('--split <split>', 'which cells').choices(['train', 'validate', 'test', 'all']).default('test');
  analyze
    .command('kld')
    .description('per-dimension KL of the encoder (per cell, the mean sorted descending, effective dims): CSV, JSON and a plot')
    .requiredOption('--run <dir>', 'run directory of statcell train')
    .addOption(split())
    .option('--data <manifest>', "manifest (default: the run's)")
    .option('--out <dir>', 'output folder (default: <run>/analysis/kld)')
    .option('--batch <n>', 'batch size', positiveInt)
    .addOption(checkpointOption())
    .addOption(backendOption())
    .action(async (o) => {
      const s = await kldCommand(o, await opened(o.backend));
      log(`${s.effective} effective dims (per-cell KLD std > 0.05), ${s.active} with mean KLD ≥ 0.01, of ${s.latent}; written to ${s.out}`);
      process.stdout.write(JSON.stringify({ cells: s.cells, latent: s.latent, effective: s.effective, active: s.active, order: s.order }) + '\n');
    });
  analyze
    .command('walk')
    .description('decode along the top latent dims (by mean KLD) with the others at 0: PNG grids, OME-TIFF and OME-Zarr')
    .option('--run <dir>', 'the reference run to walk')
    .option('--target <dir>', 'or a target run, walked in a real cell of --data, per label')
    .option('--labels <names>', 'the target run\'s labels to walk, separated by ";" or "," as generate and report take them (a label of the run that holds them is taken whole; default: its structures)')
    .option('--data <manifest>', "manifest (default: the walked run's)")
    .addOption(split())
    .option('--cell <i>', 'which cell of the split conditions the target walk', int, 0)
    .option('--dims <k>', 'how many top dims', positiveInt, 4)
    .option('--steps <n>', 'values per dim', positiveInt, 7)
    .option('--range <s>', 'values from −s to s', num('range'), 3)
    .option('--out <dir>', 'output folder (default: <run>/analysis/walk)')
    .addOption(checkpointOption())
    .addOption(backendOption())
    .action(async (o) => {
      const files = await walkCommand(o, await opened(o.backend));
      log(`${files.length} files written: ${files[0]} …`);
    });
  analyze
    .command('coupling')
    .description("structure coupling to the membrane and DNA: the target model's ELBO with each reference channel replaced by a random test cell's (resumes)")
    .option('--reference <dir>', 'the reference run (recorded with the results)')
    .requiredOption('--target <dir>', 'the target run')
    .option('--data <manifest>', "manifest (default: the target run's)")
    .addOption(split())
    .option('--permutations <n>', 'random partners per channel', positiveInt, 100)
    .option('--samples <n>', 'z samples per ELBO', positiveInt, 10)
    .option('--seed <n>', 'seed of the partners', seed, 1)
    .option('--batch <n>', 'evaluation batch size', positiveInt)
    .option('--limit <n>', 'evaluate at most n cells now (resume later)', positiveInt)
    .option('--out <dir>', 'output folder (default: <target>/analysis/coupling)')
    .addOption(checkpointOption())
    .addOption(backendOption())
    .action(async (o) => {
      const s = await couplingCommand(o, await opened(o.backend));
      log(`${s.cells}/${s.of} cells${s.complete ? '' : ' (run again to resume)'}, ${s.cellsPerSecond.toFixed(2)} cells/s; written to ${s.out}`);
      for (const x of s.summary.filter((x) => x.phase === 'all')) process.stdout.write(`${x.structure}\t${x.cells}\tmemb ${x.memb.toFixed(4)}\tdna ${x.dna.toFixed(4)}\tdifferential ${x.differential.toFixed(4)}\n`);
    });
}
