// User-reported data-layer defects: a truncated PNG's reason, ch_* indices checked against the
// image, every image's header checked before training's first step, and the manifest size cap.
import { existsSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { describe, expect, test, vi } from 'vitest';
import { trainCommand } from '../../cli/train.ts';
import { CellDataset } from '../../data/dataset.ts';
import { decodePng2d, decodeTiff, errorText } from '../../data/decode.ts';
import { readImageHeader } from '../../data/images.ts';
import { MAX_MANIFEST_BYTES, readManifest } from '../../data/manifest.ts';
import { encodeTiff } from '../../data/tiff.ts';
import { WasmBackend } from '../../runtime/wasm.ts';
import { TINY_FILE } from './tiny-model.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-checks-'));
const png = (w: number, h: number, channels: 1 | 3) => {
  const data = new Uint8Array(w * h * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
  return encode({ width: w, height: h, data, channels, depth: 8 });
};
const buf = (b: Uint8Array) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

describe('decoder messages', () => {
  test('a truncated PNG says it is truncated, not "Error while decompressing the data:"', () => {
    const whole = png(32, 24, 3);
    for (const cut of [Math.floor(whole.length / 2), whole.length - 12, 60]) {
      const e = (() => { try { decodePng2d('trunc.png', buf(whole.subarray(0, cut))); } catch (x) { return x as Error; } })();
      expect(e?.message).toMatch(/^trunc\.png: not a readable PNG: truncated: /);
      expect(e?.message).not.toMatch(/:\s*$/);
    }
  });

  test('an error with an empty message or its reason in a cause is given whole', () => {
    expect(errorText(new Error('Error while decompressing the data:', { cause: new RangeError('Invalid typed array length: 556') }))).toBe('Error while decompressing the data: Invalid typed array length: 556');
    expect(errorText(new RangeError(''))).toBe('RangeError');
    expect(errorText(new Error(''))).toBe('an error without a message');
  });

  test('a 2D model told 6 channels for a 3-page TIFF says what a 2D image needs', async () => {
    const plane = () => new Float32Array(8 * 8).fill(0.5);
    const tiff = encodeTiff({ width: 8, height: 8, pages: [plane(), plane(), plane()] });
    const msg = await decodeTiff('c.tiff', buf(tiff), { dims: 2, channelsHint: 6 }).then(() => '', (e: Error) => e.message);
    expect(msg).toBe("c.tiff: not a readable 2D TIFF: a 2D model reads one page per channel: expected 6 page(s) (the manifest's ch_* columns index channels 0…5), found 3 page(s)");
    const three = await decodeTiff('c.tiff', buf(tiff), { dims: 3, channelsHint: 6 }).then(() => '', (e: Error) => e.message);
    expect(three).toMatch(/a 3D model reads 6 channels × Z pages .*expected a multiple of 6 pages, found 3/);
  });
});

/** A manifest of PNG rows in a fresh folder; `cells` give each row's image bytes, ch_* cells and split (default train). */
function manifest(cells: { image: Uint8Array; ch?: string; split?: string }[]): string {
  const dir = tmp();
  const lines = ['CellId,StructureDisplayName,save_reg_path_flat,ch_dna,ch_memb,ch_struct,ch_seg_cell,ch_seg_nuc,split'];
  cells.forEach((c, i) => {
    writeFileSync(join(dir, `c${i}.png`), c.image);
    lines.push(`${i + 1},Golgi,c${i}.png,${c.ch ?? ',,,,'},${c.split ?? 'train'}`);
  });
  writeFileSync(join(dir, 'm.csv'), lines.join('\n') + '\n');
  return join(dir, 'm.csv');
}

describe('the up-front header check', () => {
  test('a ch_* index beyond a grey PNG\'s channels is an error naming the manifest, row, column and channel count, before any cell is read', async () => {
    const file = manifest([{ image: png(32, 24, 1), ch: '0,0,0,0,0' }, { image: png(32, 24, 1), ch: '99,0,0,0,0' }]);
    const ds = new CellDataset(readManifest(file), { dims: 2, size: [24, 32], manifestFile: file });
    await expect(ds.checkImages()).rejects.toThrow(`${file}:3 (CellId 2): column ch_dna = 99, but ${join(file, '..', 'c1.png')} has 1 channel(s) (indices 0…0); fix these rows, or skip them with --skip-bad`);
  });

  test('ch_* indices on an RGB PNG do not apply (they describe the row\'s 3D image): no error and no line, as for statcell synth\'s own manifests', async () => {
    const file = manifest([{ image: png(32, 24, 3), ch: '99,0,1,4,3' }]);
    const logs: string[] = [];
    const ds = new CellDataset(readManifest(file), { dims: 2, size: [24, 32], manifestFile: file, log: (l) => logs.push(l) });
    await ds.checkImages();
    expect((await ds.load(0))?.row.line).toBe(2);
    expect(logs).toEqual([]);
  });

  test('checkImages finds a row of the wrong size and a truncated file, whichever row is read; --skip-bad leaves them out', async () => {
    const good = png(32, 24, 3);
    const file = manifest([{ image: good }, { image: good }, { image: png(40, 24, 3) }, { image: good.subarray(0, Math.floor(good.length / 2)) }]);
    const rows = readManifest(file);
    const strict = new CellDataset(rows, { dims: 2, size: [24, 32], manifestFile: file });
    await expect(strict.checkImages()).rejects.toThrow(new RegExp(`m\\.csv:4 \\(CellId 3\\): .*c2\\.png: the image is 24×40 but the model takes 24×32.* \\(and 1 more row\\(s\\) whose image header is bad\\)`));
    const logs: string[] = [];
    const lenient = new CellDataset(rows, { dims: 2, size: [24, 32], manifestFile: file, skipBad: true, log: (l) => logs.push(l) });
    await lenient.checkImages();
    expect(logs).toEqual([expect.stringMatching(/^skipping: .*m\.csv:4 .*24×40/), expect.stringMatching(/^skipping: .*m\.csv:5 .*c3\.png: not a readable PNG: truncated/)]);
    expect((await lenient.readable()).rows.map((r) => r.line)).toEqual([2, 3]);
    expect(logs).toHaveLength(3); // and the line saying the cells are read once: no row is logged twice
  });

  test('without the check (eval, embed, report read a split once), a good row reads and a bad one is named by manifest row and file when read', async () => {
    const good = png(32, 24, 3);
    const file = manifest([{ image: good }, { image: png(40, 24, 3) }]);
    const ds = new CellDataset(readManifest(file), { dims: 2, size: [24, 32], manifestFile: file });
    expect((await ds.batch([0])).rows.map((r) => r.line)).toEqual([2]);
    await expect(ds.batch([1])).rejects.toThrow(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}:3 \\(CellId 2\\): .*c1\\.png: the image is 24×40 but the model takes 24×32`));
  });

  test('headers only: a PNG whose pixels are garbage passes, a 2-page 2D TIFF is refused, with no pixel decoded', async () => {
    const dir = tmp();
    const bad = png(32, 24, 3);
    bad[bad.length - 20] ^= 0xff; // inside the IDAT: the header is intact
    writeFileSync(join(dir, 'p.png'), bad);
    await expect(readImageHeader(join(dir, 'p.png'), { dims: 2, bounds: { size: [24, 32] } })).resolves.toEqual({ channels: 3, spatial: [24, 32], dtype: 'uint8' });
    const plane = () => new Uint8Array(8 * 8);
    writeFileSync(join(dir, 't.tiff'), encodeTiff({ width: 8, height: 8, pages: [plane(), plane()] }));
    await expect(readImageHeader(join(dir, 't.tiff'), { dims: 2, channelsHint: 1, bounds: { size: [8, 8] } })).rejects.toThrow(/t\.tiff: not a readable 2D TIFF: a 2D model reads one page per channel: expected 1 page\(s\)/);
    await expect(readImageHeader(join(dir, 't.tiff'), { dims: 2, channelsHint: 2, bounds: { size: [8, 8] } })).resolves.toEqual({ channels: 2, spatial: [8, 8], dtype: 'uint8' });
  });
});

describe('statcell train checks every header of its train and validation splits before step 0', () => {
  const good = png(32, 24, 3);
  const run = async (file: string) => {
    const dir = join(file, '..', 'run');
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const r = await trainCommand({ model: TINY_FILE, set: { size: [24, 32] }, data: file, out: dir, backend: 'wasm', batch: 2, iterations: 1, seed: 1, evalSamples: 1, openedBackend: await backend() });
      r.runtime.destroy();
      return { dir, error: '' };
    } catch (e) {
      return { dir, error: (e as Error).message };
    } finally {
      spy.mockRestore();
    }
  };
  // A read meets a bad row too, but only when it comes to it (step 0's batch, the validation after it), with the row alone named.
  for (const split of ['train', 'validate']) {
    test(`a bad row of the ${split} split: refused as the header check refuses it, no step taken`, async () => {
      const cells = [...Array(6)].map((_, i) => ({ image: good, split: i < 4 ? 'train' : 'validate' }));
      const bad = split === 'train' ? 3 : 5;
      cells[bad] = { image: good.subarray(0, 100), split };
      const file = manifest(cells);
      const { dir, error } = await run(file);
      expect(error).toMatch(new RegExp(`m\\.csv:${bad + 2} \\(CellId ${bad + 1}\\): .*c${bad}\\.png: not a readable PNG: truncated: .*; fix these rows, or skip them with --skip-bad$`));
      expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(false);
      expect(existsSync(join(dir, 'run.json'))).toBe(false);
    });
  }
});

let opened: WasmBackend | undefined;
const backend = async () => (opened ??= await WasmBackend.create());

test('a manifest over the cap (a parse would take ~20× its size) is refused at once, by its size, before it is read', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'statcell-cap-')), 'big.csv');
  writeFileSync(file, 'CellId,structure_name\n');
  truncateSync(file, MAX_MANIFEST_BYTES + 1); // sparse: no 64 MiB written
  const t = performance.now();
  expect(() => readManifest(file)).toThrow(/big\.csv/);
  expect(performance.now() - t).toBeLessThan(2000);
  expect(MAX_MANIFEST_BYTES).toBeLessThanOrEqual(64 * 2 ** 20); // 256 MiB took ~5 GB to parse
});
