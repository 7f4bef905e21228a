// Hostile inputs to the data readers: image "bombs" (tiny files declaring gigapixels), a FIFO
// and /dev/zero. Each must be refused at once, with little memory, naming the file (and the
// manifest row when read through a data set).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { Zlib, zlibSync } from 'fflate';
import { describe, expect, test } from 'vitest';
import { CellDataset } from '../../data/dataset.ts';
import { decodeImage, imageDims } from '../../data/decode.ts';
import { readImage, readPng2d, readTiff3d } from '../../data/images.ts';
import { parseManifest, readManifest } from '../../data/manifest.ts';
import { encodeTiff, imagejDescription } from '../../data/tiff.ts';

const dir = mkdtempSync(join(tmpdir(), 'statcell-readers-'));

/** CRC-32 (ISO 3309, as PNG uses), written out so the crafted header is a valid PNG chunk. */
function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A real small RGB PNG whose IHDR is rewritten (with a correct CRC) to declare width × height. */
function pngDeclaring(width: number, height: number): Uint8Array {
  const png = encode({ width: 2, height: 2, channels: 3, depth: 8, data: new Uint8Array(12).fill(100) });
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  v.setUint32(16, width);
  v.setUint32(20, height);
  v.setUint32(29, crc32(png.subarray(12, 29))); // chunk type + 13 data bytes
  return png;
}

/** A 1-channel × 2-slice uint8 TIFF whose IFDs are rewritten to declare width × height. */
function tiffDeclaring(width: number, height: number): Uint8Array {
  const t = encodeTiff({ width: 2, height: 2, pages: [new Uint8Array(4), new Uint8Array(4)], description: imagejDescription(1, 2) });
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  for (let ifd = v.getUint32(4, true); ifd; ) {
    const n = v.getUint16(ifd, true);
    for (let i = 0; i < n; i++) {
      const e = ifd + 2 + i * 12;
      const tag = v.getUint16(e, true);
      if (tag === 256) v.setUint32(e + 8, width, true);
      if (tag === 257 || tag === 278) v.setUint32(e + 8, height, true);
    }
    ifd = v.getUint32(ifd + 2 + n * 12, true);
  }
  return t;
}

/** Runs `f`, expecting a rejection matching `re` within 1 s and < 200 MB of extra RSS. */
async function refusedQuickly(f: () => unknown, re: RegExp): Promise<void> {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let err: unknown;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  const ms = performance.now() - t0;
  const mb = (process.memoryUsage().rss - rss0) / 1e6;
  expect(err, 'expected an error').toBeInstanceOf(Error);
  expect((err as Error).message).toMatch(re);
  expect(ms).toBeLessThan(1000);
  expect(mb).toBeLessThan(200);
}

/**
 * A valid 64×64 RGB PNG header whose one IDAT holds `mb` MB of zeros deflated (about 1000:1):
 * a zlib bomb of a small declared size.
 */
function pngInflatingTo(mb: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const c = new Uint8Array(12 + data.length);
    const v = new DataView(c.buffer);
    v.setUint32(0, data.length);
    c.set(new TextEncoder().encode(type), 4);
    c.set(data, 8);
    v.setUint32(8 + data.length, crc32(c.subarray(4, 8 + data.length)));
    return c;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 64);
  new DataView(ihdr.buffer).setUint32(4, 64);
  ihdr.set([8, 2, 0, 0, 0], 8);
  // Streamed through zlib so the test itself never holds the inflated bytes.
  const z = new Zlib({ level: 9 });
  const parts: Uint8Array[] = [];
  z.ondata = (d) => parts.push(d);
  const zeros = new Uint8Array(1 << 20);
  for (let i = 0; i < mb; i++) z.push(zeros);
  z.push(new Uint8Array(0), true);
  const idat = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (idat.set(p, at), at + p.length), 0);
  const sig = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  const all = [sig, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(all.reduce((a, p) => a + p.length, 0));
  all.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

describe('zlib bombs: image data inflating beyond the declared size', () => {
  // 256 MB of zeros (crafting GBs takes minutes of zlib here); the check stops inflating a few KB
  // past the declared 12 KB, so the refusal costs the same for any larger bomb.
  test.each([16, 256])('a 64×64 PNG whose IDAT inflates to %i MB: refused within 1 s and 200 MB, naming the file', async (mb) => {
    const f = join(dir, `zbomb-${mb}.png`);
    const bytes = pngInflatingTo(mb);
    expect(bytes.length).toBeLessThan(1e6); // a few hundred KB on disk
    writeFileSync(f, bytes);
    await refusedQuickly(() => readPng2d(f, { size: [64, 64] }), /zbomb-\d+\.png: its image data inflate to more than the 12352 bytes its 64×64 header declares \(a compression bomb\)/);
  }, 60_000);

  test('a 64×64 deflate TIFF whose strip inflates to 16 MB: refused within 1 s and 200 MB, naming the file; the honest file reads', async () => {
    const honest = encodeTiff({ width: 64, height: 64, pages: [new Uint8Array(64 * 64).fill(3)] });
    const fine = join(dir, 'fine.tiff');
    writeFileSync(fine, honest);
    const img = await readImage(fine, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } });
    expect([img.channels, ...img.spatial, img.data[100]]).toEqual([1, 64, 64, 3]);
    // A page of the same size whose strip is 16 MB of zeros deflated.
    const bomb = zlibSync(new Uint8Array(16 << 20), { level: 9 });
    const f = join(dir, 'zbomb.tiff');
    writeFileSync(f, tiffWithStrip(bomb, 8));
    await refusedQuickly(() => readImage(f, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } }), /zbomb\.tiff: page 0: a deflate strip inflates to more than the 4096 bytes the page declares \(a compression bomb\)/);
  });

  test('a PNG of exactly its declared size still reads', async () => {
    const f = join(dir, 'fine.png');
    writeFileSync(f, encode({ width: 64, height: 64, channels: 3, depth: 8, data: new Uint8Array(64 * 64 * 3).fill(7) }));
    const img = await readPng2d(f, { size: [64, 64] });
    expect([img.channels, ...img.spatial]).toEqual([3, 64, 64]);
  });
});

