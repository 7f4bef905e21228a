// Turning model tensors into pictures: a cell as RGB in the paper's display order
// [membrane, structure, DNA] (3D: maximum projection over Z), grids of cells as PNG, and
// multi-channel OME-TIFF for the full-resolution outputs.

import { encode } from 'fast-png';
import { encodeTiff } from '../data/tiff.ts';
import type { CellChannels } from '../session/feeds.ts';

export interface Rgb {
  width: number;
  height: number;
  /** width × height × 3 bytes. */
  data: Uint8Array;
}

/** One cell as RGB from its channels by name, each [...size] in [0, 1] (outside is clipped). */
export function cellRgb(size: number[], ch: CellChannels): Rgb {
  const [Y, X] = size;
  const Z = size[2] ?? 1;
  const out = new Uint8Array(Y * X * 3);
  // The paper's display order: membrane → R, structure → G, DNA → B (a Z stack as its maximum).
  [ch.membrane, ch.structure, ch.dna].forEach((src, rgb) => {
    if (!src) return;
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++) {
        let m = 0;
        for (let z = 0; z < Z; z++) m = Math.max(m, src[(y * X + x) * Z + z]);
        out[(y * X + x) * 3 + rgb] = Math.round(255 * Math.min(1, Math.max(0, m)));
      }
  });
  return { width: X, height: Y, data: out };
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

/**
 * An OME-TIFF of one cell: float32 planes, channel-major then Z (DimensionOrder XYZCT), channel
 * names in the OME-XML so viewers label them.
 */
export function omeTiffOf(size: number[], channels: { name: string; data: Float32Array }[]): Uint8Array {
  const [Y, X] = size;
  const Z = size[2] ?? 1;
  const pages: Float32Array[] = [];
  for (const ch of channels)
    for (let z = 0; z < Z; z++) {
      const plane = new Float32Array(Y * X);
      for (let i = 0; i < Y * X; i++) plane[i] = ch.data[i * Z + z];
      pages.push(plane);
    }
  const chXml = channels.map((c, i) => `<Channel ID="Channel:0:${i}" Name="${c.name}" SamplesPerPixel="1"/>`).join('');
  const tiffData = channels.flatMap((_, c) => Array.from({ length: Z }, (_, z) => `<TiffData FirstC="${c}" FirstZ="${z}" FirstT="0" IFD="${c * Z + z}" PlaneCount="1"/>`)).join('');
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="statcell"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="float" ` +
    `SizeX="${X}" SizeY="${Y}" SizeZ="${Z}" SizeC="${channels.length}" SizeT="1">${chXml}${tiffData}</Pixels></Image></OME>`;
  return encodeTiff({ width: X, height: Y, pages, description: xml });
}
