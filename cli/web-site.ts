// statcell export-web / serve: the explorer page (web/, built by Vite) with a site folder of a
// trained run's data (web/site.ts): the model's source files, its checkpoint without optimizer
// state, each cell's μ and log σ², and the cells' images. Nothing is computed by the server: it
// serves files, with the COOP/COEP headers that make the page cross-origin isolated.

import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numel } from '../kernels/types.ts';
import type { Backend } from '../runtime/backend.ts';
import { writeSafetensors } from '../runtime/safetensors.ts';
import { feedsFor, inputWithRole, requireUnconditioned } from '../session/feeds.ts';
import { checkComposes, checkSameSize } from '../session/generate.ts';
import { openRun, type OpenedRun } from '../session/run.ts';
import { SITE_FORMAT, type ModelRole, type SiteCell, type SiteIndex, type SiteModel } from '../web/site.ts';
import { openSplit } from './common.ts';
import { pixelSizeForRun } from './generate.ts';
import { makeDirs, writeFolder } from '../data/files.ts';
import { imageDims } from '../data/decode.ts';

export interface ExportOptions {
  reference?: string;
  target?: string;
  /** Manifest (default: the run's own). */
  data?: string;
  split: 'train' | 'validate' | 'test' | 'all';
  /** At most this many cells (the first of the split). */
  cells: number;
  checkpoint: string;
  out: string;
}