/** A TIFF of one 64×64 uint8 page with its strip replaced by `strip` (appended) under `compression`. */
function tiffWithStrip(strip: Uint8Array, compression: number): Uint8Array {
  const honest = encodeTiff({ width: 64, height: 64, pages: [new Uint8Array(64 * 64)] });
  const t = new Uint8Array(honest.length + strip.length);
  t.set(honest);
  t.set(strip, honest.length);
  const v = new DataView(t.buffer);
  const ifd = v.getUint32(4, true);
  for (let i = 0; i < v.getUint16(ifd, true); i++) {
    const e = ifd + 2 + i * 12;
    const tag = v.getUint16(e, true);
    if (tag === 259) v.setUint16(e + 8, compression, true);
    if (tag === 273) v.setUint32(e + 8, honest.length, true);
    if (tag === 279) v.setUint32(e + 8, strip.length, true);
  }
  return t;
}

/**
 * A TIFF LZW code stream (MSB-first codes, 9 to 12 bits), written as a TIFF decoder reads it:
 * the dictionary grows by one entry per code after the first, and the code width one code early.
 */
class LzwWriter {
  private bits: number[] = [];
  entries = 258;
  private width = 9;
  private first = true;
  put(code: number): void {
    for (let k = this.width - 1; k >= 0; k--) this.bits.push((code >> k) & 1);
    if (code === 256) {
      [this.entries, this.width, this.first] = [258, 9, true];
      return;
    }
    if (!this.first && this.entries < 4095) this.entries++;
    this.first = false;
    if (this.entries + 1 >= 1 << this.width) {
      if (this.width === 12) this.first = true; // full: no new entries
      else this.width++;
    }
  }
  bytes(): Uint8Array {
    this.put(257);
    const out = new Uint8Array(Math.ceil(this.bits.length / 8));
    this.bits.forEach((b, i) => (out[i >> 3] |= b << (7 - (i & 7))));
    return out;
  }
}

