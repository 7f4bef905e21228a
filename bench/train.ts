// `npm run bench:train [-- options]` (or `npm run bench -- --train [options]`): training
// throughput of the 2D paper models: images/s and GFLOP/s of full training steps (forward,
// backward, Adam, state updates and the metrics readback: what ModelRuntime.trainStep does),
// on our backends and in PyTorch (bench/peers/torch_statcell.py, the same model, at 1 thread
// and at every core) on the same machine, case by case so that all engines see the same load.
// Prints a table and writes bench/results/<date>-<machine>-train.json.
//
//   --models a,b        reference2d, target2d (default both)
//   --batches 8,32      batch sizes (default 8,32)
//   --only a,b          engines: wasm, webgpu, torch (default all three)
//   --torch-threads 1,2 PyTorch thread counts (default 1 and the machine's core count)
//   --min-reps n        timed steps at least (default 3); --max-reps n (default 7)
//   --budget s          stop adding steps after this many seconds (default 30)
//   --gpu-max s         WebGPU on a software adapter: run the full model only if a step is
//                       estimated under this many seconds (default 180)
//   --python path       a python3 that imports torch (default: the first of python3, /usr/bin/python3)
//   --profile           after timing each of our engines' cases, one profiled step: the top
//                       kernels by time (WebGPU timestamp queries; host clock on Wasm), in the JSON too
//   --out file          JSON path; --no-json to print only

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileModelFile } from '../compiler/index.ts';
import type { CompiledModel } from '../compiler/model.ts';
import { fuse } from '../compiler/fuse.ts';
import { lower, memoryStats } from '../compiler/plan.ts';
import type { Backend } from '../runtime/backend.ts';
import { openBackend } from '../runtime/device.ts';
import { WasmBackend } from '../runtime/wasm.ts';
import { ModelRuntime } from '../session/model.ts';
import { formatProfile, profileUnavailable, type ProfileRow } from '../runtime/profile.ts';
import { profileTrainStep } from '../session/profile.ts';
import { errMessage, median } from './common.ts';
import { programFlops } from './flops.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const MODELS = ['reference2d', 'target2d'] as const;
type ModelName = (typeof MODELS)[number];
const ENGINES = ['wasm', 'wasm-fma', 'webgpu', 'torch'] as const;
type EngineName = (typeof ENGINES)[number];
const WASM_LIMIT = 4 * 2 ** 30;

export interface TrainArgs {
  models: ModelName[];
  batches: number[];
  only: EngineName[];
  torchThreads: number[];
  minReps: number;
  maxReps: number;
  budgetS: number;
  gpuMaxS: number;
  python?: string;
  out?: string;
  json: boolean;
  profile: boolean;
}

/** One (model, batch, engine) measurement, or why it did not run. */
export interface TrainResult {
  model: ModelName;
  batch: number;
  engine: string;
  ok: boolean;
  reason?: string;
  /** Median / fastest of the timed steps, and every step. */
  medianMs?: number;
  minMs?: number;
  stepMs?: number[];
  imagesPerS?: number;
  /** Counted FLOPs (bench/flops.ts) of one step over the median time. */
  gflops?: number;
  flopsPerImage?: number;
  /** Program build, first step and warm-up, before timing. */
  setupS?: number;
  /** Planned memory of the step's program (compiler/plan.ts memoryStats) and, on Wasm, the memory really used. */
  plannedMiB?: number;
  usedMiB?: number;
  metrics?: Record<string, number>;
  loadavg: number[];
  /** --profile: one step's top kernels by time (or why none). */
  profile?: { clock: string | null; reason?: string; wallMs?: number; kernelMs?: number; top?: ProfileRow[] };
  /** Extra facts (e.g. a measurement at a smaller size standing in for the full one). */
  note?: string;
}

