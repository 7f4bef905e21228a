// Plots of the latent analyses (per-dimension KL, structure coupling): Observable Plot rendered
// in Node on a linkedom document to SVG, and the SVG to PNG through resvg (as viz/plot.ts).

import * as Plot from '@observablehq/plot';
import type { KldSummary } from '../analysis/kld.ts';
import { EFFECTIVE_STD, ACTIVE_MEAN } from '../analysis/kld.ts';
import type { StructureCoupling } from '../analysis/coupling.ts';
import { FONT, plotDocument, svgToPng } from './svg.ts';
import { escapeXml as esc } from '../data/markup.ts';

export interface Figure {
  svg: string;
  png: Uint8Array;
}



/**
 * Renders a Plot spec in Node: the SVG (standalone, with its namespace) and its PNG. The title
 * and subtitle are drawn as SVG text above the plot (Plot would put them in HTML around it,
 * which resvg cannot draw).
 */
export function render(spec: Plot.PlotOptions & { title: string; subtitle?: string; legend?: { label: string; color: string; symbol?: 'circle' | 'plus' }[] }): Figure {
  const { title, subtitle, legend = [], ...rest } = spec;
  const document = plotDocument();
  const el = Plot.plot({ ...rest, document, style: { fontFamily: FONT, fontSize: '12px', background: 'white' } }) as unknown as { outerHTML: string; tagName: string; querySelectorAll(s: string): { outerHTML: string }[] };
  // Plot's legends are HTML (lost in an SVG file), so the legend is drawn here; keep Plot's SVGs, stacked.
  const svgs = el.tagName.toLowerCase() === 'svg' ? [el.outerHTML] : el.querySelectorAll('svg').map((x) => x.outerHTML);
  const W = rest.width ?? 640;
  const heights = svgs.map((x) => Number(/height="(\d+(?:\.\d+)?)"/.exec(x)?.[1] ?? 0));
  const head = (subtitle ? 44 : 26) + (legend.length ? 20 : 0);
  let lx = 8;
  const keys = legend.map((k) => {
    const mark = k.symbol === 'plus' ? `<path d="M${lx},${head - 10}h8M${lx + 4},${head - 14}v8" stroke="${k.color}" stroke-width="1.5"/>` : `<circle cx="${lx + 4}" cy="${head - 10}" r="4" fill="none" stroke="${k.color}" stroke-width="1.5"/>`;
    const t = `${mark}<text x="${lx + 12}" y="${head - 6}" font-size="11">${esc(k.label)}</text>`;
    lx += 24 + 6.5 * k.label.length;
    return t;
  });
  let y = head;
  const body = svgs.map((x, i) => {
    const placed = x.replace(/^<svg /, `<svg x="0" y="${y}" `);
    y += heights[i] + 4;
    return placed;
  });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="${FONT}">` +
    `<rect width="100%" height="100%" fill="white"/><text x="8" y="18" font-size="15" font-weight="bold">${esc(title)}</text>` +
    (subtitle ? `<text x="8" y="36" font-size="11">${esc(subtitle)}</text>` : '') +
    keys.join('') +
    body.join('').replace(/currentColor/g, 'black') +
    '</svg>';
  return { svg, png: svgToPng(svg) };
}

/** Mean KLD per dimension, sorted descending, with each dimension's per-cell spread. */
export function kldPlot(s: KldSummary, title: string): Figure {
  const data = s.order.map((d, rank) => ({ rank: rank + 1, dim: d, mean: s.mean[d], std: s.std[d], effective: s.std[d] > EFFECTIVE_STD ? `std > ${EFFECTIVE_STD} (effective)` : `std ≤ ${EFFECTIVE_STD}` }));
  return render({
    title,
    subtitle: `${s.effective} effective dims (per-cell KLD std > ${EFFECTIVE_STD}), ${s.active} with mean KLD ≥ ${ACTIVE_MEAN}; ${s.cells} cells`,
    width: 640,
    height: 360,
    marginLeft: 60,
    x: { label: 'latent dimension, by mean KLD (rank)' },
    y: { label: 'mean KLD (nats)', grid: true },
    color: { domain: [`std > ${EFFECTIVE_STD} (effective)`, `std ≤ ${EFFECTIVE_STD}`], range: ['#0072b2', '#999999'] },
    legend: [{ label: `per-cell KLD std > ${EFFECTIVE_STD} (effective)`, color: '#0072b2' }, { label: `std ≤ ${EFFECTIVE_STD}`, color: '#999999' }, { label: `mean ${ACTIVE_MEAN} (dashed)`, color: '#d55e00' }],
    marks: [
      Plot.ruleY([ACTIVE_MEAN], { stroke: '#d55e00', strokeDasharray: '4 3' }),
      Plot.ruleX(data, { x: 'rank', y1: (d) => Math.max(0, d.mean - d.std), y2: (d) => d.mean + d.std, stroke: 'effective', strokeOpacity: 0.5 }),
      Plot.dot(data, { x: 'rank', y: 'mean', fill: 'effective', r: 3 }),
    ],
  });
}

/** Differential coupling (memb − dna) per structure, sorted; controls marked. */
export function couplingPlot(rows: StructureCoupling[], title: string): Figure {
  const all = rows.filter((r) => r.phase === 'all').sort((a, b) => a.differential - b.differential);
  const order = all.map((r) => r.structure);
  const kind = (s: string) => (s.startsWith('Control') ? 'control' : 'structure');
  return render({
    title,
    subtitle: 'median over test cells of coupling_memb − coupling_dna; < 0: bound to the nucleus, > 0: to the membrane',
    width: 720,
    height: 60 + 26 * order.length,
    marginLeft: 230,
    x: { label: 'differential coupling (memb − dna)', grid: true },
    y: { domain: order, label: null },
    symbol: { domain: ['control', 'structure'], range: ['circle', 'plus'] },
    color: { domain: ['all', 'interphase', 'mitotic'], range: ['black', '#0072b2', '#e69f00'] },
    legend: [{ label: 'all cells', color: 'black' }, { label: 'interphase', color: '#0072b2' }, { label: 'mitotic', color: '#e69f00' }, { label: 'control', color: '#555', symbol: 'circle' }, { label: 'structure', color: '#555', symbol: 'plus' }],
    marks: [
      Plot.ruleX([0], { stroke: '#888' }),
      Plot.dot(rows.filter((r) => order.includes(r.structure)), { x: 'differential', y: 'structure', stroke: 'phase', symbol: (r: StructureCoupling) => kind(r.structure), r: 4, strokeWidth: 1.5 }),
      Plot.text(all, { x: 'differential', y: 'structure', text: (r: StructureCoupling) => `n=${r.cells}`, dx: 14, textAnchor: 'start', fontSize: 10 }),
    ],
  });
}
