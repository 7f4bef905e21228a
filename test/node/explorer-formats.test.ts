// The explorer's formats and its 3D view, end to end on a tiny 3D run: the tiny linear VAE
// (test/models/tiny.vae) trained a few steps at 16×12×8 as a reference and a target model on
// synthetic 3D cells whose manifest states a pixel size, exported with `statcell export-web`,
// served by a plain static server, opened in headless Chromium (Debian's, through Playwright).
// - generated cells download as OME-TIFF: read back, their values equal Node's generation bit for
//   bit, their channels are named and their pixel size is the manifest's;
// - an OME-Zarr folder written by data/ome-zarr.ts, dropped for real (the DevTools protocol's drag
//   of a directory, so the page gets directory entries), is read, embedded where the same cell
//   sits in the scatter (the same μ), and placed;
// - the 3D view (vole-core, WebGL2 on SwiftShader) renders the cell non-blank, and its channel
//   toggles change it (screenshot kept in docs/explorer/ with STATCELL_UPDATE_DOCS=1).
// And in Node, web/drop.ts's reading: intensity scales (the manifest's, else the type's maximum);
// and the voxel layout the 3D view hands vole-core.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { encode as encodePng, decode as decodePngFile } from 'fast-png';
import { unzlibSync } from 'fflate';
import { chromium, type Browser, type Locator, type Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { exportWeb } from '../../cli/web-site.ts';
import { trainCommand } from '../../cli/train.ts';
import { decodeTiff } from '../../data/decode.ts';
import { omeZarrFiles } from '../../data/ome-zarr.ts';
import { synthesize } from '../../data/synth.ts';
import { WasmBackend } from '../../runtime/wasm.ts';
import { readDropped, type Dropped } from '../../web/drop.ts';
import { Explorer, siteCell } from '../../web/explorer.ts';
import { volumeBytes } from '../../web/volume.ts';
import { loadSite, type Site } from '../../web/site.ts';
import { TINY_FILE, TINY_TARGET } from './tiny-model.ts';

const CHROMIUM = process.env.STATCELL_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const DOCS = process.env.STATCELL_UPDATE_DOCS ? join(import.meta.dirname, '../../docs/explorer') : mkdtempSync(join(tmpdir(), 'statcell-explorer-shots-'));
const SIZE = [16, 12, 8];
const PIXEL = { x: 0.2, y: 0.25, z: 0.5 };
const LOAD_MS = 240_000;

let work: string;
let site: string;
let browser: Browser;
let page: Page;
let node: { be: WasmBackend; site: Site; ex: Explorer };
const children: ChildProcess[] = [];

/** An element's pixels, from a screenshot. */
async function shot(el: Locator): Promise<{ data: Uint8Array; channels: number }> {
  const img = decodePngFile(await el.screenshot());
  return { data: img.data as Uint8Array, channels: img.channels };
}

function content(px: ArrayLike<number>, channels = 4): { colours: number; lit: number } {
  const seen = new Set<number>();
  let lit = 0;
  for (let i = 0; i < px.length; i += channels) {
    seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    if (px[i] + px[i + 1] + px[i + 2] > 60) lit++;
  }
  return { colours: seen.size, lit: lit / (px.length / channels) };
}

const count = (page: Page, sel: string, key: string) => page.evaluate(([sel, key]) => Number((document.querySelector(sel) as HTMLElement).dataset[key] ?? 0), [sel, key]);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'statcell-explorer-3d-'));
  // Synthetic 3D cells, with the data's pixel size stated in the manifest.
  const manifest = synthesize({ out: join(work, 'data'), cells: 60, dims: 3, size: SIZE, seed: 3, controlFraction: 1 / 6 });
  const lines = readFileSync(manifest, 'utf8').trimEnd().split('\n');
  writeFileSync(manifest, [`${lines[0]},PhysicalSizeX,PhysicalSizeY,PhysicalSizeZ`, ...lines.slice(1).map((l) => `${l},${PIXEL.x},${PIXEL.y},${PIXEL.z}`)].join('\n') + '\n');
  const be = await WasmBackend.create();
  const train = async (out: string, set: Record<string, unknown>) =>
    (await trainCommand({ model: TINY_FILE, set: { size: SIZE, ...set }, data: manifest, out, backend: 'wasm', batch: 8, iterations: 20, seed: 1, evalSamples: 1, openedBackend: be })).runtime.destroy();
  await train(join(work, 'reference'), {});
  await train(join(work, 'target'), TINY_TARGET);
  site = join(work, 'site');
  await exportWeb({ reference: join(work, 'reference'), target: join(work, 'target'), split: 'all', cells: 40, checkpoint: 'latest', out: site }, be, () => {});
  const loaded = await loadSite(async (p) => new Uint8Array(await readFile(join(site, p))).buffer);
  node = { be, site: loaded, ex: new Explorer(loaded, be) };
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const server = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '-d', site], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(server);
  const port = await new Promise<string>((ok, err) => {
    let out = '';
    const on = (d: Buffer) => {
      out += d;
      const m = out.match(/port (\d+)/);
      if (m) ok(m[1]);
    };
    server.stdout!.on('data', on);
    server.stderr!.on('data', on);
    server.on('exit', (code) => err(new Error(`python3 -m http.server exited ${code}: ${out}`)));
  });
  page = await browser.newPage({ viewport: { width: 1150, height: 900 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/?backend=wasm`);
  await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: LOAD_MS, polling: 250 });
  const state = await page.evaluate(() => ({ state: document.body.dataset.state, error: document.getElementById('error')!.textContent }));
  expect(state.state, `${state.error} ${errors.join('; ')}`).toBe('ready');
}, 900_000);

afterAll(async () => {
  await browser?.close();
  for (const c of children) c.kill();
  node?.ex.destroy();
  node?.be.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('explorer formats and the 3D view (a tiny 3D run)', () => {
  test('export-web states the pixel size of the manifest', () => {
    const index = JSON.parse(readFileSync(join(site, 'index.json'), 'utf8'));
    expect(index.size).toEqual(SIZE);
    expect(index.pixelSize).toMatchObject(PIXEL);
    expect(index.pixelSize.source).toMatch(/PhysicalSizeX\/Y\/Z columns/);
    expect(index.intensityScale).toBeUndefined();
  });

  test('the 3D view renders the selected cell with vole-core, and its channel toggles change it', async () => {
    await page.waitForFunction(() => Number(document.getElementById('volume')!.dataset.rendered ?? 0) > 0 || document.getElementById('volume')!.dataset.failed, null, { timeout: 120_000 });
    const v = await page.evaluate(() => ({ failed: document.getElementById('volume')!.dataset.failed, note: document.querySelector('#volume .volume-note')!.textContent!, hidden: document.getElementById('volume')!.hidden }));
    expect(v.failed, v.note).toBeUndefined();
    expect(v.hidden).toBe(false);
    expect(v.note).toMatch(/16×12×8 voxels \(Y×X×Z\) of X 0\.2, Y 0\.25, Z 0\.5 µm, 3 channels/);
    // vole-core draws on animation frames; a WebGL canvas is read back through a screenshot (drawImage of it into a 2D canvas gives nothing in SwiftShader).
    const canvas = page.locator('#volume .volume-canvas canvas');
    let before = await shot(canvas);
    for (let k = 0; k < 60 && content(before.data, before.channels).lit < 0.005; k++) {
      await page.waitForTimeout(500);
      before = await shot(canvas);
    }
    const c = content(before.data, before.channels);
    expect(c.lit, 'lit fraction of the 3D view').toBeGreaterThan(0.02);
    expect(c.colours, 'colours in the 3D view').toBeGreaterThan(30);
    mkdirSync(DOCS, { recursive: true });
    writeFileSync(join(DOCS, 'volume.png'), await page.locator('#volume').screenshot());
    // Switch the membrane off: the picture changes.
    const toggled = await count(page, '#volume', 'toggled');
    // A toggle re-fuses the channels on the GPU: seconds on SwiftShader on a loaded machine.
    const t0 = performance.now();
    await page.locator('#volume .volume-channels input[value="membrane"]').uncheck({ timeout: 150_000 });
    await page.waitForFunction((n) => Number(document.getElementById('volume')!.dataset.toggled ?? 0) > n, toggled, { timeout: 150_000 });
    console.log(`3D view: a channel toggle took ${(performance.now() - t0).toFixed(0)} ms to answer (SwiftShader WebGL)`);
    await page.waitForTimeout(1000);
    const after = await shot(canvas);
    expect(after.data.filter((x, i) => x !== before.data[i]).length, 'pixels changed by the membrane toggle').toBeGreaterThan(50);
    await page.locator('#volume .volume-channels input[value="membrane"]').check({ timeout: 150_000 });
    // The integrated cell as a volume: membrane, the generated structures, DNA.
    const n = await count(page, '#volume', 'rendered');
    await page.selectOption('#volume .volume-shown', 'integrated');
    await page.waitForFunction((n) => Number(document.getElementById('volume')!.dataset.rendered) > n, n, { timeout: 150_000 });
    const names = await page.evaluate(() => Array.from(document.querySelectorAll<HTMLInputElement>('#volume .volume-channels input')).map((i) => i.value));
    expect(names[0]).toBe('membrane');
    expect(names.at(-1)).toBe('DNA');
    expect(names.length).toBeGreaterThan(2);
  }, 600_000);

  test('generated cells download as OME-TIFF: the values Node generates, named channels, the manifest’s pixel size', async () => {
    await page.fill('#seed', '5');
    await page.fill('#count', '2');
    await page.click('#gen');
    await page.waitForFunction(() => document.querySelectorAll('#ome-downloads a').length === 2, null, { timeout: 60_000 });
    const label = await page.inputValue('#gen-label');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ome-downloads a >> nth=1')]);
    expect(download.suggestedFilename()).toBe('statcell-generated-seed5-cell2.ome.tiff');
    const bytes = await readFile(await download.path());
    const img = await decodeTiff('cell2.ome.tiff', bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, { dims: 3 });
    expect(img.spatial).toEqual(SIZE);
    expect(img.dtype).toBe('float32');
    expect(img.channelNames).toEqual(['membrane', label, 'DNA']);
    expect(img.pixelSize).toMatchObject(PIXEL);
    // Node's Wasm generation of the same seed (the page's Wasm equals it bit for bit).
    const { cells } = await node.ex.generate(5, 2);
    const s = await node.ex.structuresIn(cells[1], [label], 6);
    const vox = SIZE.reduce((a, b) => a * b, 1);
    const want = [cells[1].membrane!, s[label], cells[1].dna!];
    want.forEach((w, c) => {
      const got = img.data.subarray(c * vox, (c + 1) * vox) as Float32Array;
      expect(new Uint32Array(Float32Array.from(got).buffer), `channel ${c}`).toEqual(new Uint32Array(Float32Array.from(w).buffer));
    });
  }, 120_000);

  test('an OME-Zarr folder dropped for real (directory entries) is read, embedded where the same cell sits, and placed in the scatter', async () => {
    const k = 3;
    const cell = siteCell(node.site, k);
    const zarr = join(work, 'drop', 'my-cell.ome.zarr');
    const files = await omeZarrFiles({ size: SIZE, pixelSize: { ...PIXEL, source: 'test' }, channels: [{ name: 'membrane', data: cell.membrane! }, { name: 'structure', data: cell.structure! }, { name: 'DNA', data: cell.dna! }] });
    for (const [path, b] of files) {
      mkdirSync(dirname(join(zarr, path)), { recursive: true });
      writeFileSync(join(zarr, path), b);
    }
    const before = await page.evaluate(() => Number(document.getElementById('scatter')!.dataset.points));
    const embedded = await count(page, '#drop-status', 'embedded');
    // A real drag of a folder from the file system, as the OS would give it: the DevTools protocol's drop.
    await page.selectOption('#drop-label', node.site.index.cells[k].label);
    const box = (await page.locator('#dropzone').boundingBox())!;
    const cdp = await page.context().newCDPSession(page);
    const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    const data = { items: [], files: [zarr], dragOperationsMask: 1 };
    await page.locator('#dropzone').scrollIntoViewIfNeeded();
    const box2 = (await page.locator('#dropzone').boundingBox())!;
    Object.assign(at, { x: box2.x + box2.width / 2, y: box2.y + box2.height / 2 });
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
    await page.waitForFunction((n) => Number(document.getElementById('drop-status')!.dataset.embedded ?? 0) > n || document.body.dataset.state === 'error', embedded, { timeout: 60_000 });
    const after = await page.evaluate(() => {
      const p = (globalThis as unknown as { statcell: { page: { points: { x: number; y: number; index: number; name: string }[] } } }).statcell.page.points;
      return { points: Number(document.getElementById('scatter')!.dataset.points), status: document.getElementById('drop-status')!.textContent!, error: document.getElementById('error')!.textContent, dropped: p.filter((q) => q.index < 0).at(-1)!, all: p };
    });
    expect(after.error).toBe('');
    expect(after.points).toBe(before + 1);
    expect(after.status).toMatch(/^my-cell\.ome\.zarr: 16×12×8 → 16×12×8 \(OME-Zarr, 3 float32 channel\(s\) \(membrane, structure, DNA\), read as membrane 1, structure 2, DNA 3 \(by the channel names\), ÷ 1 \(the float32 maximum\)\), embedded at/);
    // The same values as site cell k, so the same μ, so the same place in the scatter.
    const same = after.all.find((q) => q.index === k)!;
    expect(after.dropped.name).toBe('my-cell.ome.zarr');
    expect(after.dropped.x).toBeCloseTo(same.x, 5);
    expect(after.dropped.y).toBeCloseTo(same.y, 5);
  }, 120_000);

  test('a dropped file that is no image is refused in the drop\'s status line, naming it; the page stays ready', async () => {
    mkdirSync(join(work, 'drop'), { recursive: true });
    const txt = join(work, 'drop', 'notes.txt');
    writeFileSync(txt, 'not a cell\n');
    const refused = await count(page, '#drop-status', 'refused');
    await page.setInputFiles('#file', txt);
    await page.waitForFunction((n) => Number(document.getElementById('drop-status')!.dataset.refused ?? 0) > n, refused, { timeout: 60_000 });
    const now = await page.evaluate(() => ({ status: document.getElementById('drop-status')!.textContent, state: document.body.dataset.state, errorShown: !document.getElementById('error')!.hidden }));
    expect(now).toEqual({ status: 'Refused: notes.txt: neither a PNG nor a TIFF (no PNG or TIFF signature in its first bytes)', state: 'ready', errorShown: false });
  }, 120_000);
});

describe('web/drop.ts reads as training does (Node)', () => {
  const index = { size: [4, 5], tiffChannels: undefined };
  const folderOf = (files: Map<string, Uint8Array>): Dropped => ({ kind: 'folder', name: 'c.ome.zarr', files: new Map([...files].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])])) });
  const ramp = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7 + k * 3) % 11) / 10);

  test('an OME-Zarr folder: values as stored (float32 ÷ 1), or ÷ the manifest’s intensity_scale', async () => {
    const channels = ['membrane', 'structure', 'DNA'].map((name, k) => ({ name, data: ramp(20, k) }));
    const files = await omeZarrFiles({ size: [4, 5], channels, pixelSize: { x: 1, y: 1, source: 'test' } });
    const plain = await readDropped(folderOf(files), index);
    expect(Array.from(plain.cell.membrane!)).toEqual(Array.from(channels[0].data));
    expect(Array.from(plain.cell.structure!)).toEqual(Array.from(channels[1].data));
    expect(Array.from(plain.cell.dna!)).toEqual(Array.from(channels[2].data));
    const scaled = await readDropped(folderOf(files), { ...index, intensityScale: 4 });
    expect(Array.from(scaled.cell.dna!)).toEqual(Array.from(channels[2].data, (v) => Math.fround(Math.fround(v) * Math.fround(1 / 4))));
    expect(scaled.what).toMatch(/÷ 4 \(the manifest's intensity_scale\)/);
  });

  test('the 3D view hands vole-core [C, Z, Y, X] bytes: the layout the OME-Zarr writer uses (data/ome-zarr.ts), after the gain', async () => {
    const size = [3, 4, 2];
    const n = 24;
    const channels = [0, 1].map((k) => ({ name: `c${k}`, data: Float32Array.from({ length: n }, (_, i) => ((i * 5 + k * 7) % 13) / 12), colour: [1, 1, 1] as [number, number, number], gain: k ? 2 : 1 }));
    const bytes = volumeBytes(size, channels);
    const files = await omeZarrFiles({ size, channels, pixelSize: { x: 1, y: 1, z: 1, source: 'test' } });
    channels.forEach((ch, c) => {
      const chunk = new Float32Array(unzlibSync(files.get(`0/${c}/0/0/0`)!).buffer); // [Z, Y, X] of channel c
      const want = Array.from(chunk, (v) => Math.round(255 * Math.min(1, v * ch.gain)));
      expect(Array.from(bytes.subarray(c * n, (c + 1) * n)), `channel ${c}`).toEqual(want);
    });
  });

  test('a 16-bit PNG: ÷ 65535, or ÷ the intensity scale; a folder that is not an OME-Zarr is refused, naming it', async () => {
    const data = new Uint16Array(4 * 5 * 3).map((_, i) => i * 1000);
    const png = encodePng({ width: 5, height: 4, data, channels: 3, depth: 16 });
    const file: Dropped = { kind: 'file', name: 'c16.png', file: new Blob([png as Uint8Array<ArrayBuffer>]) };
    const r = await readDropped(file, index);
    // RGB = membrane, structure, DNA; pixel i of channel c is data[i * 3 + c].
    expect(r.cell.structure![7]).toBeCloseTo((7 * 3 + 1) * 1000 / 65535, 6);
    expect(r.what).toMatch(/PNG, 3 uint16 channel\(s\), read as membrane 1, structure 2, DNA 3 \(in that order\), ÷ 65535/);
    const s = await readDropped(file, { ...index, intensityScale: 4095 });
    expect(s.cell.dna![2]).toBeCloseTo((2 * 3 + 2) * 1000 / 4095, 5);
    await expect(readDropped({ kind: 'folder', name: 'photos', files: new Map([['a.txt', new Blob(['x'])]]) }, index)).rejects.toThrow(/photos: a folder without \.zattrs: not an OME-Zarr image/);
  });
});

test('the scatter gives every label its own colour (past eight labels they repeated: Endoplasmic reticulum and Nucleolus (DFC) shared one)', async () => {
  const { labelColours } = await import('../../web/render.ts');
  for (const n of [1, 8, 9, 27, 40]) expect(new Set(labelColours(n)).size, String(n)).toBe(n);
  expect(labelColours(3)).toEqual(['#e69f00', '#56b4e9', '#009e73']);
});
