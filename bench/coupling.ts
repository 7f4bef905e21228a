// `npx tsx bench/coupling.ts [options]`: coupling throughput (statistical-cell.md §4), test cells
// per second per backend, through the same code as `statcell analyze coupling`
// (analysis/coupling.ts couplingOfCells: per cell 1 + 2·permutations ELBOs × samples z draws,
// batched through the compiled evaluation program). The weights are freshly initialised and the
// cells random: the cost does not depend on either. Prints a table and writes
// bench/results/<date>-<machine>-coupling.json.
//
//   --backends a,b      wasm, webgpu (default wasm; webgpu is for a hardware adapter: on SwiftShader
//                       one cell of the demo's case did not finish in 300 s)
//   --size Y,X          image size (default 64,40: the demo's)
//   --channels a,b,c    encoder widths (default 16,32,64: the demo's)
//   --latent n          (default 32)   --classes n (default 9: the demo's)
//   --cells n           test cells timed (default 6), after one warm-up cell
//   --cases P×S,…       permutations × samples (default 10x2,100x10: the demo's and the paper's;
//                       the paper's is timed on 1 cell)
//   --batch n           evaluation batch (default 1 + 2·permutations, at most 64)
//   --out file          JSON path; --no-json to print only

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cellKey, couplingOfCells } from '../analysis/coupling.ts';
import { compileModelFile } from '../compiler/index.ts';
import type { Batch } from '../data/dataset.ts';
import type { CellRow } from '../data/manifest.ts';
import { openBackend } from '../runtime/device.ts';
import { ModelRuntime } from '../session/model.ts';
import { errMessage } from './common.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const loadavg = () => os.loadavg().map((x) => +x.toFixed(2));
const ints = (v: string) => v.split(',').map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench coupling: '${v}' is not a list of positive whole numbers`);
  return n;
});

interface Args {
  backends: string[];
  size: number[];
  channels: number[];
  latent: number;
  classes: number;
  cells: number;
  cases: { permutations: number; samples: number }[];
  batch?: number;
  out?: string;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { backends: ['wasm'], size: [64, 40], channels: [16, 32, 64], latent: 32, classes: 9, cells: 6, cases: [{ permutations: 10, samples: 2 }, { permutations: 100, samples: 10 }], json: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench coupling: ${k} needs a value`);
      return v;
    };
    if (k === '--backends') a.backends = value().split(',');
    else if (k === '--size') a.size = ints(value());
    else if (k === '--channels') a.channels = ints(value());
    else if (k === '--latent') a.latent = ints(value())[0];
    else if (k === '--classes') a.classes = ints(value())[0];
    else if (k === '--cells') a.cells = ints(value())[0];
    else if (k === '--batch') a.batch = ints(value())[0];
    else if (k === '--cases')
      a.cases = value().split(',').map((c) => {
        const [p, s] = c.split('x').map(Number);
        if (!(p >= 1 && s >= 1)) throw new Error(`bench coupling: --cases '${c}': expected permutations x samples, e.g. 10x2`);
        return { permutations: p, samples: s };
      });
    else if (k === '--out') a.out = value();
    else if (k === '--no-json') a.json = false;
    else throw new Error(`bench coupling: unknown option ${k}`);
  }
  for (const b of a.backends) if (b !== 'wasm' && b !== 'webgpu') throw new Error(`bench coupling: --backends: '${b}' is not wasm or webgpu`);
  return a;
}

/** Random test cells in memory (one Batch of one each), with distinct CellIds and labels. */
function randomCells(n: number, size: number[], classes: number, seed: number): Batch[] {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const vox = size.reduce((a, b) => a * b, 1);
  const names = Array.from({ length: classes }, (_, k) => `class ${k}`);
  return Array.from({ length: n }, (_, i) => {
    const onehot = new Float32Array(classes);
    onehot[i % classes] = 1;
    const row = { cellId: String(i), structure: names[i % classes], columns: {} } as unknown as CellRow;
    return { reference: Float32Array.from({ length: 2 * vox }, rand), structure: Float32Array.from({ length: vox }, rand), onehot, classes: names, rows: [row] };
  });
}

export interface CouplingResult {
  backend: string;
  permutations: number;
  samples: number;
  batch: number;
  ok: boolean;
  reason?: string;
  cells?: number;
  seconds?: number;
  cellsPerS?: number;
  /** ELBO evaluations (one z draw of one item) per second. */
  evalsPerS?: number;
  loadavg: number[];
}

