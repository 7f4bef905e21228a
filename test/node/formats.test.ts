// The Allen Cell tools' formats (issue 10): OME-Zarr and OME-TIFF written with physical pixel sizes
// and channel names and read back bit for bit; the OME-Zarr checked by an independent path (its
// JSON against the NGFF 0.4 fields, a chunk inflated with node:zlib, zarrita's own reader); 16-bit
// PNG/TIFF scaled against float64; hostile OME-Zarr refused before its chunks are read; a manifest
// of OME-Zarr cells trains a step.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { encode } from 'fast-png';
import { zlibSync } from 'fflate';
import { describe, expect, test } from 'vitest';
import * as zarr from 'zarrita';
import { CellDataset } from '../../data/dataset.ts';
import { decodeImage, decodeTiff, readImage, readOmeZarr, writeOmeZarr } from '../../data/images.ts';
import { parseManifest, pixelSizeOf } from '../../data/manifest.ts';
import { decodeCell } from '../../data/preprocess.ts';
import { DEFAULT_PIXEL_SIZE, omeXml, type NamedChannel, type PixelSize } from '../../data/ome.ts';
import { encodeTiff, imagejDescription } from '../../data/tiff.ts';
import { train } from '../../train/trainer.ts';
import { omeTiffOf } from '../../data/ome-tiff.ts';
import { fileKinds, writeGeneratedFiles } from '../../cli/generate.ts';
import { openDevice, rng } from '../harness.ts';
import { tinyModel } from './tiny-model.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-formats-'));
const PS: PixelSize = { x: 0.2, y: 0.25, z: 0.5, source: 'test' };

/** Channels of random float32 values (not in [0, 1] only: the files keep any float bit for bit), Z fastest. */
function channels(size: number[], seed: number): NamedChannel[] {
  const r = rng(seed);
  const n = size.reduce((a, b) => a * b, 1);
  return [
    { name: 'membrane', data: Float32Array.from({ length: n }, () => r() * 3 - 1), color: [1, 0, 1] },
    { name: 'Golgi', data: Float32Array.from({ length: n }, () => r()), color: [0, 1, 0] },
    { name: 'DNA', data: Float32Array.from({ length: n }, () => r() / 7), color: [0.25, 0.55, 1] },
  ];
}