function parseArgs(argv: string[]): TrainArgs {
  const a: TrainArgs = { models: [...MODELS], batches: [8, 32], only: [...ENGINES], torchThreads: [1, os.cpus().length], minReps: 3, maxReps: 7, budgetS: 30, gpuMaxS: 180, json: true, profile: false };
  const list = (v: string) => v.split(',').filter(Boolean);
  const ints = (k: string, v: string) =>
    list(v).map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`bench:train: ${k} takes positive integers, got '${s}'`);
      return n;
    });
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench:train: ${k} needs a value`);
      return v;
    };
    if (k === '--models') {
      const m = list(value());
      const bad = m.filter((x) => !(MODELS as readonly string[]).includes(x));
      if (bad.length) throw new Error(`bench:train: unknown model ${bad.join(', ')}; choose from ${MODELS.join(', ')}`);
      a.models = m as ModelName[];
    } else if (k === '--only') {
      const e = list(value());
      const bad = e.filter((x) => !(ENGINES as readonly string[]).includes(x));
      if (bad.length) throw new Error(`bench:train: unknown engine ${bad.join(', ')}; choose from ${ENGINES.join(', ')}`);
      a.only = e as EngineName[];
    } else if (k === '--batches') a.batches = ints(k, value());
    else if (k === '--torch-threads') a.torchThreads = ints(k, value());
    else if (k === '--min-reps') [a.minReps] = ints(k, value());
    else if (k === '--max-reps') [a.maxReps] = ints(k, value());
    else if (k === '--budget') a.budgetS = Number(value());
    else if (k === '--gpu-max') a.gpuMaxS = Number(value());
    else if (k === '--python') a.python = value();
    else if (k === '--out') a.out = value();
    else if (k === '--no-json') a.json = false;
    else if (k === '--profile') a.profile = true;
    else if (k === '--help' || k === '-h') {
      console.log('usage: npm run bench:train -- [--models reference2d,target2d] [--batches 8,32] [--only wasm,webgpu,torch] [--torch-threads 1,2] [--min-reps n] [--max-reps n] [--budget s] [--gpu-max s] [--python path] [--profile] [--out file] [--no-json]');
      process.exit(0);
    } else throw new Error(`bench:train: unknown option ${k} (see --help)`);
  }
  a.maxReps = Math.max(a.maxReps, a.minReps);
  return a;
}

const loadavg = () => os.loadavg().map((x) => +x.toFixed(2));
const MiB = (elements: number) => +((elements * 4) / 2 ** 20).toFixed(0);

/** Deterministic inputs: images uniform in [0, 1), one-hot labels cycling through the classes. */
function inputsFor(model: CompiledModel, batch: number): Record<string, Float32Array> {
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out: Record<string, Float32Array> = {};
  for (const { name, shape } of model.trainStep(batch).inputs) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name === 'cls') {
      const k = shape[1];
      out[name] = new Float32Array(n);
      for (let b = 0; b < batch; b++) out[name][b * k + (b % k)] = 1;
    } else out[name] = Float32Array.from({ length: n }, rand);
  }
  return out;
}

interface StepTiming {
  medianMs: number;
  minMs: number;
  stepMs: number[];
  setupS: number;
  metrics: Record<string, number>;
}

/** Builds the program, runs one untimed warm-up step (V8 tiers up the Wasm), then times steps. */
async function timeSteps(rt: ModelRuntime, inputs: Record<string, Float32Array>, batch: number, a: Pick<TrainArgs, 'minReps' | 'maxReps' | 'budgetS'>): Promise<StepTiming> {
  const t0 = performance.now();
  let it = 0;
  let metrics = await rt.trainStep(inputs, batch, it++);
  const setupS = (performance.now() - t0) / 1000;
  const stepMs: number[] = [];
  const start = performance.now();
  while (stepMs.length < a.minReps || (stepMs.length < a.maxReps && performance.now() - start < a.budgetS * 1000)) {
    const t = performance.now();
    metrics = await rt.trainStep(inputs, batch, it++);
    stepMs.push(performance.now() - t);
    // A step that produced NaN is not a step worth timing.
    for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) throw new Error(`metric ${k} = ${v} at step ${it}`);
  }
  return { medianMs: median(stepMs), minMs: Math.min(...stepMs), stepMs: stepMs.map((x) => +x.toFixed(1)), setupS: +setupS.toFixed(2), metrics };
}

const round = (t: StepTiming) => ({ medianMs: +t.medianMs.toFixed(1), minMs: +t.minMs.toFixed(1), stepMs: t.stepMs, setupS: t.setupS, metrics: t.metrics });

/** The kernels' build: a colleague rebuilding it mid-run would pair old JS plans with new Wasm code. */
const kernelsHash = (): string => {
  try {
    return createHash('sha256').update(readFileSync(join(ROOT, 'build', 'kernels.wasm'))).digest('hex').slice(0, 12);
  } catch {
    return 'missing';
  }
};
const KERNELS_AT_START = kernelsHash();

/** WebGPU is opened once per process: dropping a Dawn instance while the process runs can crash it. */
let webgpu: Promise<Backend> | undefined;

/**
 * Our backend on one (model, batch). Wasm gets a fresh backend each time so that its memory is
 * this case's alone. The program is the one ModelRuntime runs (elementwise fusion on).
 */
async function runOurs(engine: 'wasm' | 'wasm-fma' | 'webgpu', name: ModelName, model: CompiledModel, batch: number, a: TrainArgs, log: (s: string) => void): Promise<TrainResult> {
  const base = { model: name, batch, engine };
  const wasm = engine !== 'webgpu';
  if (wasm && kernelsHash() !== KERNELS_AT_START) return { ...base, ok: false, reason: 'build/kernels.wasm was rebuilt during this run: rerun the benchmark', loadavg: loadavg() };
  const program = lower(fuse(model.trainStep(batch).graph));
  const flops = programFlops(program).total;
  const planned = memoryStats(program).planned;
  const common = { flopsPerImage: flops / batch, plannedMiB: MiB(planned) };
  if (wasm && planned * 4 > WASM_LIMIT)
    return { ...base, ...common, ok: false, reason: `does not fit: the program plans ${MiB(planned)} MiB, over Wasm's 4 GiB`, loadavg: loadavg() };
  let backend: Backend | undefined;
  let rt: ModelRuntime | undefined;
  try {
    backend = engine !== 'webgpu' ? await WasmBackend.create({ fma: engine === 'wasm-fma' }) : await (webgpu ??= openBackend('webgpu').then((o) => o.backend));
    if (engine === 'webgpu' && /\(software\)/.test(backend.description)) return await softwareGpu(backend, name, batch, flops, a, log);
    rt = new ModelRuntime(backend, model);
    rt.init(1);
    const t = await timeSteps(rt, inputsFor(model, batch), batch, a);
    const used = wasm ? MiB((backend as unknown as { memory: WebAssembly.Memory }).memory.buffer.byteLength / 4) : undefined;
    const profile = a.profile ? await profileCase(rt, inputsFor(model, batch), batch, log) : undefined;
    return { ...base, ...common, ok: true, ...round(t), imagesPerS: (batch * 1000) / t.medianMs, gflops: flops / (t.medianMs * 1e6), usedMiB: used, loadavg: loadavg(), ...(profile ? { profile } : {}) };
  } catch (e) {
    log(`    ${engine} failed: ${(e as Error).stack ?? e}`);
    const msg = errMessage(e);
    return { ...base, ...common, ok: false, reason: /out of memory/.test(msg) ? `does not fit: ${msg} (planned ${MiB(planned)} MiB)` : msg, loadavg: loadavg() };
  } finally {
    rt?.destroy();
    if (wasm) backend?.destroy();
  }
}

