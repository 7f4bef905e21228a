// The browser explorer end to end: a small trained pair (trained-models.ts) exported with
// `statcell export-web`, served by a plain static server (python3 -m http.server: no COOP/COEP)
// and by `statcell serve`, opened in headless Chromium (Debian's, through Playwright). The page
// compiles the models, says its backend, reconstructs a clicked cell, decodes slider moves,
// embeds a dropped PNG, generates cells; screenshots of each view are checked (and kept in docs/explorer/ with STATCELL_UPDATE_DOCS=1). And the
// same numbers: the page's Wasm outputs equal Node's bit for bit, its WebGPU (SwiftShader here)
// within 1e-5 of Node's WebGPU.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { chromium, type Browser, type Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { exportWeb, serveFolder } from '../../cli/web-site.ts';
import { parse } from 'csv-parse/sync';
import { openWebGpu } from '../../runtime/device.ts';
import { WasmBackend } from '../../runtime/wasm.ts';
import { Explorer, fingerprint } from '../../web/explorer.ts';
import { loadSite } from '../../web/site.ts';
import { trainedPair, type TrainedPair } from './trained-models.ts';

const CHROMIUM = process.env.STATCELL_CHROMIUM ?? '/usr/bin/chromium';
// As vitest.config.ts's chromiumArgs: WebGPU (SwiftShader without a GPU), root in CI, small /dev/shm, no network.
const ARGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
// The screenshots kept in docs/ are refreshed on request only (STATCELL_UPDATE_DOCS=1), so that a
// test run leaves the checkout clean; otherwise they go to a temporary folder, checked the same way.
const DOCS = process.env.STATCELL_UPDATE_DOCS ? join(import.meta.dirname, '../../docs/explorer') : mkdtempSync(join(tmpdir(), 'statcell-explorer-shots-'));
const CELLS = 60;
const LOAD_MS = 240_000;

let pair: TrainedPair;
let site: string;
let browser: Browser;
const children: ChildProcess[] = [];
const quiet = () => {};

/** Starts a process and resolves with the first match of `ready` in its output. */
function start(cmd: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((ok, err) => {
    let out = '';
    const on = (d: Buffer) => {
      out += d;
      const m = out.match(ready);
      if (m) ok({ child, match: m });
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => err(new Error(`${cmd} ${args.join(' ')} exited ${code} before it was ready:\n${out}`)));
  });
}

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1150, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: LOAD_MS, polling: 250 });
  const state = await page.evaluate(() => ({ state: document.body.dataset.state, error: document.getElementById('error')!.textContent }));
  expect(state.state, `${url}: ${state.error} ${errors.join('; ')}`).toBe('ready');
  return page;
}

/** Pixels of a canvas (RGBA). */
const pixels = (page: Page, id: string) =>
  page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
  }, id);

/** Distinct colours and the fraction of pixels brighter than the background in an RGBA or RGB array. */
function content(px: ArrayLike<number>, channels = 4): { colours: number; lit: number } {
  const seen = new Set<number>();
  let lit = 0;
  for (let i = 0; i < px.length; i += channels) {
    seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    if (px[i] + px[i + 1] + px[i + 2] > 60) lit++;
  }
  return { colours: seen.size, lit: lit / (px.length / channels) };
}

const drawn = (page: Page, id: string) => page.evaluate((id) => Number(document.getElementById(id)!.dataset.drawn ?? 0), id);

/** Screenshot of a view into DOCS/<name>.png, checked not blank. */
async function screenshot(page: Page, id: string, name: string): Promise<void> {
  const png = await page.locator(`#${id}`).screenshot();
  mkdirSync(DOCS, { recursive: true });
  writeFileSync(join(DOCS, `${name}.png`), png);
  const img = decode(png);
  const c = content(img.data as Uint8Array, img.channels);
  expect(c.colours, `${name}.png has too few colours`).toBeGreaterThan(30);
  expect(c.lit, `${name}.png is blank`).toBeGreaterThan(0.01);
}

beforeAll(async () => {
  pair = await trainedPair();
  site = mkdtempSync(join(tmpdir(), 'statcell-explorer-site-'));
  const be = await WasmBackend.create();
  await exportWeb({ reference: pair.reference, target: pair.target, split: 'test', cells: CELLS, checkpoint: 'best', out: site }, be, quiet);
  be.destroy();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  for (const c of children) c.kill();
  if (site) rmSync(site, { recursive: true, force: true });
});