describe('TIFF strips that decode beyond their declared size, and IFD chains that never end', () => {
  test('LZW: an honest strip reads; one whose codes stand for 240 MB (95 KB on disk), or that uses codes past the decoder\'s dictionary, is refused within 1 s and 200 MB', async () => {
    const pixels = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 7) % 251);
    const honest = new LzwWriter();
    for (const p of pixels) {
      if (honest.entries >= 4000) honest.put(256);
      honest.put(p);
    }
    const fine = join(dir, 'lzw.tiff');
    writeFileSync(fine, tiffWithStrip(honest.bytes(), 5));
    const img = await readImage(fine, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } });
    expect(Array.from(img.data)).toEqual(Array.from(pixels));
    // Codes 258, 259, … stand for runs of 2, 3, … zeros; once the dictionary is full, each
    // repeat of its longest entry stands for ~3800 bytes.
    const bomb = new LzwWriter();
    bomb.put(0);
    while (bomb.entries < 4093) bomb.put(bomb.entries);
    for (let i = 0; i < 60000; i++) bomb.put(4092);
    const f = join(dir, 'lzw-bomb.tiff');
    writeFileSync(f, tiffWithStrip(bomb.bytes(), 5));
    await refusedQuickly(() => readImage(f, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } }), /lzw-bomb\.tiff: page 0: an LZW strip decodes to more than the 4096 bytes the page declares \(a compression bomb\)/);
    // 5 KB: 3835 literals (within the page's size), then code 4093 twice: past geotiff's
    // dictionary, whose decoder, looking the entry up, grows an array until V8 aborts the process.
    const loop = new LzwWriter();
    while (loop.entries < 4093) loop.put(0);
    loop.put(4093);
    loop.put(4093);
    const g = join(dir, 'lzw-4093.tiff');
    writeFileSync(g, tiffWithStrip(loop.bytes(), 5));
    await refusedQuickly(() => readImage(g, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } }), /lzw-4093\.tiff: page 0: not a readable LZW strip: LZW code 4093 beyond the 4093-entry dictionary/);
  });

  test('PackBits: 1 MB of runs standing for 64 MB is refused within 1 s and 200 MB (it crashed the process)', async () => {
    const f = join(dir, 'packbits-bomb.tiff');
    writeFileSync(f, tiffWithStrip(new Uint8Array(1 << 20).map((_, i) => (i % 2 ? 0 : 0x81)), 32773));
    await refusedQuickly(() => readImage(f, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } }), /packbits-bomb\.tiff: page 0: a PackBits strip decodes to more than the 4096 bytes/);
  });

  test('truncated strips are named with what they hold and need (geotiff said "Offset is outside the bounds of the DataView")', async () => {
    const read = (name: string, t: Uint8Array) => {
      const f = join(dir, name);
      writeFileSync(f, t);
      return readImage(f, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } });
    };
    await expect(read('raw-short.tiff', tiffWithStrip(new Uint8Array(1000), 1))).rejects.toThrow(/raw-short\.tiff: page 0: uncompressed strip 0 holds 1000 bytes; its 64 row\(s\) need 4096 \(a truncated file\?\)/);
    const cut = tiffWithStrip(new Uint8Array(4096), 1);
    await expect(read('raw-cut.tiff', cut.subarray(0, cut.length - 3000))).rejects.toThrow(/raw-cut\.tiff: page 0: strip 0 \(bytes \d+–\d+\) runs past the end of the \d+-byte file \(a truncated file\?\)/);
    await expect(read('deflate-short.tiff', tiffWithStrip(zlibSync(new Uint8Array(1000)), 8))).rejects.toThrow(/deflate-short\.tiff: page 0: deflate strip 0 decodes to 1000 bytes; its 64 row\(s\) need 4096/);
    expect((await read('raw.tiff', tiffWithStrip(new Uint8Array(4096).fill(9), 1))).data[4095]).toBe(9);
  });

  test('a compression whose output is not bounded (JPEG) is refused, naming it', async () => {
    const f = join(dir, 'jpeg.tiff');
    writeFileSync(f, tiffWithStrip(new Uint8Array(16), 7));
    await expect(readImage(f, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } })).rejects.toThrow(/jpeg\.tiff: page 0: Compression 7; statcell reads uncompressed, deflate, LZW or PackBits TIFFs/);
  });

  test('an IFD whose next offset points back at itself is refused at once (it looped, growing memory)', async () => {
    const t = encodeTiff({ width: 64, height: 64, pages: [new Uint8Array(64 * 64)] });
    const v = new DataView(t.buffer);
    const ifd = v.getUint32(4, true);
    v.setUint32(ifd + 2 + v.getUint16(ifd, true) * 12, ifd, true);
    const f = join(dir, 'ifd-loop.tiff');
    writeFileSync(f, t);
    await refusedQuickly(() => readImage(f, { dims: 2, channelsHint: 1, bounds: { size: [64, 64] } }), /ifd-loop\.tiff: not a readable 2D TIFF: the IFD chain loops: page 0 points back at page 0's IFD/);
  });
});