const bitsEqual = (a: ArrayLike<number>, b: Float32Array) => Buffer.from(Float32Array.from(a).buffer).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('OME-Zarr and OME-TIFF written and read', () => {
  for (const size of [[7, 5], [6, 5, 4]]) {
    test(`${size.length}D: written → read equal bit for bit, with names and pixel sizes`, async () => {
      const ch = channels(size, size.length);
      const n = ch[0].data.length;
      const dir = join(tmp(), 'cell.ome.zarr');
      await writeOmeZarr(dir, { size, channels: ch, pixelSize: PS });
      const z = await readImage(dir, { dims: size.length as 2 | 3, bounds: { size } });
      const tiffBytes = omeTiffOf(size, ch, PS);
      const t = await decodeTiff('cell.ome.tiff', tiffBytes.buffer.slice(tiffBytes.byteOffset, tiffBytes.byteOffset + tiffBytes.byteLength) as ArrayBuffer, { dims: size.length as 2 | 3, bounds: { size } });
      for (const img of [z, t]) {
        expect(img.spatial).toEqual(size);
        expect(img.dtype).toBe('float32');
        expect(img.channelNames).toEqual(['membrane', 'Golgi', 'DNA']);
        expect(img.pixelSize).toMatchObject(size.length === 3 ? { x: 0.2, y: 0.25, z: 0.5 } : { x: 0.2, y: 0.25 });
        ch.forEach((c, k) => expect(bitsEqual(img.data.subarray(k * n, (k + 1) * n), c.data), `${c.name}`).toBe(true));
      }
    });
  }

  test('a 3-channel OME file is read by its channel names, whatever their order; unnamed or ambiguous names keep the order membrane, structure, DNA', async () => {
    const size = [4, 5];
    const [memb, golgi, dna] = channels(size, 11);
    const read = async (cs: NamedChannel[]) => {
      const bytes = omeTiffOf(size, cs, PS);
      return decodeCell('c.ome.tiff', bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, { size, intensityScale: 1 });
    };
    const expectRoles = (t: { reference: Float32Array; structure: Float32Array }, m: NamedChannel, s: NamedChannel, d: NamedChannel) => {
      expect(bitsEqual(m.data, t.reference.subarray(0, 20)), 'membrane').toBe(true);
      expect(bitsEqual(d.data, t.reference.subarray(20)), 'DNA').toBe(true);
      expect(bitsEqual(s.data, t.structure), 'structure').toBe(true);
    };
    expectRoles(await read([dna, memb, golgi]), memb, golgi, dna);
    expectRoles(await read([{ ...golgi, name: 'Hoechst 33342' }, { ...dna, name: 'Golgi' }, { ...memb, name: 'CellMask Deep Red' }]), memb, dna, golgi);
    // A structure named like a dye is not taken for the reference channel: exact names win.
    const envelope = { ...golgi, name: 'nuclear envelope' };
    expectRoles(await read([envelope, dna, memb]), memb, envelope, dna);
    const plasma = { ...golgi, name: 'plasma membrane' };
    expectRoles(await read([dna, plasma, memb]), memb, plasma, dna);
    // Names that place nothing: the order stands.
    expectRoles(await read([{ ...memb, name: 'C0' }, { ...golgi, name: 'C1' }, { ...dna, name: 'C2' }]), memb, golgi, dna);
  });

  test('the OME-Zarr opens with an independent reader: NGFF 0.4 fields, a chunk through node:zlib, zarrita', async () => {
    const size = [6, 5, 4];
    const [Y, X, Z] = size;
    const ch = channels(size, 9);
    const dir = join(tmp(), 'cell.ome.zarr');
    await writeOmeZarr(dir, { size, channels: ch, pixelSize: PS, name: 'Golgi' });
    const attrs = JSON.parse(readFileSync(join(dir, '.zattrs'), 'utf8'));
    expect(JSON.parse(readFileSync(join(dir, '.zgroup'), 'utf8'))).toEqual({ zarr_format: 2 });
    const ms = attrs.multiscales[0];
    expect(ms.version).toBe('0.4');
    expect(ms.axes).toEqual([
      { name: 'c', type: 'channel' },
      { name: 'z', type: 'space', unit: 'micrometer' },
      { name: 'y', type: 'space', unit: 'micrometer' },
      { name: 'x', type: 'space', unit: 'micrometer' },
    ]);
    expect(ms.datasets).toEqual([{ path: '0', coordinateTransformations: [{ type: 'scale', scale: [1, 0.5, 0.25, 0.2] }] }]);
    expect(attrs.omero.channels.map((c: { label: string; color: string }) => [c.label, c.color])).toEqual([['membrane', 'FF00FF'], ['Golgi', '00FF00'], ['DNA', '408CFF']]);
    expect(attrs.statcell.pixelSizeSource).toBe('test');
    // Vol-E's own reading of the metadata (@aics/vole-core, the Allen Cell viewer's engine; its
    // zarr_utils have no type declarations of their own, hence the untyped imports).
    const VOLE = '@aics/vole-core/es/loaders/zarr_utils/';
    const { getScale, parseHexColor, remapAxesToTCZYX } = await import(`${VOLE}utils.js`);
    const { validateOMEZarrMetadata } = await import(`${VOLE}validation.js`);
    validateOMEZarrMetadata(attrs);
    const tczyx = remapAxesToTCZYX(ms.axes);
    expect(tczyx).toEqual([-1, 0, 1, 2, 3]);
    expect(getScale(ms.datasets[0], tczyx)).toEqual([1, 1, 0.5, 0.25, 0.2]);
    expect(attrs.omero.channels.map((c: { color: string }) => parseHexColor(c.color))).toEqual([[255, 0, 255], [0, 255, 0], [64, 140, 255]]);
    const meta = JSON.parse(readFileSync(join(dir, '0', '.zarray'), 'utf8'));
    expect(meta).toMatchObject({ zarr_format: 2, shape: [3, Z, Y, X], chunks: [1, Z, Y, X], dtype: '<f4', order: 'C', dimension_separator: '/', compressor: { id: 'zlib' } });
    // Channel 1's chunk, inflated by node:zlib, is that channel in OME's [z, y, x] order.
    const raw = inflateSync(readFileSync(join(dir, '0', '1', '0', '0', '0')));
    const got = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const want = new Float32Array(Z * Y * X);
    for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) want[(z * Y + y) * X + x] = ch[1].data[(y * X + x) * Z + z];
    expect(bitsEqual(got, want)).toBe(true);
    // zarrita over a plain file store (no statcell code in the path).
    const store = { get: async (k: string) => { try { return new Uint8Array(readFileSync(join(dir, k))); } catch { return undefined; } } };
    const arr = await zarr.open.v2(zarr.root(store).resolve('0'), { kind: 'array' });
    expect([arr.shape, arr.dtype]).toEqual([[3, Z, Y, X], 'float32']);
    const all = await zarr.get(arr, [2, null, null, null]);
    const dna = new Float32Array(Z * Y * X);
    for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) dna[(z * Y + y) * X + x] = ch[2].data[(y * X + x) * Z + z];
    expect(bitsEqual(all.data as Float32Array, dna)).toBe(true);
  });

  test('OME-XML of the OME-TIFF: physical sizes with units, channel names and colours, the sizes’ source', () => {
    const b = omeTiffOf([4, 3, 2], channels([4, 3, 2], 1), PS);
    const xml = Buffer.from(b).toString('utf8');
    expect(xml).toMatch(/PhysicalSizeX="0.2" PhysicalSizeXUnit="µm" PhysicalSizeY="0.25" PhysicalSizeYUnit="µm" PhysicalSizeZ="0.5" PhysicalSizeZUnit="µm"/);
    expect(xml).toMatch(/<Channel ID="Channel:0:0" Name="membrane" SamplesPerPixel="1" Color="-16711681"\/>/); // 0xFF00FFFF as signed int32
    expect(xml).toMatch(/<Description>statcell; pixel size: test<\/Description>/);
  });

  test('generate --format all: PNG, OME-TIFF and OME-Zarr per cell, channels in the paper\'s order and named', async () => {
    const size = [6, 5];
    const [m, g, d] = channels(size, 2).map((c) => c.data);
    const out = tmp();
    const files = await writeGeneratedFiles({ size, cells: [{ channels: { dna: d, structure: g, membrane: m }, label: 'Golgi', source: 'test', cell: 0 }] }, out, 'all', PS);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual(['000-Golgi.png', '000-Golgi.ome.tiff', '000-Golgi.ome.zarr']);
    // Two labels of one stem in one cell get two files (they shared 000-Alpha_A_.png).
    const twice = await writeGeneratedFiles({ size, cells: ['Alpha (A)', 'Alpha [A]'].map((label) => ({ channels: { dna: d, structure: g, membrane: m }, label, source: 'test', cell: 0 })) }, tmp(), 'png', PS);
    expect(new Set(twice).size).toBe(2);
    const z = await readOmeZarr(files[2]);
    expect(z.channelNames).toEqual(['membrane', 'Golgi', 'DNA']);
    expect(bitsEqual(z.data.subarray(30, 60), g)).toBe(true);
    expect(JSON.parse(readFileSync(join(files[2], '.zattrs'), 'utf8')).omero.channels.map((c: { color: string }) => c.color)).toEqual(['FF00FF', '00FF00', '408CFF']);
  });

  test('--format values', () => {
    expect([...fileKinds('all')]).toEqual(['png', 'ome-tiff', 'zarr']);
    expect([...fileKinds('both')]).toEqual(['png', 'ome-tiff']);
    expect([...fileKinds('tiff')]).toEqual(['ome-tiff']);
    expect(() => fileKinds('jpeg')).toThrow(/--format jpeg: expected png, ome-tiff, tiff, zarr, both, all/);
  });
});

