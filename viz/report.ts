// The report folder of a training job: loss curves, real vs. reconstructed cells, generated
// cells and structures as PNG, and an index.html that shows them with their captions.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellSource } from '../session/evaluate.ts';
import { cellChannels, channelsOf, feedsFrom, imageChannels, imageSize, inputWithRole, type CellChannels } from '../session/feeds.ts';
import { generate } from '../session/generate.ts';
import type { OpenedRun } from '../session/run.ts';
import { readMetrics } from '../train/metrics.ts';
import { cellRgb, grid, pngOf, scaleUp } from './images.ts';
import { linePlot } from './plot.ts';

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

interface Figure {
  file: string;
  title: string;
  caption: string;
}

/** Training loss per step (blue) and −validation ELBO per epoch (red), log scale. */
function lossFigure(dir: string, run: OpenedRun, runDir: string, key: string): Figure {
  const recs = readMetrics(join(runDir, 'metrics.jsonl'));
  const steps = recs.filter((r) => r.kind === 'step');
  const vals = recs.filter((r) => r.kind === 'validate');
  const role = key === 'reference' ? 'Reference' : 'Target';
  // The model's reported metrics: its loss when it reports one by that name, else the first.
  const reported = Object.keys(steps[0] ?? {}).filter((k) => !['kind', 'iteration', 'epoch'].includes(k));
  const lossKey = reported.includes('loss') ? 'loss' : reported[0];
  const p = linePlot(
    [
      { label: `training ${lossKey} (per step)`, points: steps.map((r) => [r.iteration + 1, Number(r[lossKey])]), color: '#1f77b4' },
      { label: '−ELBO, validation (per epoch)', points: vals.map((r) => [r.iteration, -Number(r.elbo)]), color: '#d62728' },
    ],
    { title: `${role} model (${run.model.name})`, xLabel: 'iteration', yLabel: 'loss', logY: true },
  );
  const file = `loss-${key}.png`;
  writeFileSync(join(dir, file), p.png);
  const last = steps.at(-1);
  return {
    file,
    title: `${role} model (${run.model.name}): training loss`,
    caption:
      `Training ${esc(lossKey ?? 'loss')} per step and −ELBO (the model's evaluation) on the validation split per epoch. ` +
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
}

export async function writeReport(dir: string, o: ReportInput): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const figs: Figure[] = [lossFigure(dir, o.reference.run, o.reference.dir, 'reference')];
  /** What the report could not show, and why. */
  const notes: string[] = [];
  if (o.target) figs.push(lossFigure(dir, o.target.run, o.target.dir, 'target'));
  const n = Math.min(o.n ?? 8, o.cells.length);
  const size = imageSize(o.reference.run.model);
  const zoom = size[0] < 100 ? 2 : 1;
  const real = await o.cells.batch(Array.from({ length: n }, (_, i) => i));
  const realCells = Array.from({ length: n }, (_, i) => cellChannels(real, i, n));
  const save = (file: string, cells: CellChannels[], cols: number) => writeFileSync(join(dir, file), pngOf(scaleUp(grid(cells.map((c) => cellRgb(size, c)), cols), zoom)));

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
    save('recon-reference.png', [...rRef.view, ...rRef.recon], n);
    figs.push({ file: 'recon-reference.png', title: 'Reference model: real vs. reconstructed', caption: `Top: real test cells (${rRef.image.join(', ')}; red membrane, green structure, blue DNA); bottom: the reference model’s reconstructions (decoder of μ).` });
  } else notes.push(missing(o.reference.run));
  if (o.target) {
    const rS = await reconstruct(o.target.run);
    if (rS) {
      save('recon-target.png', [...rS.view, ...rS.recon], n);
      figs.push({ file: 'recon-target.png', title: 'Target model: real vs. reconstructed', caption: `Top: real test cells (${real.rows.slice(0, n).map((r) => esc(r.structure)).join('; ')}); bottom: the target model’s reconstruction of its image (${rS.image.join(', ')}), given the cell’s other channels.` });
    } else notes.push(missing(o.target.run));
  }

  const labels = o.labels;
  const gen = await generate({ reference: o.reference.run, target: o.target?.run, n, labels: o.target ? labels.slice(0, 1) : [], iteration: 17 });
  save('generated.png', gen.cells.map((c) => c.channels), n);
  figs.push({ file: 'generated.png', title: 'Generated cells', caption: `z_r ~ N(0, I) → reference decoder → membrane and DNA${o.target ? `; then z_t ~ N(0, I) and the label “${esc(labels[0])}” → target decoder → structure (green)` : ''}.` });
  if (o.target) {
    const k = Math.min(4, n);
    const s = await generate({ target: o.target.run, n: k, labels, real: real, iteration: 29 });
    // One row per real cell, one column per label.
    const tiles = Array.from({ length: k }, (_, i) => labels.map((_, j) => s.cells[j * k + i].channels)).flat();
    save('structures.png', tiles, labels.length);
    figs.push({ file: 'structures.png', title: 'Structures generated in real cells', caption: `Rows: ${k} real test cells; columns: ${labels.map(esc).join(', ')}. The target model draws each structure given the cell’s real membrane and DNA.` });
  }

  const timing = o.timings ? `<p>Timings: ${Object.entries(o.timings).map(([k, v]) => `${esc(k)} ${v.toFixed(1)} s`).join(', ')}.</p>` : '';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>statcell report</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}figure{margin:2em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}figcaption{color:#555}code{background:#f3f3f3;padding:0 .2em}</style></head>
<body><h1>statcell: training report</h1>
<p>Models: <code>${esc(o.reference.run.model.name)}</code> (checkpoint ${esc(o.reference.run.checkpoint)}, ${o.reference.run.sidecar.iteration} iterations)${o.target ? `, <code>${esc(o.target.run.model.name)}</code> (checkpoint ${esc(o.target.run.checkpoint)}, ${o.target.run.sidecar.iteration} iterations)` : ''}. Backend: ${esc(o.backend)}. Written ${new Date().toISOString()}.</p>${timing}${notes.map((t) => `<p>${t}</p>`).join('')}
${figs.map((f) => `<figure><h2>${esc(f.title)}</h2><img src="${f.file}" alt="${esc(f.title)}"><figcaption>${f.caption}</figcaption></figure>`).join('\n')}
</body></html>
`;
  writeFileSync(join(dir, 'index.html'), html);
  return join(dir, 'index.html');
}
