// A small multi-page TIFF writer (uint8, uint16 or float32 planes, deflate-compressed), enough for the
// synthetic data set and for OME-TIFF outputs. geotiff.js reads; its writer handles single
// GeoTIFF rasters only, hence this.

import { zlibSync } from 'fflate';

export interface TiffPages {
  width: number;
  height: number;
  /** One plane per page, row-major height × width. */
  pages: (Uint8Array | Uint16Array | Float32Array)[];
  /** ImageJ or OME-XML metadata, stored in the first page's ImageDescription. */
  description?: string;
}

const SHORT = 3;
const LONG = 4;
const ASCII = 2;

export function encodeTiff({ width, height, pages, description }: TiffPages): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 8;
  /** Appends a block at a word-aligned offset and returns that offset. */
  const push = (b: Uint8Array) => {
    const at = offset;
    chunks.push(b);
    offset += b.length;
    if (offset & 1) {
      chunks.push(new Uint8Array(1));
      offset += 1;
    }
    return at;
  };
  const header = new Uint8Array(8);
  const hv = new DataView(header.buffer);
  header.set([0x49, 0x49]);
  hv.setUint16(2, 42, true);

  const desc = description ? new TextEncoder().encode(`${description}\0`) : null;
  const descAt = desc ? push(desc) : 0;
  const ifdOffsets: number[] = [];
  const ifds: { at: number; view: DataView }[] = [];
  for (const [p, plane] of pages.entries()) {
    const float = plane instanceof Float32Array;
    const bits = plane.BYTES_PER_ELEMENT * 8;
    if (plane.length !== width * height) throw new Error(`tiff: page ${p} has ${plane.length} values, expected ${width}×${height}`);
    const raw = new Uint8Array(plane.buffer, plane.byteOffset, plane.byteLength);
    const packed = zlibSync(raw, { level: 6 });
    const dataAt = push(packed);
    const tags: [number, number, number, number][] = [
      [256, LONG, 1, width],
      [257, LONG, 1, height],
      [258, SHORT, 1, bits],
      [259, SHORT, 1, 8], // Adobe deflate
      [262, SHORT, 1, 1], // BlackIsZero
      ...(p === 0 && desc ? ([[270, ASCII, desc.length, descAt]] as [number, number, number, number][]) : []),
      [273, LONG, 1, dataAt],
      [277, SHORT, 1, 1],
      [278, LONG, 1, height],
      [279, LONG, 1, packed.length],
      [284, SHORT, 1, 1],
      [339, SHORT, 1, float ? 3 : 1],
    ];
    const ifd = new Uint8Array(2 + tags.length * 12 + 4);
    const v = new DataView(ifd.buffer);
    v.setUint16(0, tags.length, true);
    tags.forEach(([tag, type, count, value], i) => {
      const o = 2 + i * 12;
      v.setUint16(o, tag, true);
      v.setUint16(o + 2, type, true);
      v.setUint32(o + 4, count, true);
      if (type === SHORT) v.setUint16(o + 8, value, true);
      else v.setUint32(o + 8, value, true);
    });
    const at = push(ifd);
    ifdOffsets.push(at);
    ifds.push({ at, view: v });
  }
  // Chain the IFDs: the header points at the first, each at the next, the last at 0.
  hv.setUint32(4, ifdOffsets[0], true);
  ifds.forEach(({ view }, i) => view.setUint32(view.byteLength - 4, ifdOffsets[i + 1] ?? 0, true));

  const out = new Uint8Array(offset);
  out.set(header, 0);
  let at = 8;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** ImageJ hyperstack metadata so that Fiji and our reader know the channel and slice counts. */
export const imagejDescription = (channels: number, slices: number): string =>
  `ImageJ=1.11a\nimages=${channels * slices}\nchannels=${channels}\nslices=${slices}\nhyperstack=true\nmode=grayscale\n`;
