// Reading the data set's images: the 3D registered TIFFs (multi-page uint8, pages ordered Z then
// C) with geotiff, and the 2D max-projection PNGs with fast-png. Every failure names the file.

import { readFile } from 'node:fs/promises';
import { decode } from 'fast-png';
import { fromArrayBuffer } from 'geotiff';

/** A multi-channel image, channel-major: C × (spatial...), spatial in [Y, X] or [Y, X, Z] order. */
export interface Image {
  channels: number;
  spatial: number[];
  data: Uint8Array;
}

export class ImageError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ImageError';
  }
}

async function bytesOf(file: string): Promise<ArrayBuffer> {
  try {
    const b = await readFile(file);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  } catch (e) {
    throw new ImageError(file, `cannot read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** Channel count from ImageJ ("channels=6") or OME-XML (SizeC="6") metadata. */
function channelsFromDescription(desc: string | undefined): number | undefined {
  const m = desc?.match(/channels=(\d+)/) ?? desc?.match(/SizeC="(\d+)"/);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads a 3D TIFF as C × Y × X × Z. The channel count comes from the file's metadata, or else
 * from `channelsHint` (e.g. the largest channel index in the manifest + 1).
 */
export async function readTiff3d(file: string, channelsHint?: number): Promise<Image> {
  const buf = await bytesOf(file);
  try {
    const tiff = await fromArrayBuffer(buf);
    const pages = await tiff.getImageCount();
    const first = await tiff.getImage(0);
    const desc = await first.fileDirectory.loadValue('ImageDescription');
    const C = channelsFromDescription(typeof desc === 'string' ? desc : undefined) ?? channelsHint;
    if (!C) throw new Error('the channel count is neither in the file metadata nor given');
    if (pages < 2 || pages % C !== 0) throw new Error(`expected a 3D image of ${C} channels × Z pages, found ${pages} page(s): wrong dimensionality?`);
    const Z = pages / C;
    const Y = first.getHeight();
    const X = first.getWidth();
    if (first.getBitsPerSample() !== 8 || first.getSamplesPerPixel() !== 1) throw new Error(`expected uint8 single-sample pages, found ${first.getBitsPerSample()}-bit × ${first.getSamplesPerPixel()}`);
    const data = new Uint8Array(C * Y * X * Z);
    for (let p = 0; p < pages; p++) {
      const page = p === 0 ? first : await tiff.getImage(p);
      if (page.getWidth() !== X || page.getHeight() !== Y) throw new Error(`page ${p} is ${page.getWidth()}×${page.getHeight()}, page 0 is ${X}×${Y}`);
      const [plane] = (await page.readRasters()) as unknown as Uint8Array[];
      const z = Math.floor(p / C);
      const c = p % C;
      for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) data[((c * Y + y) * X + x) * Z + z] = plane[y * X + x];
    }
    return { channels: C, spatial: [Y, X, Z], data };
  } catch (e) {
    throw new ImageError(file, `not a readable 3D TIFF: ${(e as Error).message}`);
  }
}

/** Reads a 2D PNG as C × Y × X (RGB: membrane, structure, DNA in the Allen data). */
export async function readPng2d(file: string): Promise<Image> {
  const buf = await bytesOf(file);
  let png: ReturnType<typeof decode>;
  try {
    png = decode(new Uint8Array(buf));
  } catch (e) {
    throw new ImageError(file, `not a readable PNG: ${(e as Error).message}`);
  }
  if (png.depth !== 8) throw new ImageError(file, `expected an 8-bit PNG, found ${png.depth}-bit`);
  const { width: X, height: Y, channels: S } = png;
  const C = Math.min(S, 3);
  const data = new Uint8Array(C * Y * X);
  const src = png.data as Uint8Array;
  for (let c = 0; c < C; c++) for (let i = 0; i < Y * X; i++) data[c * Y * X + i] = src[i * S + c];
  return { channels: C, spatial: [Y, X], data };
}
