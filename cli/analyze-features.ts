// statcell analyze features --sweep S | --run R: the β sweep's feature regression
// (statistical-cell.md §4; analysis/features.ts, analysis/feature-regression.ts). The 14 features
// of the real cells (every cell of --data) and of cells each model generates; PCA of the
// standardised real-cell features to 90% explained variance; per model a linear regression of each
// PC from its latent dims with mean |μ| > 0.6, R² in sample and 5-fold cross-validated; CSV and
// figures. Loaded with the command line: heavy imports happen when it runs.

import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Backend } from '../runtime/backend.ts';
import { backendOption, checkpointOption, int, log, positiveInt } from './options.ts';
import { writeAtomic, makeDirs } from '../data/files.ts';
import { readManifest } from '../data/manifest.ts';

const csvCell = (s: string | number) => (typeof s === 'number' ? String(s) : /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const writeCsv = (file: string, header: string[], rows: (string | number)[][]) => writeAtomic(file, [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n');

export interface FeaturesCommand {
  sweep?: string;
  run?: string;
  data?: string;
  out?: string;
  /** Cells generated per model (0: none). */
  generated: number;
  checkpoint: string;
  batch?: number;
}

export interface ModelResult {
  /** The sweep index, or 0 for --run. */
  index: number;
  /** The swept values (the sweep's overrides), or the run's overrides. */
  set: Record<string, unknown>;
  beta: number | null;
  dims: number[];
  r2Fit: number[];
  r2Cv: number[];
  weightedFit: number;
  weightedCv: number;
  generated: number;
  generatedEmpty: number;
}

export interface FeaturesResult {
  out: string;
  kept: number;
  explained: number[];
  cells: number;
  models: ModelResult[];
}

/** The runs analysed: every DONE index of a sweep (in index order), or one run. */
async function runsOf(o: FeaturesCommand): Promise<{ index: number; dir: string; set: Record<string, unknown>; data: string }[]> {
  if (!!o.sweep === !!o.run) throw new Error('statcell analyze features: give --sweep <dir> or --run <dir> (one of them)');
  if (o.run) {
    const { readRunInfo } = await import('../session/run.ts');
    const info = readRunInfo(o.run);
    return [{ index: 0, dir: o.run, set: info.overrides, data: info.data }];
  }
  const { readPlan, overridesOf } = await import('../sweep/plan.ts');
  const { indexState, runDir } = await import('../sweep/index.ts');
  const plan = readPlan(o.sweep!);
  const done = plan.indices.filter((x) => indexState(o.sweep!, x.index).state === 'done');
  for (const x of plan.indices) if (!done.includes(x)) log(`index ${x.index}: not done, left out`);
  if (!done.length) throw new Error(`${o.sweep}: no index is DONE yet (statcell sweep status ${o.sweep})`);
  return done.map((x) => ({ index: x.index, dir: runDir(o.sweep!, x.index), set: overridesOf(plan, x.index), data: plan.data }));
}

export async function featuresCommand(o: FeaturesCommand, backend: Backend): Promise<FeaturesResult> {
  const { openRun, runModel } = await import('../session/run.ts');
  const { openSplit } = await import('./common.ts');
  const { imageSize } = await import('../session/feeds.ts');
  const { generate } = await import('../session/generate.ts');
  const { FEATURE_NAMES, MASK_THRESHOLD, ENTROPY_BINS } = await import('../analysis/features.ts');
  const { CV_FOLDS, EXPLAINED_TARGET, MU_THRESHOLD, featuresOfCells, featuresOfGenerated, fitFeaturePca, muOfCells, pcScores, regressPcs } = await import('../analysis/feature-regression.ts');
  const { r2Figure, pcPlaneFigure } = await import('../viz/feature-plots.ts');

  const runs = await runsOf(o);
  // The features are of the whole cell, regressed on a model of the cell alone (the paper's β sweep).
  const { requireUnconditioned } = await import('../session/feeds.ts');
  for (const run of runs) requireUnconditioned(runModel(run.dir, o.checkpoint).model, "have its latent space regressed on the cell's shape features", 'give a reference run (a model of the cell alone), or a sweep of one');
  const out = o.out ?? (o.sweep ? join(o.sweep, 'features') : join(o.run!, 'analysis', 'features'));
  makeDirs(out);
  const data = resolve(o.data ?? runs[0].data);

  // The real cells' features, and the PCA every model's regression shares (it depends on the data only).
  const first = await openRun(runs[0].dir, backend, o.checkpoint);
  const size = imageSize(first.model);
  if (size.length !== 2) throw new Error(`${runs[0].dir}: ${first.model.name} takes ${size.join('×')} (3D) cells; the 14 features are of 2D cells (the paper's β sweep is of the 2D reference model)`);
  // One row per cell: the controls share their cell's CellId and images, and would count it again.
  const seen = new Set<string>();
  const cellRows = readManifest(data).filter((r) => !seen.has(r.cellId) && seen.add(r.cellId));
  const cells = openSplit(data, first.model, 'all', { log, fit: first.info.fit, rows: cellRows });
  first.runtime.destroy();
  const real = await featuresOfCells(cells, size);
  const pca = fitFeaturePca(real.map((c) => c.features));
  const scores = pcScores(pca, real.map((c) => c.features));
  const K = pca.kept;
  const pcNames = Array.from({ length: K }, (_, k) => `PC${k + 1}`);
  log(`features: ${real.length} real cells; ${K} PCs explain ${(100 * pca.explained.slice(0, K).reduce((a, b) => a + b, 0)).toFixed(1)}% of the standardised features' variance`);
  writeCsv(join(out, 'features-real.csv'), ['CellId', 'label', ...FEATURE_NAMES, ...pcNames], real.map((c, i) => [c.cellId, c.label, ...c.features, ...scores[i]]));
  let cum = 0;
  writeCsv(join(out, 'pca.csv'), ['pc', 'explained', 'cumulative', 'kept', ...FEATURE_NAMES.map((f) => `loading_${f}`)], pca.explained.map((e, k) => [`PC${k + 1}`, e, (cum += e), k < K ? 1 : 0, ...(k < K ? pca.loadings[k] : FEATURE_NAMES.map(() => ''))]));

  const models: ModelResult[] = [];
  const generatedRows: (string | number)[][] = [];
  const plane: { model: string; kind: 'real' | 'generated'; pc1: number; pc2: number }[] = [];
  for (const run of runs) {
    const r = await openRun(run.dir, backend, o.checkpoint, log);
    try {
      // β as the model was compiled (its default unless overridden); a model without one is tagged by its run.
      const beta = typeof r.model.config.beta === 'number' ? r.model.config.beta : null;
      const tag = beta !== null ? `β = ${beta}` : o.run ? basename(resolve(o.run)) : `index ${run.index}`;
      const batch = o.batch ?? r.info.batch;
      const reg = regressPcs(pca.explained, await muOfCells(r.runtime, cells, batch), scores);
      let gen = { features: [] as number[][], empty: 0 };
      if (o.generated > 0) {
        try {
          const g = await generate({ reference: r, n: o.generated, labels: [], iteration: 0 });
          gen = featuresOfGenerated(g.cells.map((c) => c.channels), size);
        } catch (e) {
          log(`index ${run.index}: no generated cells (${(e as Error).message.split('\n')[0]})`);
        }
      }
      const gs = pcScores(pca, gen.features);
      gen.features.forEach((f, i) => generatedRows.push([run.index, beta ?? '', i, ...f, ...gs[i]]));
      const m: ModelResult = { index: run.index, set: run.set, beta, dims: reg.dims, r2Fit: reg.r2Fit, r2Cv: reg.r2Cv, weightedFit: reg.weightedFit, weightedCv: reg.weightedCv, generated: gen.features.length, generatedEmpty: gen.empty };
      models.push(m);
      for (const s of scores) plane.push({ model: tag, kind: 'real', pc1: s[0], pc2: s[1] ?? 0 });
      for (const s of gs) plane.push({ model: tag, kind: 'generated', pc1: s[0], pc2: s[1] ?? 0 });
      log(`${tag}: ${reg.dims.length} latent dims with mean |μ| > ${MU_THRESHOLD}; R² (${CV_FOLDS}-fold cross-validated) ${reg.r2Cv.map((v, k) => `PC${k + 1} ${v.toFixed(3)}`).join(', ')}, weighted ${reg.weightedCv.toFixed(3)}; in sample ${reg.r2Fit.map((v) => v.toFixed(3)).join(', ')}, weighted ${reg.weightedFit.toFixed(3)}`);
    } finally {
      r.runtime.destroy();
    }
  }

  writeCsv(join(out, 'features-generated.csv'), ['index', 'beta', 'cell', ...FEATURE_NAMES, ...pcNames], generatedRows);
  writeCsv(join(out, 'r2.csv'), ['index', 'beta', 'pc', 'explained', 'r2', 'r2_cv'], models.flatMap((m) => pcNames.map((p, k) => [m.index, m.beta ?? '', p, pca.explained[k], m.r2Fit[k], m.r2Cv[k]])));
  writeCsv(
    join(out, 'summary.csv'),
    ['index', 'beta', 'latent_dims', 'dims', 'weighted_r2', 'weighted_r2_cv', 'r2_pc1', 'r2_pc1_cv', 'generated', 'generated_empty'],
    models.map((m) => [m.index, m.beta ?? '', m.dims.length, m.dims.join(' '), m.weightedFit, m.weightedCv, m.r2Fit[0], m.r2Cv[0], m.generated, m.generatedEmpty]),
  );
  const result: FeaturesResult = { out, kept: K, explained: pca.explained, cells: real.length, models };
  writeAtomic(
    join(out, 'summary.json'),
    JSON.stringify({ data, checkpoint: o.checkpoint, maskThreshold: MASK_THRESHOLD, entropyBins: ENTROPY_BINS, explainedTarget: EXPLAINED_TARGET, muThreshold: MU_THRESHOLD, folds: CV_FOLDS, ...result, out: undefined }, null, 1) + '\n',
  );

  const sub = `${K} PCs (${(100 * pca.explained.slice(0, K).reduce((a, b) => a + b, 0)).toFixed(0)}% of the variance of 14 standardised features of ${real.length} real cells); R² ${CV_FOLDS}-fold cross-validated`;
  const byBeta = models.every((m) => m.beta !== null);
  const xOf = (m: ModelResult) => (byBeta ? m.beta! : m.index);
  const rows = models.flatMap((m) => [...pcNames.map((p, k) => ({ x: xOf(m), pc: p, r2: m.r2Cv[k] })), { x: xOf(m), pc: 'weighted', r2: m.weightedCv }]);
  const fig = r2Figure(rows, 'Latent space → feature PCs: R² of a linear regression', sub, byBeta ? 'β' : 'index');
  writeAtomic(join(out, 'r2.svg'), fig.svg);
  writeAtomic(join(out, 'r2.png'), fig.png);
  if (plane.length) {
    const p = pcPlaneFigure(plane, 'Real and generated cells in the feature PCs', `real cells (grey) and ${o.generated} generated cells per model (z ~ N(0, I)) on PC1 × PC2 of the real cells' features`);
    writeAtomic(join(out, 'pcs.svg'), p.svg);
    writeAtomic(join(out, 'pcs.png'), p.png);
  }
  return result;
}

export function registerFeatureAnalysis(analyze: Command): void {
  analyze
    .command('features')
    .description("the β sweep's feature regression: 14 shape and intensity features of real and generated cells, PCA to 90%, R² of each PC from the latent dims with mean |μ| > 0.6")
    .option('--sweep <dir>', 'a sweep directory (statcell sweep plan): every DONE index')
    .option('--run <dir>', 'or one run directory')
    .option('--data <manifest>', "manifest (default: the sweep's or run's); every cell of it")
    .option('--out <dir>', 'output folder (default: <sweep>/features or <run>/analysis/features)')
    .option('--generated <n>', 'cells generated per model', int, 64)
    .addOption(checkpointOption('latest', 'of each run (the end of its training)'))
    .option('--batch <n>', 'encoding batch size', positiveInt)
    .addOption(backendOption())
    .action(async (o) => {
      const { backendFor } = await import('./common.ts');
      const s = await featuresCommand(o, await backendFor(o.backend, log));
      process.stdout.write(['index,beta,latent_dims,weighted_r2_cv,r2_pc1_cv,weighted_r2,r2_pc1', ...s.models.map((m) => [m.index, m.beta ?? '', m.dims.length, m.weightedCv, m.r2Cv[0], m.weightedFit, m.r2Fit[0]].join(','))].join('\n') + '\n');
      log(`written to ${s.out}`);
    });
}
