// The report folder of a training job: loss curves, real vs. reconstructed cells, generated
// cells and structures as PNG, and an index.html that shows them with their captions.

import { join } from 'node:path';
import type { Batch } from '../data/dataset.ts';
import type { CellSource } from '../session/evaluate.ts';
import { cellChannels, channelsOf, feedsFrom, imageChannels, imageSize, inputWithRole, type CellChannels } from '../session/feeds.ts';
import { checkSameSize, generate } from '../session/generate.ts';
import type { OpenedRun } from '../session/run.ts';
import { readMetrics } from '../train/metrics.ts';
import { labelFidelity, labelVersusCellDifference, type LabelFidelity } from '../analysis/fidelity.ts';
import { cellRgb, contrastStretch, greyOf, PALETTE_NAMES } from './images.ts';
import { tileFigure, type Tile } from './figure.ts';
import { linePlot } from './plot.ts';
import { escapeXml as esc } from '../data/markup.ts';
import { writeAtomic, makeDirs } from '../data/files.ts';


/** One figure of the report: an image (path relative to the report folder) or a table, with its caption. */
export interface ReportFigure {
  file: string;
  title: string;
  caption: string;
  /** Shown instead of the image (a table). */
  html?: string;
}

/** A label passes when its generated nucleus fraction is within this of the real one: the synthetic rules put nucleoli at > 0.9 and cytoplasmic structures at < 0.1, so 0.15 tells a learned location from a confused one with room for noise. */
export const FIDELITY_TOLERANCE = 0.15;

const SHORT: Record<string, string> = { membrane: 'memb', structure: 'struct', dna: 'DNA' };
const ORDER = ['membrane', 'structure', 'dna'];

/** Training loss per step (blue) and −validation ELBO per epoch (red), log scale. */
function lossFigure(put: (file: string, bytes: Uint8Array) => void, run: OpenedRun, runDir: string, key: string): ReportFigure {
  const recs = readMetrics(join(runDir, 'metrics.jsonl'));
  const steps = recs.filter((r) => r.kind === 'step');
  const vals = recs.filter((r) => r.kind === 'validate');
  const role = key === 'reference' ? 'Reference' : 'Target';
  // The model's reported metrics: its loss when it reports one by that name, else the first.
  const reported = Object.keys(steps[0] ?? {}).filter((k) => !['kind', 'iteration', 'epoch'].includes(k));
  const lossKey = reported.includes('loss') ? 'loss' : reported[0];
  // A model without `evaluate` is not validated: its curve is the training loss alone.
  const validated = run.model.evaluation !== undefined;
  const p = linePlot(
    [
      { label: `training ${lossKey} (per step)`, points: steps.map((r) => [r.iteration + 1, Number(r[lossKey])]), color: '#1f77b4' },
      ...(validated ? [{ label: '−ELBO, validation (per epoch)', points: vals.map((r): [number, number] => [r.iteration, -Number(r.elbo)]), color: '#d62728' }] : []),
    ],
    { title: `${role} model (${run.model.name})`, xLabel: 'iteration', yLabel: 'loss', logY: true },
  );
  const file = `loss-${key}.png`;
  put(file, p.png);
  const last = steps.at(-1);
  return {
    file,
    title: `${role} model (${run.model.name}): training loss`,
    caption:
      (validated
        ? `Training ${esc(lossKey ?? 'loss')} per step and −ELBO (the model's evaluation) on the validation split per epoch. `
        : `Training ${esc(lossKey ?? 'loss')} per step; no validation curve: ${esc(run.model.name)} has no <code>evaluate</code> in its training step. `) +
      (last ? `Last step: ${reported.map((k) => `${esc(k)} ${Number(last[k]).toFixed(2)}`).join(', ')}. ` : '') +
      (run.sidecar.best ? `Best checkpoint ${run.sidecar.best.name} (validation ELBO ${run.sidecar.best.elbo.toFixed(2)}).` : ''),
  };
}

export interface ReportInput {
  reference: { run: OpenedRun; dir: string };
  target?: { run: OpenedRun; dir: string };
  /** Real cells to reconstruct (the test split). */
  cells: CellSource;
  n?: number;
  labels: string[];
  backend: string;
  timings?: Record<string, number>;
  /** The machine's 1-, 5- and 15-minute load averages when the report was written (the timings depend on them). */
  loadAverage?: number[];
  /** Figures of the analyses (viz/analysis-report.ts), shown after the label fidelity. */
  analyses?: ReportFigure[];
}

