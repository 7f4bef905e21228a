// Decoding the data set's images from their bytes (browser-safe: no file system, so the explorer
// page decodes dropped files with it; data/images.ts reads files and calls it): TIFFs with geotiff
// (the 3D registered TIFFs, multi-page uint8, pages ordered Z then C; OME-TIFFs; uint16 and float32
// pages) and PNGs with fast-png (the 2D max projections, 8 or 16 bits). Every failure names the file.
// A few hundred KB can declare gigapixels (a PNG or TIFF "bomb"), so the declared dimensions
// (PNG IHDR, TIFF IFDs) are checked against the model's input size before anything is decoded.

import { decode } from 'fast-png';
import { Unzlib } from 'fflate';
import { fromArrayBuffer, GeoTIFF, type GeoTIFFImage } from 'geotiff';
import { omePlaneIndex, parseOmeXml, type PixelSize } from './ome.ts';

const MiB = 1 << 20;

/** A multi-channel image, channel-major: C × (spatial...), spatial in [Y, X] or [Y, X, Z] order. */
export interface Image {
  channels: number;
  spatial: number[];
  data: Uint8Array | Uint16Array | Float32Array;
  /** The samples' type as stored (default uint8): it sets the default intensity scale (data/preprocess.ts). */
  dtype?: 'uint8' | 'uint16' | 'float32';
  /** From an OME-TIFF's or OME-Zarr's metadata. */
  channelNames?: string[];
  pixelSize?: PixelSize;
}

/** Bytes per sample of each type. */
export const BYTES = { uint8: 1, uint16: 2, float32: 4 } as const;

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
 * CROP_PAD_FACTOR × the model's ('crop-pad'); and channels × voxels × bytes per sample within MAX_DECODED_BYTES always.
 */
export function checkDeclared(file: string, spatial: number[], channels: number, bounds?: ImageBounds, bytesPerSample = 1): void {
  const shape = spatial.join('×');
  if (spatial.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new ImageError(file, `declares an invalid size ${shape}`);
  const bytes = spatial.reduce((a, b) => a * b, channels * bytesPerSample);
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

/**
 * The whole of a decoder's error: its message and its causes' (fast-png throws "Error while
 * decompressing the data:" with the reason only in `cause`), and the error's kind where a
 * message is empty, so that no error ends in a bare colon.
 */
export function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let x: unknown = e, depth = 0; x !== undefined && x !== null && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const m = x instanceof Error ? x.message.trim().replace(/:$/, '') : String(x).trim();
    parts.push(m || (x instanceof Error ? (x.name === 'Error' ? 'an error without a message' : x.name) : 'an error without a message'));
    if (!(x instanceof Error)) break;
  }
  return parts.join(': ') || 'an error without a message';
}

/** Most chunks a PNG's chunk list is walked over (a cell PNG has a handful; fast-png writes one IDAT). */
const MAX_PNG_CHUNKS = 1 << 16;

/**
 * Walks a PNG's chunk list by its length fields (reading 8 bytes a chunk, nothing else), from the
 * IHDR to the IEND: a file cut short (a chunk that runs past the end, no IEND) is refused as
 * truncated, naming where, before the decoder reads it. `readAt` gives up to `n` bytes at `at`.
 */
