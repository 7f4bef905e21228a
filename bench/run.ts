// `npm run bench [-- options]`: GFLOP/s of our backends and of peer libraries on the 2D
// reference model's encoder convolutions (forward, input gradient, weight gradient; batch 8)
// and a 1024³ matmul, next to the machine's measured and theoretical Wasm SIMD ceiling.
// Prints a table and writes bench/results/<date>-<machine>.json.
//
//   --only a,b    engines to run: wasm (the exact build), wasm-fma (relaxed SIMD, the default build), webgpu, tfjs, ort (also: ours, peers)
//   --quick       four representative layers, fewer repetitions
//   --full        WebGPU on every layer even on a software adapter (slow), no time cap
//   --layers s    only layers whose name contains s (e.g. d3.)
//   --out file    JSON path (default bench/results/<date>-<machine>[-quick].json)
//   --best        GFLOP/s from the fastest repetition instead of the median (busy machines)
//   --no-check    skip the cross-check of every engine against the float64 reference
//   --no-json     print only
// Training images/s of the whole 2D models (and PyTorch beside them): `npm run bench -- --train
// [options]`, the same as `npm run bench:train [-- options]` (bench/train.ts, see its --help).

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureCeiling, peakModule, type Ceiling } from './ceiling.ts';
import type { Engine, Outcome, Task, Timing, TimerOptions } from './common.ts';
import { errMessage, taskFlops, taskName, taskShape } from './common.ts';
import { CHECK_TOLERANCE, crossCheck, type CheckResult } from './check.ts';
import { convTasks, isSoftwareGpuLayer } from './conv.ts';
import { matmulTasks } from './matmul.ts';
import { openOurs } from './ours.ts';
import { openOnnx } from './peers/onnx.ts';
import { openTfjs } from './peers/tfjs.ts';

const ALL = ['wasm', 'wasm-fma', 'webgpu', 'tfjs', 'ort'] as const;
type EngineName = (typeof ALL)[number];