/** Where the built page is: dist/web beside the bundled command line, or built here from web/ (a checkout). */
export async function builtPage(log: (l: string) => void): Promise<string> {
  for (const rel of ['./web/', '../dist/web/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    // dist/web of a checkout may be older than its sources: only trusted when they are absent.
    if (existsSync(join(dir, 'index.html')) && !existsSync(fileURLToPath(new URL('../web/main.ts', import.meta.url)))) return dir;
  }
  const root = fileURLToPath(new URL('..', import.meta.url));
  const config = join(root, 'web', 'vite.config.mjs');
  if (!existsSync(config)) throw new Error('the explorer page is not built (no dist/web/ in the package) and its sources (web/) are not here; reinstall statcell or run npm run build');
  // Built once per state of the sources the page bundles.
  const h = createHash('sha256');
  for (const d of ['web', 'dsl', 'compiler', 'runtime', 'session', 'kernels', 'data', 'analysis'])
    for (const e of readdirSync(join(root, d), { recursive: true, withFileTypes: true }))
      if (e.isFile() && /\.(ts|mjs|html)$/.test(e.name)) h.update(join(e.parentPath, e.name)).update(readFileSync(join(e.parentPath, e.name)));
  for (const f of ['kernels.wasm', 'kernels-mt.wasm']) if (existsSync(join(root, 'build', f))) h.update(readFileSync(join(root, 'build', f)));
  const out = join(tmpdir(), `statcell-web-page-${h.digest('hex').slice(0, 16)}`);
  if (existsSync(join(out, 'index.html'))) return out;
  log('building the explorer page (Vite)…');
  const { build } = await import('vite');
  const tmp = `${out}.tmp-${process.pid}`;
  await build({ configFile: config, build: { outDir: tmp, emptyOutDir: true } });
  rmSync(out, { recursive: true, force: true });
  cpSync(tmp, out, { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

/** Parameters and state by checkpoint name, without Adam's moments. */
function weightsOf(r: OpenedRun, tensors: Map<string, Float32Array>): Uint8Array {
  const keep = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const t of r.model.tensors) {
    const data = tensors.get(t.name)!;
    if (data.length !== numel(t.shape)) throw new Error(`${r.dir}: tensor ${t.name} has ${data.length} values, the model needs ${numel(t.shape)}`);
    keep.set(t.name, { shape: t.shape, data });
  }
  return writeSafetensors(keep, { format: 'statcell', model: r.model.name, checkpoint: r.checkpoint, iteration: String(r.sidecar.iteration) });
}

/** The roles the page calls each model through, and what for. */
const EXPLORER_ROLES = [['encode', 'embed cells'], ['decode', 'reconstruct, walk and generate cells (from z ~ N(0, I))']] as const;

/** Writes the site's data (index.json, data/) into `out` for the runs; returns the index. */
export async function exportSiteData(o: ExportOptions, backend: Backend, log: (l: string) => void): Promise<SiteIndex> {
  if (!o.reference && !o.target) throw new Error('export-web: give --reference <run>, --target <run>, or both');
  if (!Number.isInteger(o.cells) || o.cells < 1) throw new Error(`--cells ${o.cells}: expected a positive whole number`);
  const runs: Partial<Record<ModelRole, OpenedRun>> = {};
  try {
    for (const role of ['reference', 'target'] as const) {
      const dir = o[role];
      if (dir) runs[role] = await openRun(dir, backend, o.checkpoint, log);
    }
    // The page calls them in their roles (given swapped, it failed in the browser).
    if (runs.reference) requireUnconditioned(runs.reference.model, "be the explorer's reference model", `a reference model is of the cell alone; give ${o.reference} as --target`);
    if (runs.target) for (const role of ['reference', 'label'] as const) inputWithRole(runs.target.model, role, "the explorer's target model (structures given a cell and a label)");
    // The page calls every model through these roles; a model without one exported, and the page failed there.
    for (const r of Object.values(runs))
      for (const [role, purpose] of EXPLORER_ROLES)
        if (!r!.model.roles[role]) throw r!.model.error('SC5001', { need: 'entry', model: r!.model.name, role, purpose: `${purpose} in the explorer (export-web ${r!.dir})` });
    if (runs.reference && runs.target) {
      checkSameSize(runs.reference, runs.target, 'export-web');
      checkComposes(runs.reference, runs.target, 'export-web'); // the page generates structures in generated cells
    }
    // The cells: from the target's vocabulary when there is a target (it takes labels).
    const first = (runs.target ?? runs.reference)!;
    const manifest = o.data ?? first.info.data;
    const ds = openSplit(manifest, first.model, o.split, { labels: first.info.labels, fit: first.info.fit, log });
    const n = Math.min(o.cells, ds.length);
    if (!n) throw new Error(`export-web: ${manifest} has no cells in split ${o.split}`);
    const batch = Math.min(16, n);
    const data = join(o.out, 'data');
    makeDirs(data);
    const cells: SiteCell[] = [];
    const images: Float32Array[] = [];
    const embeddings: Record<string, Float32Array[]> = { reference: [], target: [] };
    for (let start = 0; start < n; start += batch) {
      const idx = Array.from({ length: batch }, (_, k) => Math.min(start + k, n - 1));
      const b = await ds.batch(idx);
      const count = Math.min(batch, n - start);
      const vox = b.structure.length / batch;
      for (let c = 0; c < count; c++) {
        const row = b.rows[c];
        cells.push({ id: row.cellId, label: row.structure, split: row.split });
        const img = new Float32Array(3 * vox);
        img.set(b.reference.subarray(2 * c * vox, (2 * c + 2) * vox));
        img.set(b.structure.subarray(c * vox, (c + 1) * vox), 2 * vox);
        images.push(img);
      }
      for (const [role, r] of Object.entries(runs)) {
        const enc = r!.model.roles.encode;
        if (!enc) continue;
        const out = await r!.runtime.run(enc.entry, feedsFor(r!.model, b), batch);
        const L = out[enc.mean].length / batch;
        for (let c = 0; c < count; c++) {
          embeddings[role].push(out[enc.mean].slice(c * L, (c + 1) * L));
          embeddings[role].push(out[enc.logvar].slice(c * L, (c + 1) * L));
        }
      }
    }
    const join32 = (parts: Float32Array[]) => {
      const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) all.set(p, (at += p.length) - p.length);
      return new Uint8Array(all.buffer);
    };
    writeFileSync(join(data, 'cells.f32'), join32(images));
    const models: SiteIndex['models'] = {};
    for (const [role, r] of Object.entries(runs) as [ModelRole, OpenedRun][]) {
      const src = join(data, role, 'src');
      makeDirs(src);
      const files: Record<string, string> = {};
      Object.entries(r.sidecar.model.files!).forEach(([name, text], k) => {
        writeFileSync(join(src, `${k}.vae`), text);
        files[name] = `data/${role}/src/${k}.vae`;
      });
      writeFileSync(join(data, `${role}.safetensors`), weightsOf(r, await r.runtime.readAll()));
      writeFileSync(join(data, `${role}-embedding.f32`), join32(embeddings[role]));
      const meta: SiteModel = {
        name: r.sidecar.model.name,
        entryFile: r.sidecar.model.entryFile!,
        files,
        overrides: r.info.overrides,
        weights: `data/${role}.safetensors`,
        embedding: `data/${role}-embedding.f32`,
        checkpoint: r.checkpoint,
        iteration: r.sidecar.iteration,
        labels: [...r.info.labels],
        ...(r.info.precision && { precision: r.info.precision }),
      };
      models[role] = meta;
    }
    const size = first.model.inputs.find((i) => i.role?.kind === 'image')!.itemShape.slice(1);
    // What the page needs to read dropped files and write its own as training did: the pixel size and the intensity scale.
    const scales = new Set(ds.rows.map((r) => r.intensityScale));
    const intensityScale = scales.size === 1 ? [...scales][0] : undefined;
    const index: SiteIndex = {
      format: SITE_FORMAT,
      size,
      cells,
      cellData: 'data/cells.f32',
      fit: first.info.fit ?? 'exact',
      models,
      tiffChannels: ds.rows[0]?.channels,
      pixelSize: await pixelSizeForRun(manifest, imageDims(size)),
      ...(intensityScale !== undefined ? { intensityScale } : {}),
      written: new Date().toISOString(),
    };
    writeFileSync(join(o.out, 'index.json'), JSON.stringify(index, null, 1) + '\n');
    return index;
  } finally {
    for (const r of Object.values(runs)) r?.runtime.destroy();
  }
}

/**
 * The whole static site: the built page and the runs' data, written into a folder beside --out
 * and renamed into place, so that a failed export leaves no page that cannot load. --out may be
 * new, empty or an earlier site (replaced); anything else (a run directory) is refused.
 */
export async function exportWeb(o: ExportOptions, backend: Backend, log: (l: string) => void): Promise<SiteIndex> {
  const out = resolve(o.out);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new Error(`export-web: ${o.out} is a file; give a new or empty folder`);
  if (existsSync(out) && readdirSync(out).length && !isSite(out)) throw new Error(`export-web: ${o.out} holds other files and no explorer site; give a new or empty folder (an earlier site there is replaced)`);
  const index = await writeFolder(out, async (tmp) => {
    // The data first: it checks the runs before the page is built.
    const index = await exportSiteData({ ...o, out: tmp }, backend, log);
    cpSync(await builtPage(log), tmp, { recursive: true });
    return index;
  });
  log(`exported ${index.cells.length} cells and ${Object.keys(index.models).join(' and ')} model(s) to ${o.out}`);
  return index;
}

/** A folder export-web wrote: its index.json is a site index. */
function isSite(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).format === SITE_FORMAT;
  } catch {
    return false;
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/**
 * Serves a folder as static files on localhost with the headers that make the page cross-origin
 * isolated (SharedArrayBuffer, Wasm threads): COOP same-origin, COEP require-corp.
 */
export function serveFolder(dir: string, port: number, host = '127.0.0.1'): Promise<Server> {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    // Every reply, errors included, keeps the page's isolation; only reads are served.
    const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    const fail = (status: number, text: string, more: Record<string, string> = {}) => res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...isolation, ...more }).end(text);
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} is not served: the site is read-only`, { Allow: 'GET, HEAD' });
    // Only pages of this machine's own names: a page elsewhere that rebinds its DNS name to
    // 127.0.0.1 would otherwise read the weights and the cells.
    const hostName = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
    if (!['localhost', '127.0.0.1', '[::1]'].includes(hostName.toLowerCase())) return fail(403, `not served to host ${hostName}: open it as localhost or 127.0.0.1`);
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      // A malformed escape (/%E0%A4%A) threw out of the handler and ended the server.
      return fail(400, 'malformed URL');
    }
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      return fail(403, 'outside the site');
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file) || !statSync(file).isFile()) {
      return fail(404, `not found: ${path}`);
    }
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', ...isolation, 'Cache-Control': 'no-cache', 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((ok, err) => {
    server.once('error', err);
    server.listen(port, host, () => ok(server));
  });
}

/**
 * Serves a temporary folder and exports into it; resolves with the server and the folder. The port
 * is taken first, so that one in use is said before the export's minutes. The folder goes when
 * the server closes or the process exits (the command line exits on SIGINT, SIGTERM and SIGHUP),
 * also during the export.
 */
export async function serveWeb(o: Omit<ExportOptions, 'out'> & { port: number }, backend: Backend, log: (l: string) => void): Promise<{ server: Server; dir: string; url: string }> {
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error(`--port ${o.port}: expected 0 (any free port) to 65535`);
  const dir = mkdtempSync(join(tmpdir(), 'statcell-serve-'));
  const remove = () => {
    rmSync(dir, { recursive: true, force: true });
    process.off('exit', remove);
  };
  process.on('exit', remove);
  let server: Server | undefined;
  try {
    server = await serveFolder(dir, o.port);
    await exportWeb({ ...o, out: dir }, backend, log);
  } catch (e) {
    server?.close();
    remove();
    throw e;
  }
  server.on('close', remove);
  const addr = server.address();
  const url = `http://localhost:${typeof addr === 'object' && addr ? addr.port : o.port}/`;
  return { server, dir, url };
}