describe('pixel sizes come from the manifest or a stated default', () => {
  const head = 'CellId,StructureDisplayName,save_reg_path_flat';
  test('columns, the default, and rows that disagree', () => {
    expect(pixelSizeOf(parseManifest(`${head}\n1,Golgi,a.png\n`, 'm.csv'), 'm.csv')).toBe(DEFAULT_PIXEL_SIZE);
    expect(DEFAULT_PIXEL_SIZE.source).toMatch(/assumed/);
    const rows = parseManifest(`${head},PhysicalSizeX,PhysicalSizeY\n1,Golgi,a.png,0.3,0.3\n2,Golgi,b.png,0.3,0.3\n`, 'm.csv');
    expect(pixelSizeOf(rows, 'm.csv')).toEqual({ x: 0.3, y: 0.3, source: 'm.csv: PhysicalSizeX/Y columns (µm)' });
    expect(() => pixelSizeOf(parseManifest(`${head},PhysicalSizeX,PhysicalSizeY\n1,Golgi,a.png,0.3,0.3\n2,Golgi,b.png,0.4,0.3\n`, 'm.csv'), 'm.csv')).toThrow(/m\.csv:3: PhysicalSizeX\/Y\/Z 0\.4\/0\.3\/ differ from line 2/);
    expect(() => parseManifest(`${head},PhysicalSizeX,PhysicalSizeY\n1,Golgi,a.png,-1,0.3\n`, 'm.csv')).toThrow(/m\.csv:2: PhysicalSizeX must be a positive number, got '-1'/);
  });
});

