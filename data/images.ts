// Reading the data set's images from files: bounded reads of regular files only (data/files.ts),
// then decoding (data/decode.ts and data/ome-zarr.ts, which also work on bytes in a browser); and
// writing OME-Zarr folders. Every failure names the file.

import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeImage, decodePng2d, decodeTiff3d, ImageError, MAX_IMAGE_FILE_BYTES, type Image, type ImageBounds, type TiffOptions } from './decode.ts';
import { FileReadError, readBounded, makeDirs } from './files.ts';
import { decodeOmeZarr, omeZarrFiles, type OmeZarrCell } from './ome-zarr.ts';

export * from './decode.ts';

async function bytesOf(file: string): Promise<ArrayBuffer> {
  try {
    const b = await readBounded(file, MAX_IMAGE_FILE_BYTES);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  } catch (e) {
    throw new ImageError(file, `cannot read: ${e instanceof FileReadError ? e.reason : (e as Error).message}`);
  }
}

/**
 * Reads a 3D TIFF as C × Y × X × Z. The channel count comes from the file's metadata, or else
 * from `channelsHint` (e.g. the largest channel index in the manifest + 1).
 */
export async function readTiff3d(file: string, channelsHint?: number, bounds?: ImageBounds): Promise<Image> {
  return decodeTiff3d(file, await bytesOf(file), channelsHint, bounds);
}

/** Reads a 2D PNG as C × Y × X (RGB: membrane, structure, DNA in the Allen data). */
export async function readPng2d(file: string, bounds?: ImageBounds): Promise<Image> {
  return decodePng2d(file, await bytesOf(file), bounds);
}

/** An OME-Zarr folder (by its name or its .zattrs), as opposed to a single image file. */
export function isZarr(path: string): boolean {
  if (/\.zarr\/?$/i.test(path)) return true;
  try {
    return statSync(path).isDirectory() && statSync(join(path, '.zattrs')).isFile();
  } catch {
    return false;
  }
}

/** Reads an OME-Zarr 0.4 folder's first level: every file within its bound, regular files only (data/ome-zarr.ts checks the fields before the chunks). */
export function readOmeZarr(dir: string, o: { dims?: 2 | 3; bounds?: ImageBounds } = {}): Promise<Image> {
  return decodeOmeZarr(dir, {
    async get(key, maxBytes) {
      try {
        return new Uint8Array(await readBounded(join(dir, key), maxBytes));
      } catch (e) {
        if (e instanceof FileReadError && e.reason === 'no such file') return undefined;
        throw new ImageError(join(dir, key), `cannot read: ${e instanceof FileReadError ? e.reason : (e as Error).message}`);
      }
    },
  }, o);
}

/** Any cell image a manifest may name: an OME-Zarr folder, or a PNG or (OME-)TIFF file, told apart by content. */
export async function readImage(file: string, o: TiffOptions = {}): Promise<Image> {
  if (isZarr(file)) return readOmeZarr(file, o);
  return decodeImage(file, await bytesOf(file), o);
}

/** Writes a cell as an OME-Zarr 0.4 folder `dir` (replacing one there): into a temporary folder beside it, then renamed. */
export async function writeOmeZarr(dir: string, cell: OmeZarrCell): Promise<void> {
  const files = await omeZarrFiles(cell);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const [key, bytes] of files) {
    makeDirs(dirname(join(tmp, key)));
    writeFileSync(join(tmp, key), bytes);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}
