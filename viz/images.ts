// Turning model tensors into pictures: a cell as RGB in the paper's display order
// [membrane, structure, DNA] (3D: maximum projection over Z) and grids of cells as PNG. The
// full-resolution outputs, OME-TIFF and OME-Zarr, are written by data/ome-tiff.ts and data/ome-zarr.ts.

import { encode } from 'fast-png';
import { PALETTE } from '../data/palette.ts';
import type { CellChannels } from '../session/feeds.ts';

export interface Rgb {
  width: number;
  height: number;
  /** width × height × 3 bytes. */
  data: Uint8Array;
}

// The composite colours live in data/palette.ts, shared with the explorer page.
export { contrastStretch, PALETTE, PALETTE_NAMES } from '../data/palette.ts';

/** The maximum over Z of voxel (y, x) of a channel [...size], times its gain, clipped to [0, 1]. */
function projected(src: Float32Array, size: number[], gain: number) {
  const [Y, X] = size;
  const Z = size[2] ?? 1;
  const out = new Float32Array(Y * X);
  for (let i = 0; i < Y * X; i++) {
    let m = 0;
    for (let z = 0; z < Z; z++) m = Math.max(m, src[i * Z + z]);
    out[i] = Math.min(1, Math.max(0, m * gain));
  }
  return out;
}

/** One cell as RGB from its channels by name, each [...size] (3D: maximum projection over Z), times `gain` per channel (default 1), clipped to [0, 1]. */
export function cellRgb(size: number[], ch: CellChannels, gain: Record<string, number> = {}): Rgb {
  const [Y, X] = size;
  const out = new Float32Array(Y * X * 3);
  for (const name of ['membrane', 'structure', 'dna'] as const) {
    const src = ch[name];
    if (!src) continue;
    const p = projected(src, size, gain[name] ?? 1);
    for (let i = 0; i < Y * X; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] += p[i] * PALETTE[name][c];
  }
  return { width: X, height: Y, data: Uint8Array.from(out, (v) => Math.round(255 * Math.min(1, v))) };
}

/** One channel alone in grey, with the same gain and projection as the composite. */
export function greyOf(size: number[], src: Float32Array, gain = 1): Rgb {
  const p = projected(src, size, gain);
  const data = new Uint8Array(p.length * 3);
  for (let i = 0; i < p.length; i++) data.fill(Math.round(255 * p[i]), i * 3, i * 3 + 3);
  return { width: size[1], height: size[0], data };
}

/** Tiles images (all the same size) in rows of `cols`, with a 2-pixel gap. */
export function grid(tiles: Rgb[], cols: number): Rgb {
  const { width: w, height: h } = tiles[0];
  const gap = 2;
  const rows = Math.ceil(tiles.length / cols);
  const W = cols * w + (cols - 1) * gap;
  const H = rows * h + (rows - 1) * gap;
  const data = new Uint8Array(W * H * 3).fill(40);
  tiles.forEach((t, i) => {
    const ox = (i % cols) * (w + gap);
    const oy = Math.floor(i / cols) * (h + gap);
    for (let y = 0; y < h; y++) data.set(t.data.subarray(y * w * 3, (y + 1) * w * 3), ((oy + y) * W + ox) * 3);
  });
  return { width: W, height: H, data };
}

/** Enlarges by an integer factor (nearest neighbour) so small cells are visible. */
export function scaleUp(img: Rgb, k: number): Rgb {
  if (k <= 1) return img;
  const W = img.width * k;
  const data = new Uint8Array(W * img.height * k * 3);
  for (let y = 0; y < img.height * k; y++)
    for (let x = 0; x < W; x++) {
      const s = ((Math.floor(y / k) * img.width + Math.floor(x / k)) * 3);
      data.set(img.data.subarray(s, s + 3), (y * W + x) * 3);
    }
  return { width: W, height: img.height * k, data };
}

export const pngOf = (img: Rgb): Uint8Array => encode({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
