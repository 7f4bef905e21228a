// Figures of the feature regression (analysis/feature-regression.ts): R² of each kept PC and the
// explained-variance-weighted R² against β (or per PC for one run), and real vs generated cells
// in the plane of the first two feature PCs, one panel per model.

import * as Plot from '@observablehq/plot';
import { render, type Figure } from './analysis-plots.ts';

export interface R2Row {
  /** The model's label on the x axis: β for a sweep, else the index or run name. */
  x: number;
  pc: string;
  r2: number;
}

const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#999999'];

/** R² (cross-validated) per PC and weighted, against the swept value. */
export function r2Figure(rows: R2Row[], title: string, subtitle: string, xLabel: string): Figure {
  const series = [...new Set(rows.map((r) => r.pc))];
  const colors = series.map((s, k) => (s === 'weighted' ? 'black' : PALETTE[k % PALETTE.length]));
  return render({
    title,
    subtitle,
    width: 640,
    height: 380,
    marginLeft: 56,
    x: { label: xLabel, grid: true },
    y: { label: 'R²', grid: true, domain: [Math.min(0, ...rows.map((r) => r.r2).filter(Number.isFinite)), 1] },
    color: { domain: series, range: colors },
    legend: series.map((s, k) => ({ label: s === 'weighted' ? 'weighted by explained variance' : s, color: colors[k] })),
    marks: [
      Plot.ruleY([0], { stroke: '#888' }),
      Plot.line(rows, { x: 'x', y: 'r2', z: 'pc', stroke: 'pc', strokeWidth: (r: R2Row) => (r.pc === 'weighted' ? 2.5 : 1.2) }),
      Plot.dot(rows, { x: 'x', y: 'r2', stroke: 'pc', r: 3 }),
    ],
  });
}

export interface PcPoint {
  model: string;
  kind: 'real' | 'generated';
  pc1: number;
  pc2: number;
}

/** Real (test) and generated cells on PC1 × PC2 of the real-cell features, a panel per model. */
export function pcPlaneFigure(points: PcPoint[], title: string, subtitle: string): Figure {
  const models = [...new Set(points.map((p) => p.model))];
  return render({
    title,
    subtitle,
    width: Math.max(360, 300 * models.length),
    height: 340,
    marginLeft: 50,
    x: { label: 'PC1', grid: true },
    y: { label: 'PC2', grid: true },
    fx: { label: null, domain: models },
    color: { domain: ['real', 'generated'], range: ['#999999', '#d55e00'] },
    legend: [{ label: 'real cells', color: '#999999' }, { label: 'generated cells', color: '#d55e00' }],
    marks: [Plot.frame({ stroke: '#ccc' }), Plot.dot(points, { x: 'pc1', y: 'pc2', fx: 'model', stroke: 'kind', r: 2.5 })],
  });
}