describe('16-bit PNG and TIFF through the manifest, scaled as declared', () => {
  test('16-bit PNG: dtype maximum, and an intensity_scale column, against float64', async () => {
    const dir = tmp();
    const [Y, X] = [6, 5];
    const r = rng(3);
    const px = Uint16Array.from({ length: Y * X * 3 }, (_, i) => (i === 0 ? 65535 : Math.floor(r() * 65536)));
    const small = Uint16Array.from(px, (v) => v % 4096);
    writeFileSync(join(dir, 'a.png'), encode({ width: X, height: Y, data: px, channels: 3, depth: 16 }));
    writeFileSync(join(dir, 'b.png'), encode({ width: X, height: Y, data: small, channels: 3, depth: 16 }));
    const rows = parseManifest('CellId,StructureDisplayName,save_reg_path_flat,intensity_scale\n1,Golgi,a.png,\n2,Golgi,b.png,4095\n', join(dir, 'm.csv'));
    const b = await new CellDataset(rows, { dims: 2, size: [Y, X] }).batch([0, 1]);
    const n = Y * X;
    [px, small].forEach((src, k) => {
      const scale = k === 0 ? 65535 : 4095;
      // R membrane, G structure, B DNA; interleaved in the PNG.
      for (let i = 0; i < n; i++) {
        expect(b.reference[k * 2 * n + i]).toBe(Math.fround(src[i * 3] / scale));
        expect(b.reference[k * 2 * n + n + i]).toBe(Math.fround(src[i * 3 + 2] / scale));
        expect(b.structure[k * n + i]).toBe(Math.fround(src[i * 3 + 1] / scale));
      }
    });
    expect(b.reference[0]).toBe(1);
  });

  test('16-bit 3D TIFF with ch_* columns: masked, divided by 65535, against float64', async () => {
    const dir = tmp();
    const [Y, X, Z, C] = [4, 3, 2, 5];
    const r = rng(4);
    // ImageJ order: channel fastest, then Z. Channels: 0 seg_nuc, 1 seg_cell, 2 DNA, 3 membrane, 4 structure.
    const planes = Array.from({ length: Z * C }, (_, p) => Uint16Array.from({ length: Y * X }, () => (p % C < 2 ? (r() < 0.5 ? 0 : 255) : Math.floor(r() * 65536))));
    writeFileSync(join(dir, 'c.tiff'), encodeTiff({ width: X, height: Y, pages: planes, description: imagejDescription(C, Z) }));
    const rows = parseManifest('CellId,StructureDisplayName,save_reg_path,ch_dna,ch_memb,ch_struct,ch_seg_cell,ch_seg_nuc\n1,Golgi,c.tiff,2,3,4,1,0\n', join(dir, 'm.csv'));
    const b = await new CellDataset(rows, { dims: 3, size: [Y, X, Z] }).batch([0]);
    const n = Y * X * Z;
    const at = (c: number, y: number, x: number, z: number) => planes[z * C + c][y * X + x];
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++)
        for (let z = 0; z < Z; z++) {
          const i = (y * X + x) * Z + z;
          expect(b.reference[i]).toBe(at(1, y, x, z) > 0 ? Math.fround(at(3, y, x, z) / 65535) : 0);
          expect(b.reference[n + i]).toBe(at(0, y, x, z) > 0 ? Math.fround(at(2, y, x, z) / 65535) : 0);
          expect(b.structure[i]).toBe(at(1, y, x, z) > 0 ? Math.fround(at(4, y, x, z) / 65535) : 0);
        }
  });

  test('OME-TIFFs through the manifest: pages in XYCZT order (uint16, ch_* columns) and statcell\'s own 3-channel float files', async () => {
    const dir = tmp();
    const [Y, X, Z, C] = [3, 4, 2, 5];
    // XYCZT: channel fastest, then Z (IFD = c + C·z); channels 0 seg_nuc, 1 seg_cell, 2 DNA, 3 membrane, 4 structure.
    const val = (c: number, z: number, i: number) => (c < 2 ? ((i + z) % 3 ? 1 : 0) : 1000 * c + 100 * z + i);
    const pages = Array.from({ length: C * Z }, (_, p) => Uint16Array.from({ length: Y * X }, (_, i) => val(p % C, Math.floor(p / C), i)));
    const xml = omeXml({ size: [Y, X, Z], channels: Array.from({ length: C }, (_, c) => ({ name: `c${c}` })), type: 'uint16', pixelSize: PS }).replace('DimensionOrder="XYZCT"', 'DimensionOrder="XYCZT"');
    writeFileSync(join(dir, 'a.ome.tiff'), encodeTiff({ width: X, height: Y, pages, description: xml }));
    const size = [Y, X, Z];
    const ch = channels(size, 13);
    writeFileSync(join(dir, 'b.ome.tiff'), omeTiffOf(size, ch, PS));
    const rows = parseManifest('CellId,StructureDisplayName,save_reg_path,ch_dna,ch_memb,ch_struct,ch_seg_cell,ch_seg_nuc\n1,Golgi,a.ome.tiff,2,3,4,1,0\n', join(dir, 'm.csv'));
    const own = parseManifest('CellId,StructureDisplayName,save_reg_path\n2,Golgi,b.ome.tiff\n', join(dir, 'm.csv'));
    const a = await new CellDataset(rows, { dims: 3, size }).batch([0]);
    const n = Y * X * Z;
    for (let i = 0; i < Y * X; i++)
      for (let z = 0; z < Z; z++) {
        const k = i * Z + z;
        expect(a.reference[k]).toBe(val(1, z, i) ? Math.fround(val(3, z, i) / 65535) : 0);
        expect(a.reference[n + k]).toBe(val(0, z, i) ? Math.fround(val(2, z, i) / 65535) : 0);
        expect(a.structure[k]).toBe(val(1, z, i) ? Math.fround(val(4, z, i) / 65535) : 0);
      }
    const b = await new CellDataset(own, { dims: 3, size }).batch([0]);
    expect(bitsEqual(b.reference.subarray(0, n), ch[0].data)).toBe(true);
    expect(bitsEqual(b.reference.subarray(n), ch[2].data)).toBe(true);
    expect(bitsEqual(b.structure, ch[1].data)).toBe(true);
  });

  test('a dropped file decodes from bytes by its signature, not its name', async () => {
    const png = encode({ width: 5, height: 6, data: new Uint16Array(90).fill(7), channels: 3, depth: 16 });
    const img = await decodeImage('drop.tif', png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer, { dims: 2, bounds: { size: [6, 5] } });
    expect([img.dtype, img.channels, img.spatial]).toEqual(['uint16', 3, [6, 5]]);
    // The explorer's path: bytes → the model's tensors, as CellDataset makes them.
    const t = await decodeCell('drop.tif', png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer, { size: [4, 5], fit: 'crop-pad', channels: { dna: 2, memb: 3, struct: 4, seg_cell: 1, seg_nuc: 0 } });
    expect([t.reference.length, t.structure.length]).toEqual([40, 20]);
    expect(t.structure[0]).toBe(Math.fround(7 / 65535));
    await expect(decodeImage('x.jpg', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer)).rejects.toThrow(/x\.jpg: neither a PNG nor a TIFF/);
    await expect(decodeImage('x.png', new Uint8Array([1, 2, 3]).buffer)).rejects.toThrow(/x\.png: not a readable PNG/);
  });
});

