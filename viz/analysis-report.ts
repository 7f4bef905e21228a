// The report's sections of the paper's analyses (statistical-cell.md §4): per-dimension KL, a
// latent walk, structure coupling with its controls, and the drug test. The analyses run in the
// `statcell analyze` commands' code (cli/analyze-latent.ts, cli/analyze-drug.ts), which write
// their plots into the report folder; these functions turn their results into figures with
// captions and tables.

import { CONTROL_EXPECTATIONS, COUPLED, UNCOUPLED, controlBehaves, type StructureCoupling } from '../analysis/coupling.ts';
import { ACTIVE_MEAN, EFFECTIVE_STD } from '../analysis/kld.ts';
import type { ReportFigure } from './report.ts';
import { escapeXml as esc } from '../data/markup.ts';

const f3 = (x: number) => x.toFixed(3);
const fmtP = (p: number) => (p < 1e-3 ? p.toExponential(2) : p.toFixed(4));

export function kldFigure(file: string, model: string, s: { effective: number; active: number; latent: number; cells: number }): ReportFigure {
  return {
    file,
    title: `Per-dimension KL of ${model}: ${s.effective} effective dimensions of ${s.latent}`,
    caption: `Mean over ${s.cells} test cells of each latent dimension's KL divergence from the prior, sorted descending, with ±1 standard deviation across cells. Effective dimensions: per-cell KLD standard deviation > ${EFFECTIVE_STD} (${s.effective}); dimensions with mean KLD ≥ ${ACTIVE_MEAN}: ${s.active}.`,
  };
}

export function walkFigure(file: string, model: string, dims: number[], values: number[]): ReportFigure {
  return {
    file,
    title: `Latent walk of ${model}`,
    caption: `Decoded cells along the ${dims.length} latent dimensions with the largest mean KLD (rows, top first: dims ${dims.join(', ')}), at z = ${values.map((v) => v.toFixed(1)).join(', ')} (columns), all other dimensions at 0. Composite: membrane magenta, DNA blue; each channel scaled so that its 99.5th percentile over the walk is full brightness. OME-TIFFs of each row are beside the PNG.`,
  };
}

export interface CouplingSection {
  file: string;
  model: string;
  summary: StructureCoupling[];
  cells: number;
  permutations: number;
  samples: number;
  cellsPerSecond: number;
  seconds: number;
}

export function couplingFigure(c: CouplingSection): ReportFigure {
  const all = c.summary.filter((s) => s.phase === 'all');
  const controls = all.filter((s) => controlBehaves(s) !== undefined);
  const pass = controls.filter((s) => controlBehaves(s)).length;
  const want = (s: StructureCoupling) => {
    const w = CONTROL_EXPECTATIONS[s.structure];
    return w ? `memb ${w.memb}, DNA ${w.dna}` : '';
  };
  const row = (s: StructureCoupling) => {
    const ok = controlBehaves(s);
    return `<tr${ok === false ? ' class="fail"' : ''}><td>${esc(s.structure)}</td><td>${s.cells}</td><td>${f3(s.memb)}</td><td>${f3(s.dna)}</td><td>${f3(s.differential)}</td><td>${want(s)}${ok === undefined ? '' : ok ? ' ✓' : ' ✗'}</td></tr>`;
  };
  return {
    file: c.file,
    title: controls.length ? `Structure coupling under ${c.model}: ${pass} of ${controls.length} controls as in the paper` : `Structure coupling under ${c.model}: no control cells in the test split`,
    html: `<img src="${esc(c.file)}" alt="coupling plot"><table><tr><th>structure</th><th>test cells</th><th>coupling_memb</th><th>coupling_dna</th><th>memb − dna</th><th>control: expected</th></tr>${all.map(row).join('')}</table>`,
    caption:
      `Per test cell, the target model's ELBO with the real reference, and with its membrane (resp. DNA) channel replaced by that channel of a random test cell; coupling = 1 − ELBO / mean(permuted ELBOs); medians per structure, sorted by differential coupling (memb − dna; < 0: bound to the nucleus, > 0: to the membrane). ` +
      `Reduced for the demo's time budget: ${c.permutations} random partners per channel and ${c.samples} z draws per ELBO (the paper: 100 and 10), over ${c.cells} test cells, ${c.seconds.toFixed(0)} s (${c.cellsPerSecond.toFixed(2)} cells/s). ` +
      `A control passes when each channel it should couple to has median coupling > ${COUPLED} and each other has |median| < ${UNCOUPLED} (red: fails).`,
  };
}

export interface DrugRow {
  model: string;
  drug: string;
  structure: string;
  against: string;
  nTreated: number;
  nUntreated: number;
  distance: number;
  p: number;
  pCorrected: number;
}

export function drugFigure(file: string, rows: DrugRow[], o: { permutations: number; dims: number; expected: (r: DrugRow) => boolean }): ReportFigure {
  const hits = rows.filter((r) => r.pCorrected < 0.05);
  const right = rows.filter((r) => o.expected(r) === r.pCorrected < 0.05).length;
  const row = (r: DrugRow) =>
    `<tr${o.expected(r) !== r.pCorrected < 0.05 ? ' class="fail"' : ''}><td>${esc(r.model)}</td><td>${esc(r.drug)}</td><td>${esc(r.structure)}</td><td>${esc(r.against)}</td><td>${r.nTreated}</td><td>${r.nUntreated}</td><td>${r.distance.toFixed(3)}</td><td>${fmtP(r.p)}</td><td>${fmtP(r.pCorrected)}${r.pCorrected < 0.05 ? ' *' : ''}</td></tr>`;
  return {
    file,
    title: `Drug test: ${hits.length} significant shifts of ${rows.length} tests; ${right} of ${rows.length} as the synthetic truth says`,
    html: `<img src="${esc(file)}" alt="drug plot"><table><tr><th>model</th><th>drug</th><th>structure</th><th>against</th><th>treated</th><th>untreated</th><th>distance</th><th>p</th><th>corrected p</th></tr>${rows.map(row).join('')}</table>`,
    caption: `Drug-treated cells (never trained on) embedded by both models (μ); per model × drug × structure, the distance between the centroids of treated and vehicle (DMSO) cells in the top ${o.dims} latent dims, ranked by the spread of per-cell KLD in the untreated cells; ${o.permutations} label shuffles, Bonferroni over all ${rows.length} tests (* corrected p < 0.05). DMSO is tested against untreated held-out cells. By construction Brefeldin A disperses the Golgi and paclitaxel bundles the microtubules; nothing else changes, so the target model should find exactly those two shifts (red: a test that disagrees).`,
  };
}