export function checkPngChunks(file: string, size: number, readAt: (at: number, n: number) => Uint8Array): void {
  let at = 8;
  for (let k = 0; k < MAX_PNG_CHUNKS; k++) {
    if (at + 12 > size) throw new ImageError(file, `not a readable PNG: truncated: the file ends at byte ${size} with no IEND chunk (a partial copy?)`);
    const h = readAt(at, 8);
    const len = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
    const type = String.fromCharCode(...h.subarray(4, 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new ImageError(file, `not a readable PNG: corrupt: no chunk type at byte ${at} (bytes ${[...h.subarray(4, 8)].join(',')})`);
    if (at + 12 + len > size) throw new ImageError(file, `not a readable PNG: truncated: the ${type} chunk at byte ${at} declares ${len} bytes but the file ends at byte ${size} (a partial copy?)`);
    if (type === 'IEND') return;
    at += 12 + len;
  }
  throw new ImageError(file, `not a readable PNG: more than ${MAX_PNG_CHUNKS} chunks`);
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

/**
 * Refuses a PNG whose image data inflate to more bytes than its (already checked) header
 * declares: a "zlib bomb" of a small declared size, whose IDAT expands by up to ~1000× per byte.
 * The IDAT chunks are inflated in 1 KiB pieces with the output counted and dropped, so memory
 * stays bounded; only then does fast-png decode the file.
 */
function checkPngInflation(file: string, b: Uint8Array, h: { width: number; height: number; depth: number; samples: number }): void {
  const row = 1 + Math.ceil((h.width * h.samples * h.depth) / 8); // a filter byte per row
  // Interlaced (Adam7): seven sub-images, each row with its filter byte; at most 7 more per row.
  const limit = b[28] === 1 ? (row + 7) * h.height : row * h.height;
  const idat: Uint8Array[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 8; at + 8 <= b.length; ) {
    const len = v.getUint32(at);
    const type = String.fromCharCode(...b.subarray(at + 4, at + 8));
    if (type === 'IDAT') idat.push(b.subarray(at + 8, Math.min(at + 8 + len, b.length)));
    if (type === 'IEND') break;
    at += 12 + len;
  }
  let count: { out: number; end?: string };
  try {
    count = inflatedCount(idat, limit);
  } catch (e) {
    throw new ImageError(file, `not a readable PNG: corrupt image data: the zlib stream does not inflate (${errorText(e)})`);
  }
  if (count.out > limit) throw new ImageError(file, `its image data inflate to more than the ${limit} bytes its ${h.width}×${h.height} header declares (a compression bomb); refused before decoding`);
  // Not interlaced, the data are exactly `limit` bytes; interlaced, the stream's own end says it.
  const short = b[28] !== 1 && count.out < limit;
  if (short || count.end)
    throw new ImageError(file, `not a readable PNG: truncated: the zlib stream ends early (its image data inflate to ${count.out} bytes${short ? ` of the ${limit} its ${h.width}×${h.height} header declares` : ''}${count.end ? `; ${count.end}` : ''})`);
}

/**
 * How many bytes a zlib stream given in pieces inflates to (counted and dropped, stopping once
 * past `limit`), and, when it stays within, why it does not end where the pieces do (a stream
 * cut short, a bad checksum): undefined when it ends properly.
 */
function inflatedCount(pieces: Uint8Array[], limit: number): { out: number; end?: string } {
  let out = 0;
  const inf = new Unzlib((chunk) => {
    out += chunk.length;
  });
  for (const p of pieces) for (let k = 0; k < p.length && out <= limit; k += 1024) inf.push(p.subarray(k, Math.min(k + 1024, p.length)));
  if (out > limit) return { out };
  try {
    inf.push(new Uint8Array(0), true);
  } catch (e) {
    return { out, end: `at its end: ${errorText(e)}` };
  }
  return { out };
}

/**
 * How many bytes a TIFF LZW strip (Compression 5) decodes to, counted without decoding, stopping
 * once past `limit`. It follows geotiff's decoder code for code (MSB-first codes of 9 to 12 bits,
 * the width growing one code early, no new entries once 12 bits are full), so the count is what
 * geotiff would produce: each 12-bit code can stand for ~4000 bytes, which geotiff gathers in a
 * plain array (a 95 KB strip took 1.6 GB). Codes past geotiff's 4093-entry dictionary are refused:
 * geotiff loops forever on them.
 */
function lzwDecodedBytes(b: Uint8Array, limit: number): number {
  const CLEAR = 256;
  const EOI = 257;
  const DICTIONARY = 4093;
  const length = new Uint32Array(DICTIONARY).fill(1, 0, 258); // decoded length of each entry
  let entries = 258;
  let width = 9;
  let bit = 0;
  const next = () => {
    if (bit >> 3 >= b.length) return EOI; // ran off the end, as geotiff reads it
    let code = 0;
    for (let k = 0; k < width; k++, bit++) code = (code << 1) | ((b[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1;
    return code;
  };
  const add = (prev: number) => {
    if (entries < DICTIONARY) length[entries] = length[prev] + 1;
    entries++;
  };
  let out = 0;
  let prev = -1;
  for (let code = next(); code !== EOI && out <= limit; code = next()) {
    if (code === CLEAR) {
      entries = 258;
      width = 9;
      do code = next();
      while (code === CLEAR);
      if (code === EOI) break;
      if (code > CLEAR) throw new Error(`LZW code ${code} right after a clear code`);
      out += 1;
    } else if (code >= DICTIONARY) {
      throw new Error(`LZW code ${code} beyond the ${DICTIONARY}-entry dictionary the TIFF decoder reads`);
    } else if (code < entries) {
      out += length[code];
      if (prev >= 0) add(prev);
    } else {
      if (prev < 0) throw new Error(`LZW code ${code} with no previous code`);
      out += length[prev] + 1;
      add(prev);
    }
    prev = code;
    if (entries + 1 >= 1 << width) {
      if (width === 12) prev = -1;
      else width++;
    }
  }
  return out;
}

/** How many bytes a PackBits strip (Compression 32773) decodes to as geotiff decodes it (a run of up to 129 bytes per 2), stopping once past `limit`. */
function packBitsDecodedBytes(b: Uint8Array, limit: number): number {
  let out = 0;
  for (let i = 0; i < b.length && out <= limit; i++) {
    const header = (b[i] << 24) >> 24;
    if (header < 0) {
      out += 1 - header;
      i += 1;
    } else {
      out += header + 1;
      i += header + 1;
    }
  }
  return out;
}

/** TIFF compressions read: geotiff decodes more (JPEG, LERC, Zstandard, WebP), but their output is not bounded here. */
const TIFF_COMPRESSIONS: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'deflate', 32946: 'deflate', 32773: 'PackBits' };

/**
 * Checks a TIFF page's strips or tiles before geotiff decodes them: each lies inside the file (a
 * truncated file, which geotiff reports as "Offset is outside the bounds of the DataView"); an
 * uncompressed one holds its rows whole; a compressed one decodes to no more than its declared size
 * (a tile's width × height, a strip's width × RowsPerStrip, × the sample size): deflate inflated with
 * the output counted, LZW and PackBits counted by their codes. Other compressions are refused.
 */
async function checkTiffInflation(file: string, buf: ArrayBuffer, page: GeoTIFFImage, p: number, bytesPerSample: number): Promise<void> {
  const fd = page.fileDirectory;
  const compression = Number(fd.getValue('Compression') ?? 1);
  const kind = TIFF_COMPRESSIONS[compression];
  if (!kind) throw new ImageError(file, `page ${p}: Compression ${compression}; statcell reads uncompressed, deflate, LZW or PackBits TIFFs`);
  const block = page.isTiled ? 'tile' : 'strip';
  // A tile is at most the image rounded up to TIFF's 16-pixel tile grid.
  if (page.getTileWidth() > page.getWidth() + 15 || page.getTileHeight() > page.getHeight() + 15)
    throw new ImageError(file, `page ${p}: ${page.getTileWidth()}×${page.getTileHeight()} tiles for a ${page.getWidth()}×${page.getHeight()} page; refused before decoding`);
  const { offsets, counts } = await tiffBlocks(file, page, p);
  const limit = page.getTileWidth() * page.getTileHeight() * bytesPerSample;
  const bytes = new Uint8Array(buf);
  for (let i = 0; i < offsets.length; i++) {
    const [at, n] = [offsets[i], counts[i] ?? 0];
    if (at + n > bytes.length) throw new ImageError(file, `page ${p}: ${block} ${i} (bytes ${at}–${at + n}) runs past the end of the ${bytes.length}-byte file (a truncated file?)`);
    // The last strip may hold fewer rows; a tile is always whole.
    const rows = page.isTiled ? page.getTileHeight() : Math.min(page.getTileHeight(), page.getHeight() - i * page.getTileHeight());
    const need = rows * page.getTileWidth() * bytesPerSample;
    if (kind === 'none') {
      if (n < need) throw new ImageError(file, `page ${p}: uncompressed ${block} ${i} holds ${n} bytes; its ${rows} row(s) need ${need} (a truncated file?)`);
      continue;
    }
    const data = bytes.subarray(at, at + n);
    let decoded: number;
    try {
      decoded = kind === 'deflate' ? inflatedCount([data], limit).out : kind === 'LZW' ? lzwDecodedBytes(data, limit) : packBitsDecodedBytes(data, limit);
    } catch (e) {
      throw new ImageError(file, `page ${p}: not a readable ${kind} ${block}: ${(e as Error).message}`);
    }
    if (decoded > limit) throw new ImageError(file, `page ${p}: ${kind === 'LZW' ? 'an' : 'a'} ${kind} ${block} ${kind === 'deflate' ? 'inflates' : 'decodes'} to more than the ${limit} bytes the page declares (a compression bomb); refused before decoding`);
    if (decoded < need) throw new ImageError(file, `page ${p}: ${kind} ${block} ${i} decodes to ${decoded} bytes; its ${rows} row(s) need ${need} (a truncated or corrupt ${block})`);
  }
}

/**
 * A page's strip or tile offsets and byte counts, as many as its size calls for (TIFF 6.0: one
 * per strip of RowsPerStrip rows, or per tile): a list of a million entries (8 MB of IFD) pointing
 * at one strip had that strip checked a million times, ~2 minutes a file.
 */
async function tiffBlocks(file: string, page: GeoTIFFImage, p: number): Promise<{ offsets: ArrayLike<number>; counts: ArrayLike<number> }> {
  const block = page.isTiled ? 'tile' : 'strip';
  const offsets = (await page.fileDirectory.loadValue(page.isTiled ? 'TileOffsets' : 'StripOffsets')) as ArrayLike<number>;
  const counts = (await page.fileDirectory.loadValue(page.isTiled ? 'TileByteCounts' : 'StripByteCounts')) as ArrayLike<number>;
  const [w, h, tw, th] = [page.getWidth(), page.getHeight(), page.getTileWidth(), page.getTileHeight()];
  const want = Math.ceil(w / tw) * Math.ceil(h / th);
  if (offsets?.length !== want || counts?.length !== want)
    throw new ImageError(file, `page ${p}: ${offsets?.length ?? 0} ${block} offsets and ${counts?.length ?? 0} byte counts, but a ${w}×${h} page in ${tw}×${th} ${block}s has ${want}`);
  return { offsets, counts };
}

/** Most pages (IFDs) a TIFF may have: a cell is channels × Z planes (an Allen 3D cell, 7 × ~70). */
export const MAX_TIFF_PAGES = 65536;

/**
 * The number of pages, walking the IFD chain with a bound: geotiff's own count follows a chain
 * that loops back (an IFD whose next offset is an earlier IFD) forever, growing memory.
 */
async function pageCount(tiff: GeoTIFF): Promise<number> {
  const seen = new Map<number, number>([[tiff.firstIFDOffset, 0]]);
  for (let p = 0; ; p++) {
    const next = (await tiff.getImage(p)).fileDirectory.nextIFDByteOffset;
    if (!next) return p + 1;
    if (seen.has(next)) throw new Error(`the IFD chain loops: page ${p} points back at page ${seen.get(next)}'s IFD (offset ${next})`);
    if (p + 1 >= MAX_TIFF_PAGES) throw new Error(`more than ${MAX_TIFF_PAGES} pages (IFDs); a cell is channels × Z planes`);
    seen.set(next, p + 1);
  }
}

/** ImageJ hyperstack metadata ("channels=6", "slices=40", "frames=1"); pages then run channel fastest, then Z, then time. */
function imagejCounts(desc: string | undefined): { channels?: number; slices?: number; frames?: number } {
  const get = (k: string) => {
    const m = desc?.match(new RegExp(`(?:^|\\n)${k}=(\\d+)`));
    return m ? Number(m[1]) : undefined;
  };
  return { channels: get('channels'), slices: get('slices'), frames: get('frames') };
}

/**
 * The rank of a model's images (its image input's spatial size) as the readers take it: 2 (Y, X)
 * or 3 (Y, X, Z). Any other is refused here, before a file is read, so that no reader's message
 * has to guess what the model takes.
 */
export function imageDims(size: readonly number[]): 2 | 3 {
  if (size.length === 2 || size.length === 3) return size.length;
  throw new Error(`the model takes ${size.length}D images (${size.join('×') || 'no spatial axes'}), but statcell reads only 2D images (PNG, TIFF, OME-Zarr) and 3D stacks (TIFF, OME-Zarr)`);
}

export interface TiffOptions {
  /** 3 (default): a Z-stack, C × Y × X × Z; 2: one plane per channel, C × Y × X. */
  dims?: 2 | 3;
  /** The channel count when the file's metadata gives none (e.g. the largest manifest channel index + 1). */
  channelsHint?: number;
  bounds?: ImageBounds;
}

type Plane = Uint8Array | Uint16Array | Float32Array;
type Dtype = NonNullable<Image['dtype']>;

/** The element type of a TIFF page: uint8, uint16 (unsigned integer samples) or float32. */
function pageType(bits: number, format: number | undefined, where: string): Dtype {
  const f = format ?? 1;
  if (f === 1 && bits === 8) return 'uint8';
  if (f === 1 && bits === 16) return 'uint16';
  if (f === 3 && bits === 32) return 'float32';
  throw new Error(`${where}: ${bits}-bit ${({ 1: 'unsigned', 2: 'signed', 3: 'float' } as Record<number, string>)[f] ?? `sample format ${f}`} samples; expected uint8, uint16 or float32`);
}

const ARRAYS = { uint8: Uint8Array, uint16: Uint16Array, float32: Float32Array } as const;

/**
 * Decodes a TIFF's bytes: an OME-TIFF (its OME-XML gives the channels, Z slices and their page
 * order, the channel names and pixel sizes), an ImageJ hyperstack, or plain pages (channel fastest,
 * then Z, with `channelsHint` channels). uint8, uint16 or float32 samples, one per pixel.
 */
export async function decodeTiff(file: string, buf: ArrayBuffer, o: TiffOptions = {}): Promise<Image> {
  const dims = o.dims ?? 3;
  try {
    const tiff = await fromArrayBuffer(buf);
    const { channels: C, spatial, dtype, pages, pageOf, channelNames, pixelSize } = await tiffLayout(file, tiff, o);
    const [Y, X] = spatial;
    const Z = spatial[2] ?? 1;
    for (let p = 0; p < pages; p++) await checkTiffInflation(file, buf, await tiff.getImage(p), p, BYTES[dtype]);
    const data = new ARRAYS[dtype](C * Y * X * Z);
    for (let c = 0; c < C; c++)
      for (let z = 0; z < Z; z++) {
        const [plane] = (await (await tiff.getImage(pageOf(c, z))).readRasters()) as unknown as Plane[];
        for (let i = 0; i < Y * X; i++) data[(c * Y * X + i) * Z + z] = plane[i];
      }
    return { channels: C, spatial, data, dtype, channelNames, pixelSize };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(file, `not a readable ${dims}D TIFF: ${errorText(e)}`);
  }
}

/** What an image's header declares, read without decoding a pixel (data/images.ts readImageHeader). */
export interface ImageHeader {
  channels: number;
  /** [Y, X] or [Y, X, Z]. */
  spatial: number[];
  dtype: Dtype;
  channelNames?: string[];
}

/** Bytes of a file by offset (fewer at its end): what the header readers read through. */
export type ReadAt = (at: number, n: number) => Promise<Uint8Array>;

/**
 * A TIFF's layout from its IFDs only (the pages' sizes, types, the OME-XML or ImageJ metadata;
 * no strip decoded), with the same checks as decodeTiff makes before decoding; `size` is the
 * file's length, and every page's strips or tiles must lie inside it (a truncated file).
 */
export async function tiffHeader(file: string, readAt: ReadAt, size: number, o: TiffOptions = {}): Promise<ImageHeader> {
  const dims = o.dims ?? 3;
  try {
    const source = {
      async fetch(slices: { offset: number; length: number }[]) {
        return Promise.all(slices.map(async ({ offset, length }) => {
          const b = await readAt(offset, Math.max(0, Math.min(length, size - offset)));
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        }));
      },
      async close() {},
    };
    const tiff = await GeoTIFF.fromSource(source as never);
    const { channels, spatial, dtype, pages, channelNames } = await tiffLayout(file, tiff, o);
    for (let p = 0; p < pages; p++) {
      const page = await tiff.getImage(p);
      const { offsets, counts } = await tiffBlocks(file, page, p);
      for (let i = 0; i < offsets.length; i++)
        if (offsets[i] + (counts[i] ?? 0) > size) throw new ImageError(file, `page ${p}: ${page.isTiled ? 'tile' : 'strip'} ${i} (bytes ${offsets[i]}–${offsets[i] + (counts[i] ?? 0)}) runs past the end of the ${size}-byte file (a truncated file?)`);
    }
    return { channels, spatial, dtype, channelNames };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(file, `not a readable ${dims}D TIFF: ${errorText(e)}`);
  }
}

/**
 * The channels, Z slices and page order of a TIFF from its IFDs (OME-XML, ImageJ metadata, or
 * plain pages of `channelsHint` channels), every page's size and type checked, and the declared
 * size against the bounds: everything decodeTiff checks before reading a strip.
 */
async function tiffLayout(file: string, tiff: GeoTIFF, o: TiffOptions) {
  const dims = o.dims ?? 3;
  const pages = await pageCount(tiff);
  const first = await tiff.getImage(0);
  const d = await first.fileDirectory.loadValue('ImageDescription');
  const desc = typeof d === 'string' ? d : undefined;
  const ome = parseOmeXml(desc);
  let C: number;
  let Z: number;
  let pageOf: (c: number, z: number) => number;
  if (ome) {
    if (ome.sizeT !== 1) throw new Error(`OME-XML SizeT="${ome.sizeT}": a cell is one time point`);
    C = ome.sizeC;
    Z = ome.sizeZ;
    if (C * Z > pages) throw new Error(`OME-XML declares SizeC="${C}" × SizeZ="${Z}" planes but the file has ${pages} page(s)`);
    pageOf = (c, z) => omePlaneIndex(ome, c, z);
  } else {
    const ij = imagejCounts(desc);
    // Time points would otherwise be read as more Z slices.
    if ((ij.frames ?? 1) !== 1) throw new Error(`ImageJ frames=${ij.frames}: a cell is one time point`);
    const c = ij.channels ?? o.channelsHint;
    if (!c) throw new Error('the channel count is neither in the file metadata nor given: give the manifest ch_dna, ch_memb and ch_struct columns (ch_seg_cell, ch_seg_nuc optional; each a page index), or write the file as an OME-TIFF or ImageJ hyperstack (docs/formats.md)');
    C = c;
    const from = ij.channels !== undefined ? `ImageJ channels=${C}` : `the manifest's ch_* columns index channels 0…${C - 1}`;
    if (dims === 2 && pages !== C) throw new Error(`a 2D model reads one page per channel: expected ${C} page(s) (${from}), found ${pages} page(s)${pages > C && pages % C === 0 ? ` (${pages / C} Z slices of ${C} channels: a 3D stack for a 2D model?)` : ''}`);
    if (pages % C !== 0) throw new Error(`a 3D model reads ${C} channels × Z pages (${from}; pages channel fastest, then Z): expected a multiple of ${C} pages, found ${pages} page(s): wrong dimensionality?`);
    Z = pages / C;
    if (ij.slices !== undefined && ij.slices !== Z) throw new Error(`ImageJ channels=${C} slices=${ij.slices} declare ${C * ij.slices} pages but the file has ${pages}`);
    pageOf = (c, z) => z * C + c;
  }
  if (dims === 3 && Z < 2) throw new Error(`expected a 3D image of ${C} channels × Z pages, found ${pages} page(s) (${Z} Z slice): wrong dimensionality?`);
  if (dims === 2 && Z !== 1) throw new Error(`expected a 2D image (one plane per channel), found ${Z} Z slices of ${C} channel(s): a 3D image for a 2D model?`);
  const Y = first.getHeight();
  const X = first.getWidth();
  if (ome && (ome.sizeX !== X || ome.sizeY !== Y)) throw new Error(`OME-XML declares SizeX="${ome.sizeX}" SizeY="${ome.sizeY}" but page 0 is ${X}×${Y}`);
  const dtype = pageType(first.getBitsPerSample(), first.fileDirectory.getValue('SampleFormat')?.[0], 'page 0');
  // Every page's declared size and type (its IFD only, nothing decoded) before the first raster is read.
  for (let p = 0; p < pages; p++) {
    const page = p === 0 ? first : await tiff.getImage(p);
    if (page.getWidth() !== X || page.getHeight() !== Y) throw new Error(`page ${p} is ${page.getWidth()}×${page.getHeight()}, page 0 is ${X}×${Y}`);
    if (page.getSamplesPerPixel() !== 1) throw new Error(`page ${p}: ${page.getSamplesPerPixel()} samples per pixel; expected one plane per channel`);
    if (pageType(page.getBitsPerSample(), page.fileDirectory.getValue('SampleFormat')?.[0], `page ${p}`) !== dtype) throw new Error(`page ${p} is not ${dtype} like page 0`);
  }
  const spatial = dims === 3 ? [Y, X, Z] : [Y, X];
  checkDeclared(file, spatial, C, o.bounds, BYTES[dtype]);
  return { channels: C, spatial, dtype, pages, pageOf, channelNames: ome?.channels.length === C ? ome.channels : undefined, pixelSize: ome?.pixelSize };
}

/**
 * Decodes a 3D TIFF's bytes as C × Y × X × Z. The channel count comes from the file's metadata, or else
 * from `channelsHint` (e.g. the largest channel index in the manifest + 1).
 */
export function decodeTiff3d(file: string, buf: ArrayBuffer, channelsHint?: number, bounds?: ImageBounds): Promise<Image> {
  return decodeTiff(file, buf, { dims: 3, channelsHint, bounds });
}

/** Decodes a 2D PNG's bytes as C × Y × X: 8 or 16 bits, grey, grey + alpha, RGB or RGBA (RGB: membrane, structure, DNA in the Allen data; alpha is dropped). */
export function decodePng2d(file: string, buf: ArrayBuffer, bounds?: ImageBounds): Image {
  const head = pngHeader(file, new Uint8Array(buf));
  if (head.depth !== 8 && head.depth !== 16) throw new ImageError(file, `a ${head.depth}-bit PNG; expected 8 or 16 bits per sample`);
  const C = head.samples === 2 || head.samples === 4 ? head.samples - 1 : head.samples;
  checkDeclared(file, [head.height, head.width], head.samples, bounds, head.depth / 8);
  const bytes = new Uint8Array(buf);
  checkPngChunks(file, bytes.length, (at, n) => bytes.subarray(at, at + n));
  checkPngInflation(file, bytes, head);
  let png: ReturnType<typeof decode>;
  try {
    png = decode(new Uint8Array(buf));
  } catch (e) {
    throw new ImageError(file, `not a readable PNG: ${errorText(e)}`);
  }
  if (png.palette) throw new ImageError(file, 'a palette PNG; expected grey or RGB samples');
  const { width: X, height: Y, channels: S } = png;
  const src = png.data as Uint8Array | Uint16Array;
  const data = png.depth === 16 ? new Uint16Array(C * Y * X) : new Uint8Array(C * Y * X);
  for (let c = 0; c < C; c++) for (let i = 0; i < Y * X; i++) data[c * Y * X + i] = src[i * S + c];
  return { channels: C, spatial: [Y, X], data, dtype: png.depth === 16 ? 'uint16' : 'uint8' };
}

/**
 * A PNG's header as decodePng2d checks it (signature, IHDR, bit depth, no palette, the declared
 * size against the bounds) and its chunk list walked to the IEND (a truncated file), reading
 * only the chunks' 8-byte headers through `readAt`: nothing is inflated.
 */
export function pngHeaderOf(file: string, size: number, readAt: (at: number, n: number) => Uint8Array, bounds?: ImageBounds): ImageHeader {
  const head = pngHeader(file, readAt(0, 33));
  if (head.depth !== 8 && head.depth !== 16) throw new ImageError(file, `a ${head.depth}-bit PNG; expected 8 or 16 bits per sample`);
  if (readAt(25, 1)[0] === 3) throw new ImageError(file, 'a palette PNG; expected grey or RGB samples');
  checkDeclared(file, [head.height, head.width], head.samples, bounds, head.depth / 8);
  checkPngChunks(file, size, readAt);
  const C = head.samples === 2 || head.samples === 4 ? head.samples - 1 : head.samples;
  return { channels: C, spatial: [head.height, head.width], dtype: head.depth === 16 ? 'uint16' : 'uint8' };
}

/** The kind of image file from its first bytes: 'png', 'tiff' (classic TIFF, 42, or BigTIFF, 43: large OME-TIFFs, `.btf`), or undefined. */
export function sniff(bytes: Uint8Array): 'png' | 'tiff' | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  const magic = (m: number) => (bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === m && bytes[3] === 0) || (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === m);
  if (bytes.length >= 4 && (magic(42) || magic(43))) return 'tiff';
  return undefined;
}

/**
 * Which reader a file's first bytes call for (decodeImage, and readImageHeader in data/images.ts):
 * by signature; a broken file falls back on its name, so that the error says what it failed to be.
 * A PNG for a model that does not take 2D images, and a file that is neither, are refused here.
 */
export function imageKind(file: string, first: Uint8Array, o: TiffOptions = {}): 'png' | 'tiff' {
  const kind = sniff(first) ?? (/\.png$/i.test(file) ? 'png' : /\.tiff?$/i.test(file) ? 'tiff' : undefined);
  if (!kind) throw new ImageError(file, 'neither a PNG nor a TIFF (no PNG or TIFF signature in its first bytes)');
  const dims = o.dims ?? 2;
  if (kind === 'png' && dims !== 2) throw new ImageError(file, `a PNG is a 2D image but the model takes ${dims}D input${o.bounds ? ` (${o.bounds.size.join('×')})` : ''}${dims === 3 ? '; give a TIFF or OME-Zarr Z-stack' : ''}`);
  return kind;
}

/** Decodes a PNG or TIFF from its bytes, whichever it is (by its signature, else its name): for a file dropped in the page and for the manifest's files. */
export async function decodeImage(file: string, buf: ArrayBuffer, o: TiffOptions = {}): Promise<Image> {
  return imageKind(file, new Uint8Array(buf, 0, Math.min(8, buf.byteLength)), o) === 'png' ? decodePng2d(file, buf, o.bounds) : decodeTiff(file, buf, o);
}
