// Loss curves as PNG with a tiny rasteriser: axes, a light grid and one polyline per series,
// no text (titles, ranges and the legend are in the report's HTML). A plotting stack
// (Plot + a DOM + an SVG renderer) would be three dependencies for a few lines.

import { pngOf, type Rgb } from './images.ts';

export interface Series {
  points: [number, number][];
  color: [number, number, number];
}

export interface PlotResult {
  png: Uint8Array;
  xRange: [number, number];
  yRange: [number, number];
}

export function linePlot(series: Series[], opts: { width?: number; height?: number; logY?: boolean } = {}): PlotResult {
  const W = opts.width ?? 640;
  const H = opts.height ?? 360;
  const m = 24;
  const img: Rgb = { width: W, height: H, data: new Uint8Array(W * H * 3).fill(255) };
  const ty = (v: number) => (opts.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const pts = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(ty(y)));
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => ty(p[1]))), Math.max(...pts.map((p) => ty(p[1])))];
  if (!pts.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x: number) => m + ((x - x0) / (x1 - x0)) * (W - 2 * m);
  const py = (y: number) => H - m - ((ty(y) - y0) / (y1 - y0)) * (H - 2 * m);
  const set = (x: number, y: number, c: readonly number[]) => {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    img.data.set(c, (y * W + x) * 3);
  };
  const line = (ax: number, ay: number, bx: number, by: number, c: readonly number[]) => {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(bx - ax), Math.abs(by - ay))));
    for (let i = 0; i <= n; i++) set(ax + ((bx - ax) * i) / n, ay + ((by - ay) * i) / n, c);
  };
  for (let k = 1; k < 5; k++) {
    line(m, m + (k * (H - 2 * m)) / 5, W - m, m + (k * (H - 2 * m)) / 5, [230, 230, 230]);
    line(m + (k * (W - 2 * m)) / 5, m, m + (k * (W - 2 * m)) / 5, H - m, [230, 230, 230]);
  }
  line(m, H - m, W - m, H - m, [0, 0, 0]);
  line(m, m, m, H - m, [0, 0, 0]);
  for (const s of series) {
    const p = s.points.filter(([, y]) => Number.isFinite(ty(y)));
    for (let i = 1; i < p.length; i++) line(px(p[i - 1][0]), py(p[i - 1][1]), px(p[i][0]), py(p[i][1]), s.color);
    if (p.length === 1) for (let d = -2; d <= 2; d++) line(px(p[0][0]) - 2, py(p[0][1]) + d, px(p[0][0]) + 2, py(p[0][1]) + d, s.color);
  }
  const back = (v: number) => (opts.logY ? 10 ** v : v);
  return { png: pngOf(img), xRange: [x0, x1], yRange: [back(y0), back(y1)] };
}
