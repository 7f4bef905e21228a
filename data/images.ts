// Reading the data set's images from files: bounded reads of regular files only (data/files.ts),
// then decoding (data/decode.ts and data/ome-zarr.ts, which also work on bytes in a browser); and
// writing OME-Zarr folders. Every failure names the file.

import { readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeImage, decodePng2d, decodeTiff3d, ImageError, imageKind, MAX_IMAGE_FILE_BYTES, pngHeaderOf, tiffHeader, type Image, type ImageBounds, type ImageHeader, type TiffOptions } from './decode.ts';
import { FileReadError, readBounded, reasonOf, makeDirs, withBoundedFile } from './files.ts';
import { decodeOmeZarr, omeZarrFiles, omeZarrHeader, type OmeZarrCell, type ZarrSource } from './ome-zarr.ts';

export * from './decode.ts';

async function bytesOf(file: string): Promise<ArrayBuffer> {
  try {
    const b = await readBounded(file, MAX_IMAGE_FILE_BYTES);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  } catch (e) {
    throw new ImageError(file, `cannot read: ${reasonOf(e)}`);
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

/** An OME-Zarr folder's files by key, each within its bound, regular files only. */
function zarrFolder(dir: string): ZarrSource {
  return {
    async get(key, maxBytes) {
      try {
        return new Uint8Array(await readBounded(join(dir, key), maxBytes));
      } catch (e) {
        if (e instanceof FileReadError && e.reason === 'no such file') return undefined;
        throw new ImageError(join(dir, key), `cannot read: ${reasonOf(e)}`);
      }
    },
  };
}

/** Reads an OME-Zarr 0.4 folder's first level: every file within its bound, regular files only (data/ome-zarr.ts checks the fields before the chunks). */
export function readOmeZarr(dir: string, o: { dims?: 2 | 3; bounds?: ImageBounds } = {}): Promise<Image> {
  return decodeOmeZarr(dir, zarrFolder(dir), o);
}

/**
 * What any cell image a manifest may name declares, from its header alone, with every check
 * readImage makes before decoding (the bounds, the page layout, the types): a PNG's IHDR and its
 * chunk headers (a file cut short), a TIFF's IFDs (and that each strip lies inside the file), an
 * OME-Zarr's .zattrs and .zarray (a Zarr v3 zarr.json is refused as readImage refuses it). No
 * pixel is decoded; a PNG reads ~8 bytes a chunk, a TIFF ~1 KiB an IFD.
 */
export async function readImageHeader(file: string, o: TiffOptions = {}): Promise<ImageHeader> {
  if (isZarr(file)) return omeZarrHeader(file, zarrFolder(file), o);
  try {
    return await withBoundedFile(file, MAX_IMAGE_FILE_BYTES, async (readAt, size, fd) => {
      if (imageKind(file, await readAt(0, 8), o) === 'png') {
        // Synchronous 8-byte reads of the chunk headers: the walk is a few reads a file.
        const readSyncAt = (at: number, n: number) => {
          const b = Buffer.alloc(Math.max(0, Math.min(n, size - at)));
          let got = 0;
          for (let r; got < b.length && (r = readSync(fd, b, got, b.length - got, at + got)) > 0; ) got += r;
          return b.subarray(0, got);
        };
        return pngHeaderOf(file, size, readSyncAt, o.bounds);
      }
      return tiffHeader(file, readAt, size, o);
    });
  } catch (e) {
    if (e instanceof FileReadError) throw new ImageError(file, `cannot read: ${e.reason}`);
    throw e;
  }
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
