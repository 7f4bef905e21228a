// Reading the data set's images from files: bounded reads of regular files only (data/files.ts),
// then decoding (data/decode.ts, which also works on bytes in a browser). Every failure names the file.

import { decodePng2d, decodeTiff3d, ImageError, MAX_IMAGE_FILE_BYTES, type Image, type ImageBounds } from './decode.ts';
import { FileReadError, readBounded } from './files.ts';

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
