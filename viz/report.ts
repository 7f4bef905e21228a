// The report folder of a training job: loss curves, real vs. reconstructed cells, generated
// cells and structures as PNG, and an index.html that shows them with their captions.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellSource } from '../train/trainer.ts';
import { feedsOf } from '../train/trainer.ts';
import { readMetrics } from '../train/metrics.ts';
import type { OpenedRun } from '../cli/run.ts';
import { generate } from '../cli/generate.ts';
import { modelSize } from '../cli/common.ts';
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
  const p = linePlot(
    [
      { label: 'training loss (per step)', points: steps.map((r) => [r.iteration + 1, Number(r.loss)]), color: '#1f77b4' },
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
      `Training loss per step and −ELBO on the validation split per epoch. ` +
      (last ? `Last step: loss ${Number(last.loss).toFixed(2)}, recon ${Number(last.recon).toFixed(2)}, KL ${Number(last.kl).toFixed(2)}. ` : '') +
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
  if (o.target) figs.push(lossFigure(dir, o.target.run, o.target.dir, 'target'));
  const n = Math.min(o.n ?? 8, o.cells.length);
  const size = modelSize(o.reference.run.model);
  const vox = size.reduce((a, b) => a * b, 1);
  const zoom = size[0] < 100 ? 2 : 1;
  const real = await o.cells.batch(Array.from({ length: n }, (_, i) => i));
  const cell = (ref: Float32Array | null, s: Float32Array | null, i: number) => cellRgb(size, ref && ref.subarray(i * 2 * vox, (i + 1) * 2 * vox), s && s.subarray(i * vox, (i + 1) * vox));
  const save = (file: string, tiles: ReturnType<typeof cellRgb>[], cols: number) => writeFileSync(join(dir, file), pngOf(scaleUp(grid(tiles, cols), zoom)));

  // Reconstructions decode μ (the mean of q(z|x)) in eval mode.
  const reconOf = async (r: OpenedRun) => {
    const feeds = feedsOf(r.model, real);
    const [mu] = Object.values(await r.runtime.run('encode', feeds, n));
    return Object.values(await r.runtime.run('decode', { ...feeds, z: mu }, n))[0];
  };
  const rRef = await reconOf(o.reference.run);
  save('recon-reference.png', [...Array.from({ length: n }, (_, i) => cell(real.reference, null, i)), ...Array.from({ length: n }, (_, i) => cell(rRef, null, i))], n);
  figs.push({ file: 'recon-reference.png', title: 'Reference model: real vs. reconstructed', caption: 'Top: real test cells (red membrane, blue DNA); bottom: the reference model’s reconstructions (decoder of μ).' });
  if (o.target) {
    const rS = await reconOf(o.target.run);
    save('recon-target.png', [...Array.from({ length: n }, (_, i) => cell(real.reference, real.structure, i)), ...Array.from({ length: n }, (_, i) => cell(real.reference, rS, i))], n);
    figs.push({ file: 'recon-target.png', title: 'Target model: real vs. reconstructed structure', caption: `Top: real test cells with their structure in green (${real.rows.slice(0, n).map((r) => esc(r.structure)).join('; ')}); bottom: the target model’s reconstruction of the structure, given the real membrane and DNA.` });
  }

  const labels = o.labels;
  const gen = await generate({ reference: o.reference.run, target: o.target?.run, n, labels: o.target ? labels.slice(0, 1) : [], iteration: 17 });
  save('generated.png', gen.cells.map((c) => cellRgb(size, c.ref, c.structure)), n);
  figs.push({ file: 'generated.png', title: 'Generated cells', caption: `z_r ~ N(0, I) → reference decoder → membrane and DNA${o.target ? `; then z_t ~ N(0, I) and the label “${esc(labels[0])}” → target decoder → structure (green)` : ''}.` });
  if (o.target) {
    const k = Math.min(4, n);
    const s = await generate({ target: o.target.run, n: k, labels, real: real, iteration: 29 });
    // One row per real cell, one column per label.
    const tiles = Array.from({ length: k }, (_, i) => labels.map((_, j) => cellRgb(size, s.cells[j * k + i].ref, s.cells[j * k + i].structure))).flat();
    save('structures.png', tiles, labels.length);
    figs.push({ file: 'structures.png', title: 'Structures generated in real cells', caption: `Rows: ${k} real test cells; columns: ${labels.map(esc).join(', ')}. The target model draws each structure given the cell’s real membrane and DNA.` });
  }

  const timing = o.timings ? `<p>Timings: ${Object.entries(o.timings).map(([k, v]) => `${esc(k)} ${v.toFixed(1)} s`).join(', ')}.</p>` : '';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>statcell report</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}figure{margin:2em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}figcaption{color:#555}code{background:#f3f3f3;padding:0 .2em}</style></head>
<body><h1>statcell: training report</h1>
<p>Models: <code>${esc(o.reference.run.model.name)}</code> (checkpoint ${esc(o.reference.run.checkpoint)}, ${o.reference.run.sidecar.iteration} iterations)${o.target ? `, <code>${esc(o.target.run.model.name)}</code> (checkpoint ${esc(o.target.run.checkpoint)}, ${o.target.run.sidecar.iteration} iterations)` : ''}. Backend: ${esc(o.backend)}. Written ${new Date().toISOString()}.</p>${timing}
${figs.map((f) => `<figure><h2>${esc(f.title)}</h2><img src="${f.file}" alt="${esc(f.title)}"><figcaption>${f.caption}</figcaption></figure>`).join('\n')}
</body></html>
`;
  writeFileSync(join(dir, 'index.html'), html);
  return join(dir, 'index.html');
}