describe('image bombs are refused before decoding', () => {
  const png = join(dir, 'bomb.png');
  writeFileSync(png, pngDeclaring(20000, 20000));
  const tiff = join(dir, 'bomb.tiff');
  writeFileSync(tiff, tiffDeclaring(20000, 20000));

  test('PNG declaring 20000×20000', async () => {
    await refusedQuickly(() => readPng2d(png), /bomb\.png: declares 20000×20000 × 3 channel\(s\).*refused before decoding/);
    await refusedQuickly(() => readPng2d(png, { size: [64, 64], fit: 'crop-pad' }), /bomb\.png: declares 20000×20000/);
  });
  test('TIFF declaring 20000×20000 × 2 slices', async () => {
    await refusedQuickly(() => readTiff3d(tiff, 1), /bomb\.tiff: declares 20000×20000×2 × 1 channel\(s\).*refused before decoding/);
  });
  test('exact fit: any other size is refused from the header; crop-pad: up to 4× the model', async () => {
    const p = join(dir, 'p65.png');
    writeFileSync(p, encode({ width: 64, height: 65, channels: 3, depth: 8, data: new Uint8Array(64 * 65 * 3) }));
    await expect(readPng2d(p, { size: [64, 64] })).rejects.toThrow(/p65\.png: the image is 65×64 but the model takes 64×64/);
    expect((await readPng2d(p, { size: [64, 64], fit: 'crop-pad' })).spatial).toEqual([65, 64]);
    await expect(readPng2d(p, { size: [16, 16], fit: 'crop-pad' })).rejects.toThrow(/p65\.png: is 65×64, more than 4× the model's 16×16/);
    await expect(readPng2d(p, { size: [65, 64, 8] })).rejects.toThrow(/is 65×64 \(2D\) but the model takes 65×64×8 \(3D\)/);
    // A real bomb-sized TIFF header checked against a 3D model size, per page, before decoding.
    const t = join(dir, 't300.tiff');
    writeFileSync(t, tiffDeclaring(300, 300));
    await expect(readTiff3d(t, 1, { size: [64, 64, 2], fit: 'crop-pad' })).rejects.toThrow(/t300\.tiff: is 300×300×2, more than 4×/);
  });
  test('through a data set, the error names the manifest row, the CellId and the file', async () => {
    const manifest = join(dir, 'm.csv');
    const rows = parseManifest(`CellId,StructureDisplayName,save_reg_path_flat\n1,Golgi,bomb.png\n`, manifest);
    const ds = new CellDataset(rows, { dims: 2, size: [64, 64], manifestFile: manifest });
    await refusedQuickly(() => ds.load(0), /m\.csv:2 \(CellId 1\): .*bomb\.png: declares 20000×20000/);
  });
});

describe("the model's image rank", () => {
  test('a PNG for a 3D model says 3D; a 1D model is refused by its rank before any file is read (it said "takes 3D input (32)")', async () => {
    const bytes = encode({ width: 4, height: 4, channels: 3, depth: 8, data: new Uint8Array(48) });
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    await expect(decodeImage('c.png', buf, { dims: imageDims([4, 4, 2]), bounds: { size: [4, 4, 2] } })).rejects.toThrow(/^c\.png: a PNG is a 2D image but the model takes 3D input \(4×4×2\); give a TIFF or OME-Zarr Z-stack$/);
    expect([imageDims([160, 96]), imageDims([160, 96, 64])]).toEqual([2, 3]);
    expect(() => imageDims([32])).toThrow(/^the model takes 1D images \(32\), but statcell reads only 2D images \(PNG, TIFF, OME-Zarr\) and 3D stacks \(TIFF, OME-Zarr\)$/);
    expect(() => imageDims([2, 2, 2, 2])).toThrow(/takes 4D images/);
  });
});

describe('non-regular files are refused without blocking', () => {
  const fifo = join(dir, 'fifo.csv');
  execFileSync('mkfifo', [fifo]);

  test('a FIFO as the manifest, and as an image', async () => {
    await refusedQuickly(() => readManifest(fifo), /fifo\.csv: cannot read the manifest: not a regular file: it is a FIFO/);
    await refusedQuickly(() => readPng2d(fifo), /fifo\.csv: cannot read: not a regular file: it is a FIFO/);
  });
  test('/dev/zero as the manifest and as an image path in a manifest row', async () => {
    await refusedQuickly(() => readManifest('/dev/zero'), /\/dev\/zero: cannot read the manifest: not a regular file: it is a character device/);
    const rows = parseManifest(`CellId,StructureDisplayName,save_reg_path_flat\n9,Golgi,/dev/zero\n`, join(dir, 'z.csv'));
    const ds = new CellDataset(rows, { dims: 2, size: [64, 64], manifestFile: 'z.csv' });
    await refusedQuickly(() => ds.load(0), /z\.csv:2 \(CellId 9\): \/dev\/zero: cannot read: not a regular file: it is a character device/);
  });
  test('a directory', async () => {
    await refusedQuickly(() => readManifest(dir), /cannot read the manifest: (not a regular file: it is a directory|EISDIR)/);
  });
});