interface Args {
  only: EngineName[];
  quick: boolean;
  full: boolean;
  layers?: string;
  out?: string;
  json: boolean;
  best: boolean;
  check: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { only: [...ALL], quick: false, full: false, json: true, best: false, check: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench: ${k} needs a value`);
      return v;
    };
    if (k === '--quick') a.quick = true;
    else if (k === '--full') a.full = true;
    else if (k === '--no-json') a.json = false;
    else if (k === '--best') a.best = true;
    else if (k === '--no-check') a.check = false;
    else if (k === '--layers') a.layers = value();
    else if (k === '--out') a.out = value();
    else if (k === '--only') {
      const names = value()
        .split(',')
        .flatMap((n) => (n === 'ours' ? ['wasm', 'webgpu'] : n === 'peers' ? ['tfjs', 'ort'] : [n]));
      const bad = names.filter((n) => !(ALL as readonly string[]).includes(n));
      if (bad.length) throw new Error(`bench: unknown engine ${bad.join(', ')}; choose from ${ALL.join(', ')}, ours, peers`);
      a.only = names as EngineName[];
    } else if (k === '--help' || k === '-h') {
      console.log(readHeader());
      process.exit(0);
    } else throw new Error(`bench: unknown option ${k} (see --help)`);
  }
  return a;
}

function readHeader(): string {
  return 'usage: npm run bench -- [--only wasm,wasm-fma,webgpu,tfjs,ort|ours|peers] [--quick] [--full] [--layers s] [--best] [--no-check] [--out file] [--no-json]';
}

const OPENERS: Record<EngineName, () => Promise<Engine>> = {
  wasm: () => openOurs('wasm'),
  'wasm-fma': () => openOurs('wasm-fma'),
  webgpu: () => openOurs('webgpu'),
  tfjs: openTfjs,
  ort: openOnnx,
};

interface Row {
  task: Task;
  results: Partial<Record<EngineName, Outcome>>;
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2));

async function main(): Promise<void> {
  const train = process.argv.indexOf('--train');
  if (train >= 0) return (await import('./train.ts')).main(process.argv.slice(2).filter((_, i) => i !== train - 2)).then(() => process.exit(0));
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const log = (s: string) => process.stderr.write(`${s}\n`);

  log('measuring the Wasm SIMD ceiling…');
  const ceiling = await measureCeiling();

  const engines = new Map<EngineName, Engine>();
  const unavailable = new Map<EngineName, string>();
  for (const name of args.only) {
    try {
      engines.set(name, await OPENERS[name]());
    } catch (e) {
      unavailable.set(name, errMessage(e));
    }
  }
  const checks: CheckResult[] = [];
  if (args.check) {
    log('checking every engine against the float64 reference…');
    for (const e of engines.values()) checks.push(await crossCheck(e));
  }
  const softwareGpu = /\(software\)/.test(engines.get('webgpu')?.describe() ?? '');

  const tasks = [...convTasks({ quick: args.quick, filter: args.layers }), ...(args.layers ? [] : matmulTasks())];
  const cpuTimer: TimerOptions = args.quick ? { warmup: 1, minReps: 3, maxReps: 5, budgetMs: 150 } : { warmup: 2, minReps: 3, maxReps: 15, budgetMs: 400 };
  const gpuTimer: TimerOptions = softwareGpu ? { warmup: 1, minReps: 2, maxReps: 3, budgetMs: 0 } : cpuTimer;

  // A software adapter gets a time budget: past it the remaining WebGPU rows are not run.
  const gpuBudgetMs = softwareGpu && !args.full ? (args.quick ? 20_000 : 45_000) : Infinity;
  let gpuSpentMs = 0;
  let gpuFlops = 0;
  const rows: Row[] = [];
  for (const task of tasks) {
    const row: Row = { task, results: {} };
    for (const name of args.only) {
      const engine = engines.get(name);
      if (!engine) {
        row.results[name] = { ok: false, reason: unavailable.get(name) ?? 'not opened' };
        continue;
      }
      // SwiftShader runs WGSL on the CPU, slowly: only two layers unless asked.
      if (name === 'webgpu' && softwareGpu && !args.full && task.kind === 'conv' && !isSoftwareGpuLayer(task)) continue;
      if (name === 'webgpu' && Number.isFinite(gpuBudgetMs) && gpuFlops > 0) {
        // At least two launches (warm-up + timed) at the rate seen so far must fit the budget left.
        const estMs = (2 * taskFlops(task) * gpuSpentMs) / gpuFlops;
        if (gpuSpentMs + estMs > gpuBudgetMs) {
          row.results[name] = { ok: false, reason: `not run: software WebGPU adapter, its ${gpuBudgetMs / 1000} s budget would be exceeded (--full runs all)` };
          continue;
        }
      }
      const t1 = performance.now();
      const res = await engine.run(task, name === 'webgpu' ? gpuTimer : cpuTimer);
      if (name === 'webgpu') {
        gpuSpentMs += performance.now() - t1;
        gpuFlops += res.ok ? taskFlops(task) * 2 : 0;
      }
      row.results[name] = res;
      log(`  ${taskName(task).padEnd(26)} ${name.padEnd(7)} ${res.ok ? `${fmt(res.timing.gflops)} GFLOP/s` : `n/a: ${res.reason}`}`);
    }
    rows.push(row);
  }
  for (const e of engines.values()) await e.close?.();
  // Measure the ceiling again and keep the best: on a shared machine one measurement may
  // have run beside someone else's job, and a ceiling that is too low flatters every ratio.
  log('measuring the Wasm SIMD ceiling again…');
  const again = await measureCeiling();
  ceiling.measured1 = Math.max(ceiling.measured1, again.measured1);
  if (again.measuredAll) ceiling.measuredAll = Math.max(ceiling.measuredAll ?? 0, again.measuredAll);
  if (again.measuredFma1) ceiling.measuredFma1 = Math.max(ceiling.measuredFma1 ?? 0, again.measuredFma1);
  const seconds = (performance.now() - t0) / 1000;

  const text = report(args, ceiling, engines, unavailable, checks, rows, softwareGpu, seconds);
  console.log(text);
  if (args.json) {
    const file = args.out ?? defaultOut(ceiling, args.quick);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(toJson(args, ceiling, engines, unavailable, checks, rows, seconds), null, 1) + '\n');
    console.log(`\nwrote ${file}`);
  }
}

/** The commit benchmarked, with '+dirty' when kernels or runtime had uncommitted changes. */
function gitCommit(): string | null {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'kernels', 'runtime', 'build').length > 0;
    return git('rev-parse', '--short', 'HEAD') + (dirty ? '+dirty' : '');
  } catch {
    return null;
  }
}

function machineName(c: Ceiling): string {
  const model = c.cpu.model.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '').trim().replace(/[^a-z0-9]+/g, '-');
  return `${model}-${c.cpu.cores}c`;
}

function defaultOut(c: Ceiling, quick: boolean): string {
  const date = new Date().toISOString().slice(0, 10);
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, 'results', `${date}-${machineName(c)}${quick ? '-quick' : ''}.json`);
}

/** Sums FLOPs and median times of one engine over the rows of one pass (all must have run). */
function total(rows: Row[], name: EngineName, best: boolean): { gflops: number; ms: number } | null {
  let flops = 0;
  let ms = 0;
  for (const r of rows) {
    const o = r.results[name];
    if (!o?.ok) return null;
    flops += taskFlops(r.task);
    ms += ((best ? o.timing.minMs : o.timing.medianMs) * taskFlops(r.task)) / o.timing.flops; // per launch on WebGPU
  }
  return rows.length ? { gflops: flops / (ms * 1e6), ms } : null;
}

function report(args: Args, c: Ceiling, engines: Map<EngineName, Engine>, unavailable: Map<EngineName, string>, checks: CheckResult[], rows: Row[], softwareGpu: boolean, seconds: number): string {
  const out: string[] = [];
  const peak = c.measured1;
  out.push(`machine   ${c.cpu.model}, ${c.cpu.cores} cores, ${c.cpu.mhz.toFixed(0)} MHz (/proc/cpuinfo), Node ${process.versions.node}, load ${os.loadavg()[0].toFixed(2)}`);
  out.push(`ceiling   measured Wasm SIMD f32x4 mul+add loop: ${fmt(c.measured1)} GFLOP/s per thread` + (c.measuredAll ? `, ${fmt(c.measuredAll)} with ${c.cpu.cores} threads` : ''));
  const flagged = !WebAssembly.validate(peakModule(true));
  out.push(`          relaxed-SIMD FMA loop: ${c.measuredFma1 ? `${fmt(c.measuredFma1)} GFLOP/s per thread${flagged ? ' (Node with --experimental-wasm-relaxed-simd)' : ''}; wasm-fma is our relaxed-SIMD build` : 'not available'}`);
  out.push(`          theoretical: ${(c.cpu.mhz / 1000).toFixed(2)} GHz × 4 lanes × 2 FLOPs × ${c.pairsPerCycle} = ${fmt(c.theoretical1)} GFLOP/s per thread (${c.assumption}; turbo clocks can exceed it)`);
  for (const name of args.only) {
    const e = engines.get(name);
    out.push(`${name.padEnd(9)} ${e ? e.describe() : `not available: ${unavailable.get(name)}`}`);
  }
  const wrong = new Set<string>();
  for (const ch of checks) {
    const name = [...engines.entries()].find(([, e]) => e.name === ch.engine)?.[0] ?? ch.engine;
    // A wrong number marks the column; an op that cannot run yet shows as n/a in its rows.
    if (ch.failures.some((f) => f.includes('rel. error'))) wrong.add(name);
    const head = ch.failures.length ? `FAILED (${ch.failures.length})` : `ok, max rel. error ${ch.maxRelErr!.toExponential(1)}`;
    out.push(`check     ${name}: ${head} vs the float64 reference at small odd shapes${ch.failures.length ? ': ' + ch.failures.slice(0, 3).join('; ') : ''}`);
  }
  out.push('');

  // The table: GFLOP/s (median of the repetitions) per engine, then ratios of our wasm.
  const cols = args.only;
  const fmaCol = cols.includes('wasm-fma') && !!c.measuredFma1;
  const hasPeer = (p: EngineName) => cols.includes(p) && cols.includes('wasm');
  const header = ['task', 'shape', 'GFLOP', ...cols.map((c) => `${c}${wrong.has(c) ? ' (WRONG)' : ''} GF/s`), ...(hasPeer('tfjs') ? ['wasm/tfjs'] : []), ...(hasPeer('ort') ? ['wasm/ort'] : []), ...(cols.includes('wasm') ? ['wasm/peak'] : []), ...(fmaCol ? ['fma/tfjs', 'fma/fma-peak'] : [])];
  const notes: string[] = [];
  const noteRef = (s: string) => {
    let i = notes.indexOf(s);
    if (i < 0) i = notes.push(s) - 1;
    return `[${i + 1}]`;
  };
  const rate = (t: Timing) => (args.best ? t.flops / (t.minMs * 1e6) : t.gflops);
  const cell = (o: Outcome | undefined) => (!o ? '-' : o.ok ? fmt(rate(o.timing)) + (o.note ? noteRef(o.note) : '') : `n/a${noteRef(o.reason)}`);
  const gf = (o: Outcome | undefined) => (o?.ok ? rate(o.timing) : null);
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? `${(a / b).toFixed(2)}×` : '-');
  const lines: string[][] = [header];
  const addRow = (name: string, shape: string, gflop: number, res: Partial<Record<EngineName, Outcome>>) => {
    const w = gf(res.wasm);
    lines.push([
      name,
      shape,
      (gflop / 1e9).toFixed(3),
      ...cols.map((c) => cell(res[c])),
      ...(hasPeer('tfjs') ? [ratio(w, gf(res.tfjs))] : []),
      ...(hasPeer('ort') ? [ratio(w, gf(res.ort))] : []),
      ...(cols.includes('wasm') ? [ratio(w, peak)] : []),
      ...(fmaCol ? [ratio(gf(res['wasm-fma']), gf(res.tfjs)), ratio(gf(res['wasm-fma']), c.measuredFma1!)] : []),
    ]);
  };
  for (const r of rows) addRow(taskName(r.task), taskShape(r.task), taskFlops(r.task), r.results);

  // Whole-encoder rows: total FLOPs over total time of each pass, where every layer ran.
  for (const pass of ['fwd', 'dx', 'dw'] as const) {
    const sub = rows.filter((r) => r.task.kind === 'conv' && r.task.pass === pass);
    if (sub.length < 2) continue;
    const res: Partial<Record<EngineName, Outcome>> = {};
    for (const c of cols) {
      const t = total(sub, c, args.best);
      if (t) res[c] = { ok: true, timing: { medianMs: t.ms, minMs: t.ms, reps: 1, flops: t.gflops * t.ms * 1e6, gflops: t.gflops } };
    }
    addRow(`encoder ${pass} (${sub.length} layers)`, 'sum of the rows above', sub.reduce((s, r) => s + taskFlops(r.task), 0), res);
  }

  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  lines.forEach((l, n) => {
    out.push(l.map((s, i) => (i < 2 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join('  '));
    if (n === 0) out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  });
  out.push('');
  out.push(`GF/s: GFLOP/s from the ${args.best ? 'fastest' : 'median'} time of the repetitions (FLOPs = 2·MACs); wasm/peak is against the measured one-thread mul+add ceiling, fma/fma-peak against the relaxed-SIMD FMA loop's.`);
  if (softwareGpu && !args.full) out.push(`webgpu: a software adapter (SwiftShader, WGSL on the CPU): only the layers of SOFTWARE_GPU_LAYERS and the matmul, within a time budget; --full runs all.`);
  notes.forEach((n, i) => out.push(`[${i + 1}] ${n}`));
  out.push(`took ${seconds.toFixed(0)} s`);
  return out.join('\n');
}

function toJson(args: Args, c: Ceiling, engines: Map<EngineName, Engine>, unavailable: Map<EngineName, string>, checks: CheckResult[], rows: Row[], seconds: number) {
  return {
    date: new Date().toISOString(),
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    commit: gitCommit(),
    machine: {
      cpu: c.cpu.model,
      vendor: c.cpu.vendor,
      cores: c.cpu.cores,
      mhz: c.cpu.mhz,
      memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
      node: process.versions.node,
      v8: process.versions.v8,
      platform: `${os.platform()} ${os.release()}`,
      loadavg: os.loadavg(),
    },
    ceiling: { ...c, cpu: undefined },
    check: { tolerance: CHECK_TOLERANCE, results: checks },
    engines: Object.fromEntries(args.only.map((n) => [n, engines.get(n)?.describe() ?? `not available: ${unavailable.get(n)}`])),
    results: rows.flatMap((r) =>
      Object.entries(r.results).map(([engine, o]) => ({
        task: taskName(r.task),
        shape: taskShape(r.task),
        taskFlops: taskFlops(r.task),
        engine,
        ...(o!.ok ? { ...o!.timing, note: o!.note } : { unavailable: o!.reason }),
      })),
    ),
    seconds: +seconds.toFixed(1),
  };
}

main().catch((e) => {
  console.error(errMessage(e));
  process.exit(1);
});