/** --profile: one more (profiled) step of a timed case; its table goes to the log, its top rows to the JSON. */
async function profileCase(rt: ModelRuntime, inputs: Record<string, Float32Array>, batch: number, log: (s: string) => void): Promise<TrainResult['profile']> {
  const why = profileUnavailable(rt.backend);
  if (why) {
    log(`    ${why}`);
    return { clock: null, reason: why };
  }
  const p = await profileTrainStep(rt, inputs, batch, { steps: 1 });
  log(formatProfile(p).replace(/^/gm, '    '));
  return { clock: p.clock, wallMs: +p.wallMs.toFixed(2), kernelMs: +p.kernelMs.toFixed(2), top: p.rows.slice(0, 20) };
}

/** The software-adapter probe of each model, measured once per process. */
const probes = new Map<ModelName, { ms: number; flops: number; setupS: number }>();

/**
 * SwiftShader runs WGSL on the CPU at well under 1 GFLOP/s: time the same model at 32×32
 * (batch 2) once, and run the full size only if a step is estimated under --gpu-max seconds.
 * The estimate scales the probe's time by FLOPs; per-launch costs weigh more at 32×32, so it
 * errs long.
 */
async function softwareGpu(backend: Backend, name: ModelName, batch: number, fullFlops: number, a: TrainArgs, log: (s: string) => void): Promise<TrainResult> {
  const sb = 2;
  let probe = probes.get(name);
  if (!probe) {
    const small = compileModelFile(join(ROOT, 'models', `${name}.vae`), { overrides: { size: [32, 32] } });
    const rt = new ModelRuntime(backend, small);
    try {
      rt.init(1);
      const t = await timeSteps(rt, inputsFor(small, sb), sb, { minReps: 2, maxReps: 2, budgetS: 0 });
      probe = { ms: t.medianMs, flops: programFlops(lower(fuse(small.trainStep(sb).graph))).total, setupS: t.setupS };
      probes.set(name, probe);
    } finally {
      rt.destroy();
    }
  }
  const estS = (probe.ms / 1000) * (fullFlops / probe.flops);
  const measured = `${(probe.ms / 1000).toFixed(1)} s/step at 32×32 batch ${sb} (${(probe.flops / 1e9).toFixed(2)} GFLOP/step, ${(probe.flops / (probe.ms * 1e6)).toFixed(3)} GFLOP/s; first step incl. shader compilation ${probe.setupS.toFixed(0)} s)`;
  log(`    webgpu (software): ${measured}; full size batch ${batch} estimated ${estS.toFixed(0)} s/step`);
  const common = { model: name, batch, engine: 'webgpu', flopsPerImage: fullFlops / batch, loadavg: loadavg() };
  if (estS > a.gpuMaxS) return { ...common, ok: false, reason: `not run: software adapter (${backend.description}), ${measured}; estimated ${estS.toFixed(0)} s/step at 160×96 batch ${batch}` };
  const model = compileModelFile(join(ROOT, 'models', `${name}.vae`));
  const full = new ModelRuntime(backend, model);
  try {
    full.init(1);
    const f = await timeSteps(full, inputsFor(model, batch), batch, { minReps: 2, maxReps: 3, budgetS: 0 });
    const profile = a.profile ? await profileCase(full, inputsFor(model, batch), batch, log) : undefined;
    return { ...common, ok: true, ...round(f), imagesPerS: (batch * 1000) / f.medianMs, gflops: fullFlops / (f.medianMs * 1e6), note: `software adapter; ${measured}`, ...(profile ? { profile } : {}) };
  } finally {
    full.destroy();
  }
}