/** Writes a 3-channel 3D OME-Zarr of [4, 3, 2] and lets `edit` change its files. */
async function hostile(edit: (dir: string) => void): Promise<string> {
  const dir = join(tmp(), 'h.ome.zarr');
  await writeOmeZarr(dir, { size: [4, 3, 2], channels: channels([4, 3, 2], 5), pixelSize: PS });
  edit(dir);
  return dir;
}
const editJson = (file: string, f: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  f(j);
  writeFileSync(file, JSON.stringify(j));
};

/** Expects a rejection matching `re` within 1 s and < 200 MB of extra RSS. */
async function refusedQuickly(f: () => Promise<unknown>, re: RegExp): Promise<void> {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const err = await f().then(() => undefined, (e) => e as Error);
  expect(err, 'expected an error').toBeInstanceOf(Error);
  expect(err!.message).toMatch(re);
  expect(performance.now() - t0).toBeLessThan(1000);
  expect((process.memoryUsage().rss - rss0) / 1e6).toBeLessThan(200);
}

test('a BigTIFF (magic 43, 64-bit offsets: large OME-TIFFs) is a TIFF by its signature, whatever its name (cell.btf was "neither a PNG nor a TIFF")', async () => {
  const [W, H] = [8, 6];
  const pixels = Uint8Array.from({ length: W * H }, (_, i) => (i * 37) % 256);
  // Header: II, 43, offset size 8, 0, first IFD at 16. Entries of 20 bytes: tag, type, count (u64), value (u64).
  const tags: [number, number, number][] = [[256, 3, W], [257, 3, H], [258, 3, 8], [259, 3, 1], [262, 3, 1], [273, 16, 0], [277, 3, 1], [278, 3, H], [279, 16, W * H]];
  const dataAt = 16 + 8 + tags.length * 20 + 8;
  const b = new Uint8Array(dataAt + W * H);
  const v = new DataView(b.buffer);
  b.set([0x49, 0x49]);
  v.setUint16(2, 43, true);
  v.setUint16(4, 8, true);
  v.setBigUint64(8, 16n, true);
  v.setBigUint64(16, BigInt(tags.length), true);
  tags.forEach(([tag, type, value], i) => {
    const e = 24 + i * 20;
    v.setUint16(e, tag, true);
    v.setUint16(e + 2, type, true);
    v.setBigUint64(e + 4, 1n, true);
    if (type === 3) v.setUint16(e + 12, value, true);
    else v.setBigUint64(e + 12, BigInt(tag === 273 ? dataAt : value), true);
  });
  b.set(pixels, dataAt);
  const img = await decodeImage('cell.btf', b.buffer, { dims: 2, channelsHint: 1, bounds: { size: [H, W] } });
  expect([img.channels, ...img.spatial, img.dtype]).toEqual([1, H, W, 'uint8']);
  expect(Array.from(img.data)).toEqual(Array.from(pixels));
});