async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  const model = compileModelFile(join(ROOT, 'models', 'target2d.vae'), { overrides: { size: a.size, channels: a.channels, latent: a.latent, classes: a.classes } });
  const results: CouplingResult[] = [];
  const t0 = performance.now();
  for (const name of a.backends) {
    let opened;
    try {
      opened = await openBackend(name as 'wasm' | 'webgpu');
    } catch (e) {
      for (const c of a.cases) results.push({ backend: name, ...c, batch: 0, ok: false, reason: `does not open: ${errMessage(e)}`, loadavg: loadavg() });
      continue;
    }
    const backend = opened.backend;
    const rt = new ModelRuntime(backend, model);
    rt.init(1);
    for (const c of a.cases) {
      const batch = a.batch ?? Math.min(64, 1 + 2 * c.permutations);
      const software = /\(software\)/.test(backend.description);
      const heavy = c.permutations * c.samples > 200;
      // A software WebGPU adapter (SwiftShader) is far slower than Wasm: only the demo's case, on one cell.
      if (software && heavy) {
        results.push({ backend: backend.description, ...c, batch, ok: false, reason: 'not timed on a software adapter (hours); see the demo case', loadavg: loadavg() });
        continue;
      }
      // The paper's case costs 50× the demo's: one timed cell.
      const n = heavy || software ? 1 : a.cells;
      const cells = randomCells(n + 1 + c.permutations, a.size, a.classes, 7);
      // couplingOfCells skips the cells given as done: here, every cell but the ones to time.
      const except = (timed: (i: number) => boolean) => new Set(cells.filter((_, i) => !timed(i)).map((x) => cellKey(x.rows[0])));
      const base = { backend: backend.description, ...c, batch };
      try {
        // A warm-up cell (programs compiled for this batch), then n timed ones; the other cells are partners only.
        await couplingOfCells(rt, cells, { ...c, batch, seed: 1, done: except((i) => i === 0) });
        const t = performance.now();
        const done = await couplingOfCells(rt, cells, { ...c, batch, seed: 1, done: except((i) => i >= 1 && i <= n) });
        const seconds = (performance.now() - t) / 1000;
        results.push({ ...base, ok: true, cells: done.length, seconds: +seconds.toFixed(2), cellsPerS: +(done.length / seconds).toFixed(3), evalsPerS: +((done.length * (1 + 2 * c.permutations) * c.samples) / seconds).toFixed(1), loadavg: loadavg() });
      } catch (e) {
        results.push({ ...base, ok: false, reason: errMessage(e), loadavg: loadavg() });
      }
      console.error(`${base.backend} ${c.permutations}×${c.samples}: ${results.at(-1)!.ok ? `${results.at(-1)!.cellsPerS} cells/s` : results.at(-1)!.reason}`);
    }
    rt.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const lines = [
    `coupling throughput: target2d at ${a.size.join('×')}, channels ${a.channels.join(',')}, latent ${a.latent}, ${a.classes} classes; ${cpu}, ${os.cpus().length} cores; load at the end ${loadavg().join(' ')}`,
    '',
    'backend | permutations × samples | batch | cells | s | cells/s | ELBO evals/s | load (1 min)',
    '---|---|---:|---:|---:|---:|---:|---:',
    ...results.map((r) => (r.ok ? `${r.backend} | ${r.permutations} × ${r.samples} | ${r.batch} | ${r.cells} | ${r.seconds} | ${r.cellsPerS} | ${r.evalsPerS} | ${r.loadavg[0]}` : `${r.backend} | ${r.permutations} × ${r.samples} | - | - | - | - | ${r.reason} | ${r.loadavg[0]}`)),
  ];
  console.log(lines.join('\n'));
  if (a.json) {
    const machine = `${cpu.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '').trim().replace(/[^a-z0-9]+/g, '-')}-${os.cpus().length}c`;
    const file = a.out ?? join(HERE, 'results', `${new Date().toISOString().slice(0, 10)}-${machine}-coupling.json`);
    mkdirSync(dirname(file), { recursive: true });
    let commit = '';
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      /* not a git checkout */
    }
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), command: ['npx tsx bench/coupling.ts', ...argv].join(' '), commit, machine: { cpu, cores: os.cpus().length, node: process.versions.node }, results, seconds: +seconds.toFixed(1) }, null, 1) + '\n');
    console.log(`\nwrote ${file}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
