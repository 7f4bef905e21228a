// `npx tsx bench/explorer.ts [--models demo,paper] [--backends wasm1,wasm,webgpu] [--reps n]`: the explorer's decode
// latency per image (one latent code → one cell: what a slider move costs), in the page (headless
// Chromium, served with COOP/COEP so it is cross-origin isolated; the models in the page's model
// worker, timed from the page, message round trip included: Wasm on 1 thread, Wasm on every core,
// and WebGPU on whatever adapter it has, SwiftShader here) and in Node (Wasm at 1 and N threads,
// the same web/explorer.ts code), for the demo-size Target2D (64×40, widths 16/32/64, latent 32) and the
// paper's Target2D (160×96, widths 32…512, latent 512). Decode time does not depend on the
// weights, so each model is trained for one step on a few synthetic cells, exported with
// export-web and served. Prints a table with the machine's load average; not a timed test.

import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright';
import { exportWeb, serveFolder } from '../cli/web-site.ts';
import { trainCommand } from '../cli/train.ts';
import { synthesize } from '../data/synth.ts';
import { WasmBackend } from '../runtime/wasm.ts';
import { Explorer } from '../web/explorer.ts';
import { loadSite } from '../web/site.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const MODELS = {
  demo: { size: [64, 40], channels: [16, 32, 64], latent: 32 },
  paper: { size: [160, 96], channels: [32, 64, 128, 256, 512], latent: 512 },
};
const reps = Number(arg('reps', '20'));
const quiet = () => {};

async function nodeDecodeMs(site: string, threads: number): Promise<number> {
  const be = await WasmBackend.create({ threads });
  const ex = new Explorer(await loadSite(async (p) => new Uint8Array(await readFile(join(site, p))).buffer), be);
  const cell = { membrane: ex.site.cells[0].subarray(0, ex.site.cells[0].length / 3), dna: ex.site.cells[0].subarray(ex.site.cells[0].length / 3, (2 * ex.site.cells[0].length) / 3) };
  const label = ex.site.index.cells[0].label;
  const z = new Float32Array(ex.latent('target'));
  await ex.decode('target', z, [cell], [label]);
  const t0 = performance.now();
  for (let k = 0; k < reps; k++) {
    z[0] = k / reps;
    await ex.decode('target', z, [cell], [label]);
  }
  const ms = (performance.now() - t0) / reps;
  ex.destroy();
  be.destroy();
  return ms;
}

const rows: string[][] = [];
const work = mkdtempSync(join(os.tmpdir(), 'statcell-bench-explorer-'));
const browser = await chromium.launch({ executablePath: process.env.STATCELL_CHROMIUM ?? '/usr/bin/chromium', args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run'] });
try {
  for (const name of arg('models', 'demo,paper').split(',') as (keyof typeof MODELS)[]) {
    const m = MODELS[name];
    if (!m) throw new Error(`--models: ${name}? (demo, paper)`);
    const dir = join(work, name);
    const data = synthesize({ out: join(dir, 'data'), cells: 24, dims: 2, size: m.size, seed: 1 });
    const be = await WasmBackend.create();
    const set = { size: m.size, channels: m.channels, latent: m.latent };
    for (const [role, model] of [['reference', 'models/reference2d.vae'], ['target', 'models/target2d.vae']])
      (await trainCommand({ model, set, data, out: join(dir, role), backend: 'wasm', batch: 2, iterations: 1, seed: 1, evalSamples: 1, openedBackend: be })).runtime.destroy();
    const site = join(dir, 'site');
    await exportWeb({ reference: join(dir, 'reference'), target: join(dir, 'target'), split: 'all', cells: 8, checkpoint: 'latest', out: site }, be, quiet);
    be.destroy();
    const server = await serveFolder(site, 0);
    const port = (server.address() as { port: number }).port;
    for (const backend of arg('backends', 'wasm1,wasm,webgpu').split(',')) {
      const query = { wasm1: 'backend=wasm&threads=1', wasm: 'backend=wasm', webgpu: 'backend=webgpu' }[backend];
      if (!query) throw new Error(`--backends: ${backend}? (wasm1: Wasm on 1 thread, wasm: on every core, webgpu)`);
      const page = await browser.newPage();
      const t0 = performance.now();
      await page.goto(`http://127.0.0.1:${port}/?${query}&idle`);
      await page.waitForFunction(() => document.body.dataset.state, null, { timeout: 600_000, polling: 500 });
      const load = performance.now() - t0;
      const info = await page.evaluate(() => ({ state: document.body.dataset.state, text: document.getElementById('backend')!.textContent!, desc: document.getElementById('backend')!.dataset.description, error: document.getElementById('error')!.textContent }));
      if (info.state !== 'ready') rows.push([name, `page ${backend}`, '—', '—', '—', info.error ?? '']);
      else {
        // A software adapter decodes the paper's model slowly: fewer repetitions there.
        const n = backend === 'webgpu' && /software/.test(info.desc ?? '') ? Math.max(2, Math.round(reps / 10)) : reps;
        const ms = await page.evaluate((n) => (globalThis as unknown as { statcell: { decodeMs: (n: number) => Promise<number> } }).statcell.decodeMs(n), n);
        rows.push([name, `page ${backend}`, ms.toFixed(1), (load / 1000).toFixed(1), os.loadavg()[0].toFixed(1), info.desc ?? '']);
      }
      await page.close();
    }
    server.close();
    for (const threads of [1, os.availableParallelism()]) {
      // A failing row is that row's failure: the page's rows are kept.
      const ms = await nodeDecodeMs(site, threads).then((v) => v.toFixed(1), (e) => `failed: ${(e as Error).message.split('\n')[0]}`);
      rows.push([name, `node wasm`, ms, '—', os.loadavg()[0].toFixed(1), `WebAssembly SIMD, ${threads} thread(s)`]);
    }
  }
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(`decode latency per image (one latent code), ${reps} decodes after a warm-up; ${os.cpus()[0].model}, ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('| model | where | ms / decode | page load s | load (1 min) | device |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