export async function writeReport(dir: string, o: ReportInput): Promise<string> {
  if (o.target) checkSameSize(o.reference.run, o.target.run, 'report');
  // Every figure is made before any file is written: a report that fails half-way (runs given in
  // the wrong roles, say) leaves no figures without their index.html.
  const files: [string, Uint8Array][] = [];
  const put = (file: string, bytes: Uint8Array) => void files.push([file, bytes]);
  const figs: ReportFigure[] = [lossFigure(put, o.reference.run, o.reference.dir, 'reference')];
  /** What the report could not show, and why. */
  const notes: string[] = [];
  if (o.target) figs.push(lossFigure(put, o.target.run, o.target.dir, 'target'));
  // Distinct cells: a control is a copy of its cell under the same CellId, and would show it twice.
  const pool = await o.cells.batch(Array.from({ length: Math.min(4 * (o.n ?? 8), o.cells.length) }, (_, i) => i));
  const ids = new Set<string>();
  const shown = pool.rows.flatMap((r, i) => (ids.has(r.cellId) ? [] : (ids.add(r.cellId), [i]))).slice(0, o.n ?? 8);
  const n = shown.length;
  const size = imageSize(o.reference.run.model);
  const zoom = size[0] < 100 ? 2 : 1;
  const real = await o.cells.batch(shown);
  const realCells = Array.from({ length: n }, (_, i) => cellChannels(real, i, n));
  // One contrast stretch per report, from the real cells, so that real, reconstructed and generated tiles compare.
  const gain = contrastStretch(realCells);
  const display = `Display: each channel scaled so that its 99.5th percentile over the real test cells shown is full brightness (values above are clipped); composite ${PALETTE_NAMES}; grey panels show one channel alone.`;
  /** The composite and then each channel in grey. */
  const panels = (c: CellChannels, names: string[], prefix = ''): Tile[] => [{ image: cellRgb(size, c, gain), label: `${prefix}composite` }, ...names.filter((k) => c[k]).map((k) => ({ image: greyOf(size, c[k]!, gain[k] ?? 1), label: prefix + SHORT[k] }))];
  const save = (file: string, rows: Tile[][], labels: { columns?: string[]; rowLabels?: string[] } = {}) => {
    put(file, tileFigure({ rows, zoom, ...labels }).png);
  };

  // Each model's view of the real cells (the channels of its image and reference inputs), and
  // the same with the image replaced by its reconstruction: the decoder of μ, in eval mode.
  const reconstruct = async (r: OpenedRun) => {
    const m = r.model;
    const enc = m.roles.encode;
    const dec = m.roles.decode;
    if (!enc || !dec) return null; // nothing to reconstruct with: the figure says so
    const shown = new Set(m.inputs.flatMap(channelsOf));
    const view = realCells.map((c) => Object.fromEntries(Object.entries(c).filter(([k]) => shown.has(k))));
    const feeds = feedsFrom(m, realCells, real.rows.map((row) => row.structure), r.info.labels);
    const mu = (await r.runtime.run(enc.entry, feeds, n))[enc.mean];
    const xhat = (await r.runtime.run(dec.entry, { ...feeds, [dec.latent]: mu }, n))[dec.output];
    const image = channelsOf(inputWithRole(m, 'image', 'the report'));
    return { view, recon: view.map((v, i) => ({ ...v, ...imageChannels(xhat, image, i, n) })), image };
  };
  const missing = (r: OpenedRun) => `Model ${esc(r.model.name)} has no ${r.model.roles.encode ? 'decode' : 'encode'} entry, so no reconstructions are shown.`;
  const rRef = await reconstruct(o.reference.run);
  if (rRef) {
    const names = ORDER.filter((k) => rRef.view[0][k]);
    save('recon-reference.png', rRef.view.map((v, i) => [...panels(v, names, 'real '), ...panels(rRef.recon[i], names, 'recon ')]), { rowLabels: real.rows.slice(0, n).map((r) => r.cellId) });
    figs.push({ file: 'recon-reference.png', title: 'Reference model: real vs. reconstructed', caption: `One real test cell per row (CellId at the left): the real cell (${rRef.image.join(', ')}) and then the reference model’s reconstruction (decoder of μ, eval mode). ${display}` });
  } else notes.push(missing(o.reference.run));
  if (o.target) {
    const rS = await reconstruct(o.target.run);
    if (rS) {
      const names = ORDER.filter((k) => rS.view[0][k]);
      save('recon-target.png', rS.view.map((v, i) => [...panels(v, names, 'real '), ...panels(rS.recon[i], rS.image, 'recon ')]), { rowLabels: real.rows.slice(0, n).map((r) => r.structure) });
      figs.push({ file: 'recon-target.png', title: 'Target model: real vs. reconstructed', caption: `One real test cell per row (its structure at the left): the real cell, then the target model’s reconstruction of its image (${rS.image.join(', ')}) given the cell’s other channels. ${display}` });
    } else notes.push(missing(o.target.run));
  }

  const labels = o.labels;
  // A model without a generate entry leaves out the figures that generate with it, and says so.
  const generates = (r: OpenedRun) => {
    if (!r.model.roles.generate) notes.push(`Model ${esc(r.model.name)} has no generate entry, so the figures it would generate are not shown.`);
    return r.model.roles.generate !== undefined;
  };
  const refGenerates = generates(o.reference.run);
  const target = o.target && generates(o.target.run) ? o.target : undefined;
  if (refGenerates) {
    const gen = await generate({ reference: o.reference.run, target: target?.run, n, labels: target ? labels.slice(0, 1) : [], iteration: 17 });
    save('generated.png', gen.cells.map((c) => panels(c.channels, ORDER)), { rowLabels: gen.cells.map((_, i) => `draw ${i}`) });
    figs.push({ file: 'generated.png', title: 'Generated cells', caption: `One generated cell per row: z_r ~ N(0, I) → reference decoder → membrane and DNA${target ? `; then z_t ~ N(0, I) and the label “${esc(labels[0])}” → target decoder → structure` : ''}. ${display}` });
  }
  if (target) {
    const k = Math.min(4, n);
    const s = await generate({ target: target.run, n: k, labels, real: real, iteration: 29 });
    // One row per real cell: the real cell, then per label the composite and what the target model generated, alone.
    const targetImage = channelsOf(inputWithRole(target.run.model, 'image', 'the report'));
    const rows = Array.from({ length: k }, (_, i) => [
      { image: cellRgb(size, realCells[i], gain), label: `real: ${real.rows[i].structure}`.slice(0, 24) },
      ...labels.flatMap((l, j) => {
        const c = s.cells[j * k + i].channels;
        return [{ image: cellRgb(size, c, gain), label: l.slice(0, 24) }, ...targetImage.filter((name) => c[name]).map((name) => ({ image: greyOf(size, c[name]!, gain[name] ?? 1), label: SHORT[name] ?? name }))];
      }),
    ]);
    save('structures.png', rows, { rowLabels: real.rows.slice(0, k).map((r) => r.cellId) });
    figs.push({ file: 'structures.png', title: 'Structures generated in real cells (the integrated cell)', caption: `One real test cell per row: the real cell with its own imaged structure, then each structure (${labels.map(esc).join(', ')}) generated by the target model in that cell’s real membrane and DNA, as a composite and alone. ${display}` });
    figs.push(await fidelityFigure(target.run, o.cells, real, n));
  }
  figs.push(...(o.analyses ?? []));

  const timing = o.timings ? `<p>Timings: ${Object.entries(o.timings).map(([k, v]) => `${esc(k)} ${v.toFixed(1)} s`).join(', ')}${o.loadAverage ? ` (load average ${o.loadAverage.map((x) => x.toFixed(1)).join(', ')} over 1, 5, 15 min)` : ''}.</p>` : '';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>statcell report</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}figure{margin:2em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}table{border-collapse:collapse}td,th{padding:.15em .6em;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}.fail{color:#b00}figcaption{color:#555}code{background:#f3f3f3;padding:0 .2em}</style></head>
<body><h1>statcell: training report</h1>
<p>Models: <code>${esc(o.reference.run.model.name)}</code> (checkpoint ${esc(o.reference.run.checkpoint)}, ${o.reference.run.sidecar.iteration} iterations)${o.target ? `, <code>${esc(o.target.run.model.name)}</code> (checkpoint ${esc(o.target.run.checkpoint)}, ${o.target.run.sidecar.iteration} iterations)` : ''}. Backend: ${esc(o.backend)}. Written ${new Date().toISOString()}.</p>${timing}${notes.map((t) => `<p>${t}</p>`).join('')}
${figs.map((f) => `<figure><h2>${esc(f.title)}</h2>${f.html ?? `<img src="${f.file}" alt="${esc(f.title)}">`}<figcaption>${f.caption}</figcaption></figure>`).join('\n')}
</body></html>
`;
  makeDirs(dir);
  for (const [file, bytes] of files) writeAtomic(join(dir, file), bytes);
  writeAtomic(join(dir, 'index.html'), html);
  return join(dir, 'index.html');
}

/**
 * Label fidelity (analysis/fidelity.ts): per label of the target run found in the test cells, the
 * fraction of structure signal inside the nucleus in real cells of that label against the same
 * fraction of the structure generated for that label in the given real cells.
 */
async function fidelityFigure(target: OpenedRun, cells: CellSource, hosts: Batch, k: number): Promise<ReportFigure> {
  const n = Math.min(cells.length, 240);
  const b = await cells.batch(Array.from({ length: n }, (_, i) => i));
  const real = Array.from({ length: n }, (_, i) => ({ label: b.rows[i].structure, cell: cellChannels(b, i, n) }));
  const labels = target.info.labels.filter((l) => real.some((r) => r.label === l));
  // The measure needs a generated `structure` channel and the cell's DNA.
  if (!channelsOf(inputWithRole(target.model, 'image', 'label fidelity')).includes('structure') || !real[0]?.cell.dna)
    return { file: '', title: 'Label fidelity of the target model', html: '<p>Not measured: the target model generates no <code>structure</code> channel, or the cells have no DNA channel.</p>', caption: '' };
  const g = await generate({ target, n: k, labels, real: hosts, iteration: 31 });
  const hostIds = hosts.rows.slice(0, k).map((r) => r.cellId);
  const generated = g.cells.map((c) => ({ label: c.label!, cell: { dna: c.channels.dna!, structure: c.channels.structure! } }));
  const f = labelFidelity(labels, real.map((r) => ({ label: r.label, cell: { dna: r.cell.dna!, structure: r.cell.structure! } })), generated);
  const byLabel = labels.map((_, j) => Array.from({ length: k }, (_, i) => g.cells[j * k + i].channels.structure!));
  const d = labelVersusCellDifference(byLabel);
  // A label whose real cells have no structure signal (Control - Blank) has no fraction to match: not measured, not counted.
  const measured = f.filter((x) => !Number.isNaN(x.error));
  const pass = measured.filter((x) => x.error <= FIDELITY_TOLERANCE).length;
  const num = (v: number) => (Number.isNaN(v) ? 'n/a' : v.toFixed(3));
  const row = (x: LabelFidelity) =>
    Number.isNaN(x.error)
      ? `<tr><td>${esc(x.label)}</td><td>${num(x.real)} (${x.nReal})</td><td>${num(x.generated)}</td><td>not measured: no structure signal${Number.isNaN(x.real) ? ' in its real cells' : ' generated'}</td></tr>`
      : `<tr${x.error > FIDELITY_TOLERANCE ? ' class="fail"' : ''}><td>${esc(x.label)}</td><td>${num(x.real)} (${x.nReal})</td><td>${num(x.generated)}</td><td>${num(x.error)}</td></tr>`;
  const unmeasured = f.length - measured.length;
  return {
    file: '',
    title: `Label fidelity of the target model: ${pass} of ${measured.length} labels within ${FIDELITY_TOLERANCE}${unmeasured ? ` (${unmeasured} without structure signal, not measured)` : ''}`,
    html: `<table><tr><th>label</th><th>real: fraction in nucleus (cells)</th><th>generated (in ${k} real cells)</th><th>|difference|</th></tr>${f.map(row).join('')}</table>`,
    caption:
      `For each structure, the fraction of its signal inside the nucleus (DNA above 0.2 × its maximum): the mean over the real test cells of that label, and the mean over the structure generated for that label in each of ${k} real test cells (${hostIds.map(esc).join(', ')}). ` +
      `A model that has learned where each structure sits matches the real column (red: off by more than ${FIDELITY_TOLERANCE}). ` +
      (Number.isNaN(d.betweenLabels)
        ? `With one label there is no second label to compare in the same cell; mean absolute pixel difference between two cells generated with the same label: ${d.betweenCells.toFixed(4)}.`
        : `Mean absolute pixel difference between two labels generated in the same cell: ${d.betweenLabels.toFixed(4)}; between two cells generated with the same label: ${d.betweenCells.toFixed(4)} (a model that ignores its label has the first near 0).`),
  };
}
