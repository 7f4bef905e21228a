// Decoding the data set's images from their bytes (browser-safe: no file system, so the explorer
// page decodes dropped files with it; data/images.ts reads files and calls it): the 3D registered
// TIFFs (multi-page uint8, pages ordered Z then C) with geotiff, and the 2D max-projection PNGs
// with fast-png. Every failure names the file.
// A few hundred KB can declare gigapixels (a PNG or TIFF "bomb"), so the declared dimensions
// (PNG IHDR, TIFF IFDs) are checked against the model's input size before anything is decoded.

import { decode } from 'fast-png';
import { fromArrayBuffer } from 'geotiff';

const MiB = 1 << 20;

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

/** Largest image file read (a 6-channel 3D cell TIFF of the Allen data is ~20–60 MB). */
export const MAX_IMAGE_FILE_BYTES = 512 * MiB;
/** Largest decoded image, whatever the fit mode: channels × voxels bytes (an Allen 3D cell, 7 × ~70×200×300 uint8, is ~30 MB). */
export const MAX_DECODED_BYTES = 256 * MiB;
/** With fit 'crop-pad', each dimension may be at most this many times the model's. */
export const CROP_PAD_FACTOR = 4;

/** What the reader will accept: the model's input size and how a different size is fitted. */
export interface ImageBounds {
  /** [Y, X] or [Y, X, Z]. */
  size: number[];
  fit?: 'exact' | 'crop-pad';
}

/**
 * Checks declared dimensions before decoding: equal to the model's size ('exact'), or each within
 * CROP_PAD_FACTOR × the model's ('crop-pad'); and channels × voxels within MAX_DECODED_BYTES always.
 */
export function checkDeclared(file: string, spatial: number[], channels: number, bounds?: ImageBounds): void {
  const shape = spatial.join('×');
  if (spatial.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new ImageError(file, `declares an invalid size ${shape}`);
  const bytes = spatial.reduce((a, b) => a * b, channels);
  if (bytes > MAX_DECODED_BYTES) throw new ImageError(file, `declares ${shape} × ${channels} channel(s) = ${(bytes / MiB).toFixed(0)} MiB decoded, more than the ${MAX_DECODED_BYTES / MiB} MiB allowed; refused before decoding`);
  if (!bounds) return;
  const { size } = bounds;
  if (size.length !== spatial.length) throw new ImageError(file, `is ${shape} (${spatial.length}D) but the model takes ${size.join('×')} (${size.length}D)`);
  if ((bounds.fit ?? 'exact') === 'exact') {
    if (spatial.some((d, i) => d !== size[i]))
      throw new ImageError(file, `the image is ${shape} but the model takes ${size.join('×')}; make the data at the model's size (statcell synth --size ${size.join(',')}), set the model's size (--set size=[${spatial.join(',')}]), or centre-crop / zero-pad it with --fit crop-pad`);
  } else if (spatial.some((d, i) => d > CROP_PAD_FACTOR * size[i]))
    throw new ImageError(file, `is ${shape}, more than ${CROP_PAD_FACTOR}× the model's ${size.join('×')} in some dimension, too large to crop-pad; refused before decoding`);
}

/** Width, height, bit depth and sample count from a PNG's IHDR chunk (the first, at byte 8). */
function pngHeader(file: string, b: Uint8Array): { width: number; height: number; depth: number; samples: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (b.length < 33 || sig.some((v, i) => b[i] !== v) || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR')
    throw new ImageError(file, 'not a readable PNG: no PNG signature and IHDR header');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const samples = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[b[25]];
  if (!samples) throw new ImageError(file, `not a readable PNG: unknown colour type ${b[25]}`);
  return { width: v.getUint32(16), height: v.getUint32(20), depth: b[24], samples };
}

/** Channel count from ImageJ ("channels=6") or OME-XML (SizeC="6") metadata. */
function channelsFromDescription(desc: string | undefined): number | undefined {
  const m = desc?.match(/channels=(\d+)/) ?? desc?.match(/SizeC="(\d+)"/);
  return m ? Number(m[1]) : undefined;
}

/**
 * Decodes a 3D TIFF's bytes as C × Y × X × Z. The channel count comes from the file's metadata, or else
 * from `channelsHint` (e.g. the largest channel index in the manifest + 1).
 */
export async function decodeTiff3d(file: string, buf: ArrayBuffer, channelsHint?: number, bounds?: ImageBounds): Promise<Image> {
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
    // Every page's declared size (its IFD only, nothing decoded) before the first raster is read.
    for (let p = 1; p < pages; p++) {
      const page = await tiff.getImage(p);
      if (page.getWidth() !== X || page.getHeight() !== Y) throw new Error(`page ${p} is ${page.getWidth()}×${page.getHeight()}, page 0 is ${X}×${Y}`);
      if (page.getBitsPerSample() !== 8 || page.getSamplesPerPixel() !== 1) throw new Error(`page ${p}: expected uint8 single-sample, found ${page.getBitsPerSample()}-bit × ${page.getSamplesPerPixel()}`);
    }
    checkDeclared(file, [Y, X, Z], C, bounds);
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
    if (e instanceof ImageError) throw e;
    throw new ImageError(file, `not a readable 3D TIFF: ${(e as Error).message}`);
  }
}

/** Decodes a 2D PNG's bytes as C × Y × X (RGB: membrane, structure, DNA in the Allen data). */
export function decodePng2d(file: string, buf: ArrayBuffer, bounds?: ImageBounds): Image {
  const head = pngHeader(file, new Uint8Array(buf));
  checkDeclared(file, [head.height, head.width], head.samples, bounds);
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