describe('ImageJ hyperstacks whose pages are not channels × slices', () => {
  // 8 pages of 2×2: as channels=2 alone says, Z would be 4; frames=2 (or slices=3) says otherwise.
  const pages = Array.from({ length: 8 }, (_, p) => new Uint8Array(4).fill(p));
  const tiffWith = (description: string) => encodeTiff({ width: 2, height: 2, pages, description }).buffer as ArrayBuffer;
  test('time points (frames=2) are refused, not read as more Z slices', async () => {
    await expect(decodeTiff('t.tif', tiffWith('ImageJ=1.11a\nimages=8\nchannels=2\nslices=2\nframes=2\n'), { bounds: { size: [2, 2, 4] } })).rejects.toThrow('t.tif: not a readable 3D TIFF: ImageJ frames=2: a cell is one time point');
  });
  test('slices that disagree with the pages are refused; channels × slices = pages reads, Z fastest after the channel', async () => {
    await expect(decodeTiff('s.tif', tiffWith('ImageJ=1.11a\nchannels=2\nslices=3\n'), { bounds: { size: [2, 2, 4] } })).rejects.toThrow('s.tif: not a readable 3D TIFF: ImageJ channels=2 slices=3 declare 6 pages but the file has 8');
    const img = await decodeTiff('ok.tif', tiffWith(imagejDescription(2, 4)), { bounds: { size: [2, 2, 4] } });
    // Page p is (z = p >> 1, c = p & 1); C × Y × X × Z with Z fastest.
    expect([img.channels, ...img.spatial]).toEqual([2, 2, 2, 4]);
    expect(Array.from(img.data.subarray(0, 4))).toEqual([0, 2, 4, 6]);
    expect(Array.from(img.data.subarray(16, 20))).toEqual([1, 3, 5, 7]);
  });
});

describe('hostile OME-Zarr is refused, naming the file and the field', () => {
  const bounds = { size: [4, 3, 2] };
  test('a huge declared shape, before any chunk is read', async () => {
    const huge = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.shape = [3, 100000, 100000, 100000]; j.chunks = [1, 100000, 100000, 100000]; }));
    await refusedQuickly(() => readOmeZarr(huge, { bounds }), /h\.ome\.zarr\/0\/\.zarray: shape: declares 100000×100000×100000 × 3 channel\(s\) = \d+ MiB decoded, more than the 256 MiB allowed/);
    const other = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.shape = [3, 200, 200, 200]; }));
    await refusedQuickly(() => readOmeZarr(other, { bounds }), /h\.ome\.zarr\/0\/\.zarray: shape: the image is 200×200×200 but the model takes 4×3×2/);
  });
  test('a shape at the model size with chunks of a gigabyte, or a million chunks', async () => {
    const big = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.chunks = [1, 2000, 2000, 2000]; }));
    await refusedQuickly(() => readOmeZarr(big, { bounds }), /0\/\.zarray: chunks: 1×2000×2000×2000 = 30518 MiB a chunk/);
  });
  test('a missing chunk file', async () => {
    const dir = await hostile((d) => rmSync(join(d, '0', '1', '0', '0', '0')));
    await refusedQuickly(() => readOmeZarr(dir, { bounds }), /h\.ome\.zarr\/0\/1\/0\/0\/0: chunk file missing/);
  });
  test('a wrong dtype, filters, an unknown compressor, OME-Zarr 0.5, a path out of the folder', async () => {
    const f8 = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.dtype = '<f8'; }));
    await refusedQuickly(() => readOmeZarr(f8, { bounds }), /h\.ome\.zarr\/0\/\.zarray: dtype: "<f8"; expected uint8/);
    const filt = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.filters = [{ id: 'delta', dtype: '<f4' }]; }));
    await refusedQuickly(() => readOmeZarr(filt, { bounds }), /0\/\.zarray: filters: filters are not supported/);
    const lzma = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.compressor = { id: 'lzma' }; }));
    await refusedQuickly(() => readOmeZarr(lzma, { bounds }), /0\/\.zarray: compressor: "lzma"/);
    const v5 = await hostile((d) => editJson(join(d, '.zattrs'), (j) => { (j.multiscales as { version: string }[])[0].version = '0.5'; }));
    await refusedQuickly(() => readOmeZarr(v5, { bounds }), /h\.ome\.zarr\/\.zattrs: multiscales\[0\]\.version is "0\.5"/);
    const out = await hostile((d) => editJson(join(d, '.zattrs'), (j) => { (j.multiscales as { datasets: { path: string }[] }[])[0].datasets[0].path = '../../etc'; }));
    await refusedQuickly(() => readOmeZarr(out, { bounds }), /\.zattrs: multiscales\[0\]\.datasets\[0\]\.path "\.\.\/\.\.\/etc" is not a relative path inside the folder/);
  });
  test('a dimension_separator that climbs out of the folder (zarrita joins the chunk indices with it: the chunks were read from outside)', async () => {
    const outside = await hostile((d) => editJson(join(d, '0', '.zarray'), (j) => { j.dimension_separator = '/../../../../'; }));
    await refusedQuickly(() => readOmeZarr(outside, { bounds }), /h\.ome\.zarr\/0\/\.zarray: dimension_separator: "\/\.\.\/\.\.\/\.\.\/\.\.\/", expected "\." or "\/"/);
  });
  test('an uncompressed chunk shorter than its declared size (it was read as zeros past its end)', async () => {
    const raw = (d: string, c1: number) => {
      editJson(join(d, '0', '.zarray'), (j) => { j.compressor = null; });
      for (const c of [0, 1, 2]) writeFileSync(join(d, '0', String(c), '0', '0', '0'), new Uint8Array(c === 1 ? c1 : 96).fill(0x3f));
    };
    const cut = await hostile((d) => raw(d, 40));
    await refusedQuickly(() => readOmeZarr(cut, { bounds }), /h\.ome\.zarr\/0\/1\/0\/0\/0: an uncompressed chunk of 40 bytes; a 1×2×4×3 chunk of float32 is 96 \(a partial copy\?\)/);
    const empty = await hostile((d) => raw(d, 0));
    await refusedQuickly(() => readOmeZarr(empty, { bounds }), /0\/1\/0\/0\/0: an uncompressed chunk of 0 bytes/);
    const whole = await readOmeZarr(await hostile((d) => raw(d, 96)), { bounds });
    expect(whole.data.every((v) => v === new Float32Array(Uint8Array.of(0x3f, 0x3f, 0x3f, 0x3f).buffer)[0])).toBe(true);
  });

  test('a chunk that inflates past its declared size (a zlib bomb)', async () => {
    const bomb = zlibSync(new Uint8Array(1 << 20), { level: 9 }); // 1 MiB of zeros in ~1 KB, within the file bound of a 96-byte chunk
    expect(bomb.length).toBeLessThan(4096);
    const dir = await hostile((d) => writeFileSync(join(d, '0', '0', '0', '0', '0'), bomb));
    await refusedQuickly(() => readOmeZarr(dir, { bounds }), /h\.ome\.zarr\/0: .*zlib chunk decompresses to more than its declared 96 bytes/);
    const big = await hostile((d) => writeFileSync(join(d, '0', '0', '0', '0', '0'), new Uint8Array(8192)));
    await refusedQuickly(() => readOmeZarr(big, { bounds }), /h\.ome\.zarr\/0\/0\/0\/0\/0: cannot read: the file is 8192 bytes, more than the 4204 bytes allowed/);
    const cut = await hostile((d) => writeFileSync(join(d, '0', '2', '0', '0', '0'), zlibSync(new Uint8Array(40))));
    await refusedQuickly(() => readOmeZarr(cut, { bounds }), /decompresses to 40 bytes, its declared size is 96/);
  });
});