describe('export-web', () => {
  test('writes the page, the model sources, weights without optimizer state, embeddings and cells', () => {
    const index = JSON.parse(readFileSync(join(site, 'index.json'), 'utf8'));
    expect(index.cells.length).toBe(CELLS);
    expect(Object.keys(index.models)).toEqual(['reference', 'target']);
    const weights = readFileSync(join(site, index.models.target.weights));
    const header = JSON.parse(weights.subarray(8, 8 + Number(weights.readBigUInt64LE(0))).toString());
    expect(Object.keys(header).some((k) => k.startsWith('adam.'))).toBe(false);
    expect(Object.keys(header).length).toBeGreaterThan(10);
    expect(readFileSync(join(site, 'index.html'), 'utf8')).toContain('statcell explorer');
  });
});

describe('the explorer on a plain static server (no COOP/COEP)', () => {
  let page: Page;
  beforeAll(async () => {
    const { match } = await start('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '-d', site], /port (\d+)/);
    page = await openPage(`http://127.0.0.1:${match[1]}/`);
  }, LOAD_MS);

  test('compiles the models and says its backend, and why', async () => {
    const b = await page.evaluate(() => ({ kind: document.getElementById('backend')!.dataset.kind, text: document.getElementById('backend')!.textContent!, status: document.getElementById('status')!.textContent!, isolated: crossOriginIsolated }));
    expect(b.status).toMatch(/compiled in the page/);
    expect(b.status).toMatch(/Reference2D.*Target2D/);
    expect(b.isolated).toBe(false);
    // Auto: WebGPU only on a hardware adapter; here (SwiftShader or none) Wasm, with the reason.
    expect(b.kind).toBe('wasm');
    expect(b.text).toMatch(/no WebGPU adapter|software adapter/);
    expect(b.text).toMatch(/One thread: the host sends no COOP\/COEP headers/);
    // Neither WebGPU (a hardware adapter) nor Wasm threads: the page says so, and what to change.
    expect(await page.evaluate(() => document.getElementById('warning')!.textContent)).toMatch(/Neither WebGPU nor Wasm threads.*one CPU thread.*COOP\/COEP/);
  });

  test('a clicked cell appears beside its reconstruction', async () => {
    const before = await drawn(page, 'recon');
    const box = (await page.locator('#scatter').boundingBox())!;
    // The point nearest to the click is selected: click near a corner, then check the cell changed.
    await page.mouse.click(box.x + box.width * 0.8, box.y + box.height * 0.2);
    await page.waitForFunction((n) => Number(document.getElementById('recon')!.dataset.drawn) > n, before, { timeout: 60_000 });
    const recon = content(await pixels(page, 'recon'));
    expect(recon.lit).toBeGreaterThan(0.05);
    await screenshot(page, 'embedding', 'embedding');
  });

  test('moving a slider (keyboard) decodes a changed image', async () => {
    await page.waitForFunction(() => Number(document.getElementById('walk-cell')!.dataset.drawn ?? 0) > 0, null, { timeout: 60_000 });
    const before = await pixels(page, 'walk-cell');
    const n = await drawn(page, 'walk-cell');
    const slider = page.locator('#sliders input').first();
    await slider.focus();
    for (let k = 0; k < 30; k++) await page.keyboard.press('ArrowRight');
    await page.waitForFunction((n) => Number(document.getElementById('walk-cell')!.dataset.drawn) > n && !/^$/.test(document.getElementById('walk-time')!.textContent!), n, { timeout: 60_000 });
    // Let the last queued decode finish.
    await page.waitForTimeout(1500);
    const after = await pixels(page, 'walk-cell');
    const changed = after.filter((v, i) => v !== before[i]).length;
    expect(changed, 'pixels changed by the slider').toBeGreaterThan(20);
    await screenshot(page, 'walk', 'walk');
    await screenshot(page, 'integrated', 'integrated');
  });

  test('a dropped PNG is embedded, placed in the scatter, and structures are generated in it', async () => {
    const rows = parse(readFileSync(pair.data, 'utf8'), { columns: true }) as Record<string, string>[];
    const png = join(pair.data, '..', rows[0].save_reg_path_flat); // the manifest's 2D PNG column
    const bytes = Array.from(await readFile(png));
    const points = await page.evaluate(() => Number(document.getElementById('scatter')!.dataset.points));
    // A real drop event with a DataTransfer holding the file.
    await page.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'my-cell.png', { type: 'image/png' }));
      document.getElementById('dropzone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, bytes);
    await page.waitForFunction(() => Number(document.getElementById('drop-status')!.dataset.embedded ?? 0) > 0, null, { timeout: 60_000 });
    const after = await page.evaluate(() => ({ points: Number(document.getElementById('scatter')!.dataset.points), dropped: Number(document.getElementById('scatter')!.dataset.dropped), status: document.getElementById('drop-status')!.textContent! }));
    expect(after.points).toBe(points + 1);
    expect(after.dropped).toBe(1);
    expect(after.status).toMatch(/my-cell\.png: .*embedded at/);
    expect(content(await pixels(page, 'dropped-structures')).lit).toBeGreaterThan(0.05);
    await screenshot(page, 'drop', 'drop');
  });

  test('generates cells from z ~ N(0, I) with a seed', async () => {
    await page.fill('#seed', '7');
    await page.click('#gen');
    await page.waitForFunction(() => Number(document.getElementById('generated')!.dataset.drawn ?? 0) > 0, null, { timeout: 60_000 });
    const a = await pixels(page, 'generated');
    expect(content(a).lit).toBeGreaterThan(0.05);
    expect(await page.isEnabled('#download')).toBe(true);
    await screenshot(page, 'generate', 'generate');
    // The same seed gives the same cells.
    const n = await drawn(page, 'generated');
    await page.click('#gen');
    await page.waitForFunction((n) => Number(document.getElementById('generated')!.dataset.drawn) > n, n, { timeout: 60_000 });
    expect(await pixels(page, 'generated')).toEqual(a);
  });

  test('same numbers: the page on Wasm equals Node on Wasm bit for bit', async () => {
    const inPage = (await page.evaluate(() => (globalThis as unknown as { statcell: { fingerprint: () => Promise<Record<string, number[]>> } }).statcell.fingerprint())) as Record<string, number[]>;
    const be = await WasmBackend.create();
    const ex = new Explorer(await loadSite(async (p) => new Uint8Array(await readFile(join(site, p))).buffer), be);
    const inNode = await fingerprint(ex);
    ex.destroy();
    be.destroy();
    expect(Object.keys(inPage).sort()).toEqual(Object.keys(inNode).sort());
    for (const [k, v] of Object.entries(inNode)) {
      const page32 = new Uint32Array(Float32Array.from(inPage[k]).buffer);
      const node32 = new Uint32Array(v.buffer, v.byteOffset, v.length);
      expect(page32.length, k).toBe(node32.length);
      let differ = 0;
      page32.forEach((b, i) => (differ += b !== node32[i] ? 1 : 0));
      expect(differ, `${k}: values differing in bits`).toBe(0);
    }
  });
});

