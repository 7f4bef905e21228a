// The drug-shift figure: per drug × structure, the corrected p-value of the centroid shift
// (−log10, a dashed line at p = 0.05), one panel per model. Observable Plot rendered in Node on
// a linkedom document to SVG, and the SVG to PNG through resvg.

import * as Plot from '@observablehq/plot';
import { FONT, plotDocument, svgToPng } from './svg.ts';

export interface DrugPlotRow {
  model: string;
  drug: string;
  structure: string;
  distance: number;
  pCorrected: number;
}


/** Plot's title, subtitle and legends would wrap the SVG in an HTML figure, which resvg cannot read: the caption goes beside it (the table's). */
export function drugPlot(rows: DrugPlotRow[], permutations: number): { svg: string; png: Uint8Array } {
  const data = rows.map((r) => ({ ...r, test: `${r.drug} · ${r.structure}`, score: -Math.log10(r.pCorrected), significant: r.pCorrected < 0.05 ? 'corrected p < 0.05' : 'not significant' }));
  const tests = [...new Set(data.map((d) => d.test))];
  const document = plotDocument();
  const el = Plot.plot({
    document,
    style: { fontFamily: FONT, fontSize: '12px', background: 'white' },
    width: 760,
    height: 90 + 40 * tests.length,
    marginLeft: 200,
    fx: { label: null },
    x: { label: `−log10 Bonferroni-corrected p (${permutations} label shuffles); dashed: p = 0.05, orange: below it`, grid: true, domain: [0, Math.max(2, ...data.map((d) => d.score)) * 1.05] },
    y: { domain: tests, label: null },
    // No legend (a legend too would wrap the SVG in a figure): the x label says what the colours mean.
    color: { domain: ['corrected p < 0.05', 'not significant'], range: ['#d55e00', '#999999'] },
    marks: [Plot.ruleX([-Math.log10(0.05)], { stroke: 'black', strokeDasharray: '4 3' }), Plot.dot(data, { x: 'score', y: 'test', fx: 'model', fill: 'significant', r: 5 })],
  }) as unknown as { outerHTML: string };
  // Plot leaves the namespace to the HTML parser; a standalone file needs it. currentColor: black.
  const svg = el.outerHTML.replace(/^<svg /, '<svg xmlns="http://www.w3.org/2000/svg" ').replace(/currentColor/g, 'black');
  return { svg, png: svgToPng(svg) };
}
