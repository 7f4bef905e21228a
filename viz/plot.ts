// Loss curves: an SVG line plot with axes, ticks, labels and a legend (shown inline in the
// report) and the same plot as PNG through resvg. A few lines of our own SVG, kept for the log
// axis whose ticks it chooses (logTicks); the analyses' plots are Observable Plot (viz/svg.ts).

import { svgToPng } from './svg.ts';
import { escapeXml as esc } from '../data/markup.ts';

export interface Series {
  label: string;
  points: [number, number][];
  color: string;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  width?: number;
  height?: number;
}

export interface PlotResult {
  svg: string;
  png: Uint8Array;
}


/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 5 || 1));
  const unit = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) ?? 10 * step;
  const out: number[] = [];
  for (let t = Math.ceil(lo / unit) * unit; t <= hi + 1e-9 * unit; t += unit) out.push(Number(t.toPrecision(12)));
  return out;
}

/** Log-axis ticks (as log10 values) in [lo, hi]: powers of ten, with 2× and 5× between them when that gives under three, so every axis gets several labelled ticks. */
function logTicks(lo: number, hi: number): number[] {
  const at = (mantissas: number[]) => {
    const out: number[] = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) for (const m of mantissas) out.push(e + Math.log10(m));
    return out.filter((t) => t >= lo - 1e-9 && t <= hi + 1e-9);
  };
  for (const m of [[1], [1, 2, 5]]) {
    const t = at(m);
    if (t.length >= 3) return t;
  }
  // Under a factor of about five between the ends: linear ticks of the values, placed on the log axis.
  return ticks(10 ** lo, 10 ** hi).filter((v) => v > 0).map(Math.log10);
}

const fmt = (v: number) => (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

export function linePlot(series: Series[], o: PlotOptions): PlotResult {
  const W = o.width ?? 640;
  const H = o.height ?? 360;
  const [ml, mr, mt, mb] = [70, 20, 36, 46];
  const ty = (v: number) => (o.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(ty(y)));
  let [x0, x1] = pts.length ? [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))] : [0, 1];
  let [y0, y1] = pts.length ? [Math.min(...pts.map((p) => ty(p[1]))), Math.max(...pts.map((p) => ty(p[1])))] : [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x: number) => ml + ((x - x0) / (x1 - x0)) * (W - ml - mr);
  const py = (y: number) => H - mb - ((y - y0) / (y1 - y0)) * (H - mt - mb);
  const parts: string[] = [`<rect width="${W}" height="${H}" fill="white"/>`];
  for (const t of ticks(x0, x1)) parts.push(`<line x1="${px(t)}" y1="${mt}" x2="${px(t)}" y2="${H - mb}" stroke="#e6e6e6"/>`, `<text x="${px(t)}" y="${H - mb + 16}" text-anchor="middle">${fmt(t)}</text>`);
  const yt = o.logY ? logTicks(y0, y1) : ticks(y0, y1);
  for (const t of yt.length ? yt : [y0, y1]) parts.push(`<line x1="${ml}" y1="${py(t)}" x2="${W - mr}" y2="${py(t)}" stroke="#e6e6e6"/>`, `<text x="${ml - 6}" y="${py(t) + 4}" text-anchor="end">${fmt(o.logY ? 10 ** t : t)}</text>`);
  parts.push(`<path d="M${ml} ${mt}V${H - mb}H${W - mr}" fill="none" stroke="black"/>`);
  for (const s of series) {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(ty(y)));
    if (p.length) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${p.map(([x, y]) => `${px(x).toFixed(1)},${py(ty(y)).toFixed(1)}`).join(' ')}"/>`);
  }
  series.forEach((s, i) => parts.push(`<rect x="${W - mr - 190}" y="${mt + 6 + i * 18}" width="14" height="3" fill="${s.color}"/>`, `<text x="${W - mr - 170}" y="${mt + 11 + i * 18}">${esc(s.label)}</text>`));
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`);
  parts.push(`<text x="${(ml + W - mr) / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(mt + H - mb) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}${o.logY ? ' (log scale)' : ''}</text>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="12">${parts.join('')}</svg>`;
  return { svg, png: svgToPng(svg) };
}