describe('Wasm threads in the page (cross-origin isolated: the models in a worker with the thread pool)', () => {
  let url: string;
  let close: () => void = () => {};
  let inNode: Record<string, Float32Array>;
  // Batches of 8 too: the pool splits the conv family over a batch's images (one image: only the matmuls).
  const BATCH = 8;
  const nodeFingerprint = async (threads: number) => {
    const be = await WasmBackend.create({ threads });
    const ex = new Explorer(await loadSite(async (f) => new Uint8Array(await readFile(join(site, f))).buffer), be);
    const values = await fingerprint(ex, 0, BATCH);
    const split = be.splitLaunches;
    ex.destroy();
    be.destroy();
    return { values, split };
  };
  beforeAll(async () => {
    const server = await serveFolder(site, 0); // statcell serve's COOP/COEP headers
    close = () => server.close();
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    inNode = (await nodeFingerprint(1)).values;
  }, LOAD_MS);
  afterAll(() => close());

  /** The page's values equal Node's on 1 thread, bit for bit. */
  function sameBits(inPage: Record<string, number[]>) {
    expect(Object.keys(inPage).sort()).toEqual(Object.keys(inNode).sort());
    for (const [k, v] of Object.entries(inNode)) {
      const page32 = new Uint32Array(Float32Array.from(inPage[k]).buffer);
      const node32 = new Uint32Array(v.buffer, v.byteOffset, v.length);
      expect(page32.length, k).toBe(node32.length);
      expect(page32.filter((b, i) => b !== node32[i]).length, `${k}: values differing in bits`).toBe(0);
    }
  }

  /** The page's fingerprint on `query`, with its backend line. */
  async function pageFingerprint(query: string) {
    const page = await openPage(url + query);
    const b = await page.evaluate(() => ({ isolated: crossOriginIsolated, text: document.getElementById('backend')!.textContent!, threads: Number(document.getElementById('backend')!.dataset.threads), warning: document.getElementById('warning')!.textContent }));
    const values = (await page.evaluate((batch) => (globalThis as unknown as { statcell: { fingerprint: (i: number, batch: number) => Promise<Record<string, number[]>> } }).statcell.fingerprint(0, batch), BATCH)) as Record<string, number[]>;
    await page.close();
    return { ...b, values };
  }

  test('the compared calls do run split over the pool (so the comparisons below can fail): 3 threads in Node, same bits as 1', async () => {
    const { values, split } = await nodeFingerprint(3);
    expect(split, 'launches split over the thread pool').toBeGreaterThan(10);
    sameBits(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Array.from(v)])));
  });

  test('auto: the page runs Wasm on every core, says so, warns of nothing, and equals Node on 1 thread bit for bit', async () => {
    const p = await pageFingerprint('?idle');
    expect(p.isolated).toBe(true);
    expect(p.threads).toBeGreaterThan(1);
    expect(p.text).toMatch(new RegExp(`Wasm threads ${p.threads}: the page is cross-origin isolated`));
    expect(p.warning).toBe('');
    sameBits(p.values);
  });

  test('same numbers: the page on Wasm at 3 threads (more than the cores, uneven splits) equals Node on 1 thread bit for bit', async () => {
    const p = await pageFingerprint('?backend=wasm&idle&threads=3');
    expect(p.threads).toBe(3);
    expect(p.text).toMatch(/WebAssembly SIMD( \+ relaxed FMA)?, 3 threads/);
    sameBits(p.values);
  });

  test('one thread asked for in an isolated page: the page says why, warns, and has the same bits', async () => {
    const p = await pageFingerprint('?backend=wasm&idle&threads=1');
    expect(p.threads).toBe(1);
    expect(p.text).toMatch(/One thread: 1 thread was asked for/);
    expect(p.warning).toMatch(/Neither WebGPU nor Wasm threads/);
    sameBits(p.values);
  });
});

