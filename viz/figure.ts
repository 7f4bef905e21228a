// A labelled figure of image tiles: rows of tiles with a label under each, column headings and
// row labels, as SVG (inline in the report) and PNG (resvg), so a downloaded figure still says
// what each tile is.

import { pngOf, scaleUp, type Rgb } from './images.ts';
import { svgToPng } from './svg.ts';
import { escapeXml as esc } from '../data/markup.ts';

export interface Tile {
  image: Rgb;
  /** Under the tile. */
  label?: string;
}

export interface TileFigure {
  rows: Tile[][];
  /** Above each column. */
  columns?: string[];
  /** Left of each row. */
  rowLabels?: string[];
  /** Integer enlargement of each tile (nearest neighbour). */
  zoom?: number;
}


export function tileFigure(f: TileFigure): { svg: string; png: Uint8Array } {
  const zoom = f.zoom ?? 1;
  const first = f.rows.flat()[0]?.image;
  if (!first) throw new Error('tileFigure: no tiles');
  const w = first.width * zoom;
  const h = first.height * zoom;
  const gap = 6;
  const font = 11;
  const hasTileLabels = f.rows.some((r) => r.some((t) => t.label));
  const cellH = h + (hasTileLabels ? font + 6 : 0) + gap;
  const left = f.rowLabels ? 8 + Math.max(...f.rowLabels.map((l) => l.length)) * font * 0.6 : 0;
  const top = f.columns ? font + 10 : 0;
  const cols = Math.max(...f.rows.map((r) => r.length), f.columns?.length ?? 0);
  // A column is as wide as its tiles or its longest label (≈ 0.6 em per character), so labels never overlap.
  const textW = (t?: string) => (t ? t.length * font * 0.6 + 4 : 0);
  const colW = Array.from({ length: cols }, (_, j) => Math.max(w, textW(f.columns?.[j]), ...f.rows.map((r) => textW(r[j]?.label))));
  const colX = colW.map((_, j) => left + colW.slice(0, j).reduce((a, b) => a + b + gap, 0));
  const W = Math.ceil(left + colW.reduce((a, b) => a + b + gap, 0));
  const H = Math.ceil(top + f.rows.length * cellH);
  const parts: string[] = [`<rect width="${W}" height="${H}" fill="white"/>`];
  f.columns?.forEach((c, j) => parts.push(`<text x="${colX[j] + colW[j] / 2}" y="${font + 2}" text-anchor="middle">${esc(c)}</text>`));
  f.rows.forEach((row, i) => {
    const y = top + i * cellH;
    if (f.rowLabels?.[i]) parts.push(`<text x="${left - 6}" y="${y + h / 2 + font / 3}" text-anchor="end">${esc(f.rowLabels[i])}</text>`);
    row.forEach((t, j) => {
      const x = colX[j] + (colW[j] - w) / 2;
      const href = `data:image/png;base64,${Buffer.from(pngOf(scaleUp(t.image, zoom))).toString('base64')}`;
      parts.push(`<image x="${x}" y="${y}" width="${w}" height="${h}" href="${href}" image-rendering="optimizeSpeed"/>`);
      if (t.label) parts.push(`<text x="${x + w / 2}" y="${y + h + font + 1}" text-anchor="middle">${esc(t.label)}</text>`);
    });
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${font}">${parts.join('')}</svg>`;
  return { svg, png: svgToPng(svg) };
}