/** A python3 that imports torch, or why there is none. */
function findPython(a: TrainArgs): { python?: string; version?: string; why?: string } {
  const tried: string[] = [];
  for (const p of a.python ? [a.python] : ['python3', '/usr/bin/python3']) {
    const r = spawnSync(p, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python: p, version: r.stdout.trim() };
    tried.push(`${p}: ${(r.stderr || String(r.error ?? '')).trim().split('\n').pop()}`);
  }
  return { why: `no python3 with torch (${tried.join('; ')}); install Debian's python3-torch or pass --python` };
}

/** PyTorch on one (model, batch) at each thread count, in a child process; its JSON lines parsed. */
function runTorch(python: string, name: ModelName, batch: number, a: TrainArgs): TrainResult[] {
  const r = spawnSync(
    python,
    [join(HERE, 'peers', 'torch_statcell.py'), '--models', name, '--batches', String(batch), '--threads', a.torchThreads.join(','), '--min-reps', String(a.minReps), '--max-reps', String(a.maxReps), '--budget-s', String(a.budgetS)],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0)
    return a.torchThreads.map((n) => ({ model: name, batch, engine: `torch-${n}t`, ok: false, reason: `torch_statcell.py failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-2).join(' ')}`, loadavg: loadavg() }));
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const j = JSON.parse(line);
      return { model: name, batch, engine: j.engine, ok: true, medianMs: j.medianMs, minMs: j.minMs, stepMs: j.stepMs, imagesPerS: j.imagesPerS, setupS: j.warmupS, metrics: j.metrics, loadavg: j.loadavg.map((x: number) => +x.toFixed(2)), note: `torch ${j.torch}, ${j.threads} thread(s), ${j.params} parameters` };
    });
}

const fmt = (x: number | undefined, d = 2) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(d));