describe('blosc chunks (the Allen tools\' default compressor)', () => {
  /** Re-encodes every chunk of an OME-Zarr written by statcell with blosc (zstd, bit shuffle), as bioio and ome-zarr-py write them. */
  async function toBlosc(dir: string, lie = false) {
    const Blosc = (await import('numcodecs/blosc')).default;
    const codec = Blosc.fromConfig({ cname: 'zstd', clevel: 1, shuffle: 2, blocksize: 0 });
    editJson(join(dir, '0', '.zarray'), (j) => { j.compressor = { id: 'blosc', cname: 'zstd', clevel: 1, shuffle: 2, blocksize: 0 }; });
    for (let c = 0; c < 3; c++) {
      const f = join(dir, '0', String(c), '0', '0', '0');
      const enc = await codec.encode(new Uint8Array(inflateSync(readFileSync(f))));
      if (lie) new DataView(enc.buffer, enc.byteOffset).setUint32(4, 1 << 30, true); // header: 1 GiB decompressed
      writeFileSync(f, enc);
    }
  }
  test('read bit for bit; a header that declares another size is refused before decoding', async () => {
    const size = [4, 3, 2];
    const ch = channels(size, 21);
    const dir = join(tmp(), 'b.ome.zarr');
    await writeOmeZarr(dir, { size, channels: ch, pixelSize: PS });
    await toBlosc(dir);
    const img = await readOmeZarr(dir, { bounds: { size } });
    ch.forEach((c, k) => expect(bitsEqual(img.data.subarray(k * 24, (k + 1) * 24), c.data)).toBe(true));
    const liar = join(tmp(), 'l.ome.zarr');
    await writeOmeZarr(liar, { size, channels: ch, pixelSize: PS });
    await toBlosc(liar, true);
    await refusedQuickly(() => readOmeZarr(liar, { bounds: { size } }), /l\.ome\.zarr\/0: .*blosc chunk header declares 1073741824 bytes decompressed, the array's chunk is 96/);
  });
});

describe('a manifest of OME-Zarr cells', () => {
  test('reads bit for bit into the batch and trains a step of the tiny model', async () => {
    const dir = tmp();
    const size = [8, 6];
    const r = rng(11);
    const cells: NamedChannel[][] = [];
    const lines = ['CellId,StructureDisplayName,save_reg_path_flat,PhysicalSizeX,PhysicalSizeY'];
    for (let i = 0; i < 6; i++) {
      const ch = ['membrane', 'structure', 'DNA'].map((name) => ({ name, data: Float32Array.from({ length: 48 }, () => r()) }));
      cells.push(ch);
      await writeOmeZarr(join(dir, `c${i}.ome.zarr`), { size, channels: ch, pixelSize: { x: 0.3, y: 0.3, source: 'test' } });
      lines.push(`${i},${i % 2 ? 'Golgi' : 'Mitochondria'},c${i}.ome.zarr,0.3,0.3`);
    }
    const rows = parseManifest(lines.join('\n') + '\n', join(dir, 'manifest.csv'));
    const ds = new CellDataset(rows, { dims: 2, size });
    const b = await ds.batch([0, 1, 2, 3, 4, 5]);
    cells.forEach((ch, k) => {
      expect(bitsEqual(b.reference.subarray(k * 96, k * 96 + 48), ch[0].data)).toBe(true); // membrane
      expect(bitsEqual(b.reference.subarray(k * 96 + 48, k * 96 + 96), ch[2].data)).toBe(true); // DNA
      expect(bitsEqual(b.structure.subarray(k * 48, k * 48 + 48), ch[1].data)).toBe(true);
    });
    const d = (await openDevice('wasm'))!;
    const out = tmp();
    const res = await train({ model: tinyModel({ size }), backend: d.eager.backend, train: ds, batch: 4, seed: 1, iterations: 1, out, log: () => {} });
    const loss = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((m) => m.kind === 'step');
    expect(Number.isFinite(Number(loss.loss))).toBe(true);
    expect(res.iteration).toBe(1);
    res.runtime.destroy();
  });
});

test("without PhysicalSize columns, generated and walked files take the pixel size the data's own files state (they said 'default, assumed (not read from the data)')", async () => {
  const { pixelSizeForRun } = await import('../../cli/generate.ts');
  const { synthesize } = await import('../../data/synth.ts');
  const { readManifest } = await import('../../data/manifest.ts');
  const dir = mkdtempSync(join(tmpdir(), 'statcell-ps-'));
  const manifest = synthesize({ out: dir, cells: 3, dims: 2, size: [16, 8], seed: 1 });
  const first = readManifest(manifest)[0].png2d!;
  const plane = new Float32Array(16 * 8).fill(0.5);
  const ch = ['membrane', 'Golgi', 'DNA'].map((name, i) => ({ name, data: plane, color: [i === 0 ? 1 : 0, i === 1 ? 1 : 0, i === 2 ? 1 : 0] as [number, number, number] }));
  // The first cell's file, rewritten as an OME-TIFF that states 0.2 µm (read by its content, whatever its name).
  writeFileSync(first, omeTiffOf([16, 8], ch, { x: 0.2, y: 0.25, source: 'test' }));
  const ps = await pixelSizeForRun(manifest, 2);
  expect([ps.x, ps.y]).toEqual([0.2, 0.25]);
  expect(ps.source).toContain(`the OME-XML of the file, of ${first}`);
  // The manifest's columns, where given, still come first.
  const csv = readFileSync(manifest, 'utf8').trim().split('\n');
  const stated = join(dir, 'stated.csv');
  writeFileSync(stated, [csv[0] + ',PhysicalSizeX,PhysicalSizeY', ...csv.slice(1).map((l) => l + ',0.3,0.3')].join('\n') + '\n');
  expect((await pixelSizeForRun(stated, 2)).x).toBe(0.3);
  // A 3D file that states X and Y only: Z the default's, said to be assumed (a 3D OME-Zarr needs one).
  const d3 = mkdtempSync(join(tmpdir(), 'statcell-ps-'));
  const m3 = synthesize({ out: d3, cells: 3, dims: 3, size: [8, 8, 4], seed: 1 });
  const vol = new Float32Array(8 * 8 * 4).fill(0.5);
  writeFileSync(readManifest(m3)[0].tiff3d!, omeTiffOf([8, 8, 4], ['membrane', 'Golgi', 'DNA'].map((name) => ({ name, data: vol, color: [1, 1, 1] as [number, number, number] })), { x: 0.2, y: 0.2, source: 'test' }));
  const ps3 = await pixelSizeForRun(m3, 3);
  expect([ps3.x, ps3.y, ps3.z]).toEqual([0.2, 0.2, DEFAULT_PIXEL_SIZE.z]);
  expect(ps3.source).toContain(`Z not stated there: ${DEFAULT_PIXEL_SIZE.z} µm assumed`);
  // Files that say nothing: the stated default.
  expect(await pixelSizeForRun(synthesize({ out: mkdtempSync(join(tmpdir(), 'statcell-ps-')), cells: 3, dims: 2, size: [16, 8], seed: 1 }), 2)).toBe(DEFAULT_PIXEL_SIZE);
});