describe('the explorer on WebGPU', () => {
  test('same numbers: the page on WebGPU is within 1e-5 of Node on WebGPU', async () => {
    const { match } = await start('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '-d', site], /port (\d+)/);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${match[1]}/?backend=webgpu&idle`);
    await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: LOAD_MS, polling: 250 });
    const state = await page.evaluate(() => ({ state: document.body.dataset.state, error: document.getElementById('error')!.textContent, kind: document.getElementById('backend')!.dataset.kind, text: document.getElementById('backend')!.textContent }));
    if (state.state !== 'ready') {
      // No adapter in this Chromium: a failure in CI, a warning elsewhere.
      if (inject('ci')) throw new Error(`WebGPU page: ${state.error}`);
      console.warn(`explorer WebGPU test skipped: ${state.error}`);
      return;
    }
    expect(state.kind).toBe('webgpu');
    expect(state.text).toMatch(/chosen explicitly/);
    const inPage = (await page.evaluate(() => (globalThis as unknown as { statcell: { fingerprint: () => Promise<Record<string, number[]>> } }).statcell.fingerprint())) as Record<string, number[]>;
    const be = await openWebGpu(true);
    const ex = new Explorer(await loadSite(async (p) => new Uint8Array(await readFile(join(site, p))).buffer), be);
    const inNode = await fingerprint(ex);
    ex.destroy();
    be.destroy();
    for (const [k, v] of Object.entries(inNode)) {
      let worst = 0;
      v.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - inPage[k][i]))));
      expect(worst, `${k}: largest |page − node|`).toBeLessThanOrEqual(1e-5);
    }
    await page.close();
  }, 900_000);
});

describe('statcell serve', () => {
  test('serves the explorer cross-origin isolated (COOP/COEP), computing nothing itself', async () => {
    const { match } = await start(process.execPath, [join(import.meta.dirname, '../../cli/statcell.js'), 'serve', '--reference', pair.reference, '--target', pair.target, '--cells', '30', '--port', '0', '--backend', 'wasm'], /explorer at (http:\/\/localhost:\d+\/)/);
    const res = await fetch(match[1]);
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    const page = await openPage(match[1]);
    const b = await page.evaluate(() => ({ isolated: crossOriginIsolated, text: document.getElementById('backend')!.textContent!, points: Number(document.getElementById('scatter')!.dataset.points) }));
    expect(b.isolated).toBe(true);
    expect(b.text).toMatch(/cross-origin isolated/);
    expect(b.points).toBe(30);
    await page.close();
  }, 600_000);
});