export function table(results: TrainResult[]): string {
  const engines = [...new Set(results.map((r) => r.engine))];
  const torchCols = engines.filter((e) => e.startsWith('torch'));
  const header = ['model', 'batch', 'engine', 'ms/step', 'images/s', 'GFLOP/s', ...torchCols.map((t) => `÷ ${t}`), 'load (1 min)'];
  const notes: string[] = [];
  const lines: string[][] = [header];
  for (const r of results) {
    const peer = (t: string) => results.find((p) => p.model === r.model && p.batch === r.batch && p.engine === t);
    const ratio = (t: string) => {
      const p = peer(t);
      return r.ok && p?.ok && r.engine !== t ? `${(r.imagesPerS! / p.imagesPerS!).toFixed(2)}×` : '-';
    };
    const flops = r.flopsPerImage ?? results.find((p) => p.model === r.model && p.flopsPerImage)?.flopsPerImage;
    const gflops = r.ok && flops ? (flops * r.batch) / (r.medianMs! * 1e6) : undefined;
    let ms = r.ok ? fmt(r.medianMs, 0) : 'n/a';
    if (!r.ok) ms += `[${notes.push(`${r.model} b${r.batch} ${r.engine}: ${r.reason}`)}]`;
    lines.push([r.model, String(r.batch), r.engine, ms, r.ok ? fmt(r.imagesPerS) : '-', fmt(gflops, 1), ...torchCols.map(ratio), r.loadavg[0].toFixed(1)]);
  }
  const w = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const out = lines.map((l) => l.map((s, i) => (i < 1 || i === 2 ? s.padEnd(w[i]) : s.padStart(w[i]))).join('  '));
  out.splice(1, 0, w.map((n) => '-'.repeat(n)).join('  '));
  notes.forEach((n, i) => out.push(`[${i + 1}] ${n}`));
  return out.join('\n');
}

function gitCommit(): string | null {
  try {
    const git = (...g: string[]) => execFileSync('git', g, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'kernels', 'runtime', 'compiler', 'models', 'build').length > 0;
    return git('rev-parse', '--short', 'HEAD') + (dirty ? '+dirty' : '');
  } catch {
    return null;
  }
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const a = parseArgs(argv);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const t0 = performance.now();
  const torch = a.only.includes('torch') ? findPython(a) : {};
  const results: TrainResult[] = [];
  for (const name of a.models) {
    const model = compileModelFile(join(ROOT, 'models', `${name}.vae`));
    for (const batch of a.batches) {
      // Engines one after another on the same case, so that they share the machine's load.
      for (const engine of a.only) {
        log(`${name} batch ${batch} ${engine}… (load ${loadavg()[0]})`);
        let rs: TrainResult[];
        if (engine !== 'torch') rs = [await runOurs(engine, name, model, batch, a, log)];
        else if (torch.python) rs = runTorch(torch.python, name, batch, a);
        else rs = a.torchThreads.map((n) => ({ model: name, batch, engine: `torch-${n}t`, ok: false, reason: torch.why!, loadavg: loadavg() }));
        for (const r of rs) log(`  ${r.engine.padEnd(9)} ${r.ok ? `${fmt(r.medianMs, 0)} ms/step, ${fmt(r.imagesPerS)} images/s (steps ${r.stepMs!.join(', ')})` : `n/a: ${r.reason}`}`);
        results.push(...rs);
      }
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const text = [
    `machine   ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}; load at the end ${loadavg().join(' ')}`,
    `engines   wasm: WebAssembly SIMD, the exact build (mul+add); wasm-fma: the relaxed-SIMD FMA build (the default where the engine has relaxed SIMD); webgpu: Dawn; torch-Nt: PyTorch ${torch.version ?? '(none)'} (CPU) with N threads`,
    `FLOPs     conv + conv_transpose + conv_grad_weight + matmul of the lowered training step (bench/flops.ts)`,
    '',
    table(results),
    '',
    `ms/step: median of ≥ ${a.minReps} timed steps after a warm-up step; images/s = batch / median; ÷ torch-Nt: our images/s over PyTorch's. took ${seconds.toFixed(0)} s`,
  ].join('\n');
  console.log(text);
  if (a.json) {
    const machine = `${cpu.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '').trim().replace(/[^a-z0-9]+/g, '-')}-${os.cpus().length}c`;
    const file = a.out ?? join(HERE, 'results', `${new Date().toISOString().slice(0, 10)}-${machine}-train.json`);
    mkdirSync(dirname(file), { recursive: true });
    const json = {
      date: new Date().toISOString(),
      command: ['npm run bench:train', ...(argv.length ? ['--', ...argv] : [])].join(' '),
      commit: gitCommit(),
      machine: { cpu, cores: os.cpus().length, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.versions.node, platform: `${os.platform()} ${os.release()}` },
      torch: torch.version ?? torch.why ?? null,
      kernelsWasm: { atStart: KERNELS_AT_START, atEnd: kernelsHash() },
      results,
      seconds: +seconds.toFixed(1),
    };
    writeFileSync(file, JSON.stringify(json, null, 1) + '\n');
    console.log(`\nwrote ${file}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // Exit explicitly: an open Dawn instance keeps the process alive.
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(errMessage(e));
      process.exit(1);
    },
  );
}
