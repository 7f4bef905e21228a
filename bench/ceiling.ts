// The machine's ceiling for 128-bit Wasm SIMD f32 work, measured and on paper.
//
// Measured: a Wasm function, written here byte by byte so that exactly the intended
// instructions run, that updates N independent f32x4 accumulators as acc = acc·m + c in an
// unrolled loop. With enough independent chains the loop is bound by the multiply and add
// throughput, not their latency, and nothing touches memory: no kernel can go faster per
// thread. A relaxed-SIMD variant (f32x4.relaxed_madd, i.e. FMA where the CPU has it) runs when
// the engine validates it; Node 20 needs --experimental-wasm-relaxed-simd for that.
//
// On paper: clock × 4 lanes × 2 FLOPs (a multiply and an add) × the number of multiply+add
// pairs the core issues per cycle without FMA. AMD Zen has two FP multiply and two FP add pipes
// (2 pairs); Intel cores since Skylake run both on the same two ports (1 pair).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

const ACCUMULATORS = 12; // 12 chains cover 3-4 cycle latencies on 2+2 pipes and fit x86's 16 xmm registers
const UNROLL = 4;

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const f32 = (x: number): number[] => [...new Uint8Array(new Float32Array([x]).buffer)];

// Opcodes (SIMD ones follow the 0xfd prefix as LEB128).
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const SIMD = (op: number): number[] => [0xfd, ...leb(op)];
const F32X4_SPLAT = SIMD(0x13);
const F32X4_EXTRACT_LANE0 = [...SIMD(0x1f), 0];
const F32X4_ADD = SIMD(0xe4);
const F32X4_MUL = SIMD(0xe6);
const F32X4_RELAXED_MADD = SIMD(0x105);

/**
 * (func (export "peak") (param $iters i32) (param $m f32) (param $c f32) (result f32)): runs
 * $iters loop trips of UNROLL × ACCUMULATORS updates; returns a lane of the sum so nothing is dead.
 */
export function peakModule(fma: boolean): Uint8Array<ArrayBuffer> {
  const acc = (i: number) => 3 + i;
  const mv = 3 + ACCUMULATORS;
  const cv = mv + 1;
  const body: number[] = [];
  for (let i = 0; i < ACCUMULATORS; i++) body.push(0x43, ...f32(0.5 + i / 64), ...F32X4_SPLAT, LOCAL_SET, acc(i));
  body.push(LOCAL_GET, 1, ...F32X4_SPLAT, LOCAL_SET, mv, LOCAL_GET, 2, ...F32X4_SPLAT, LOCAL_SET, cv);
  body.push(0x03, 0x40); // loop (no result)
  for (let u = 0; u < UNROLL; u++)
    for (let i = 0; i < ACCUMULATORS; i++) {
      if (fma) body.push(LOCAL_GET, acc(i), LOCAL_GET, mv, LOCAL_GET, cv, ...F32X4_RELAXED_MADD);
      else body.push(LOCAL_GET, acc(i), LOCAL_GET, mv, ...F32X4_MUL, LOCAL_GET, cv, ...F32X4_ADD);
      body.push(LOCAL_SET, acc(i));
    }
  body.push(LOCAL_GET, 0, 0x41, 1, 0x6b, LOCAL_TEE, 0, 0x0d, 0, 0x0b); // iters -= 1; br_if loop; end
  body.push(LOCAL_GET, acc(0));
  for (let i = 1; i < ACCUMULATORS; i++) body.push(LOCAL_GET, acc(i), ...F32X4_ADD);
  body.push(...F32X4_EXTRACT_LANE0, 0x0b);
  const fn = [1, ...leb(ACCUMULATORS + 2), 0x7b, ...body]; // one local group: v128 × (N + 2)
  const name = [...new TextEncoder().encode('peak')];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7d, 0x7d, 1, 0x7d]),
    ...section(3, [1, 0]),
    ...section(7, [1, name.length, ...name, 0x00, 0]),
    ...section(10, [1, ...leb(fn.length), ...fn]),
  ]);
}

/** FLOPs of one loop trip (a multiply and an add per lane per update). */
const FLOPS_PER_TRIP = UNROLL * ACCUMULATORS * 4 * 2;

type PeakFn = (iters: number, m: number, c: number) => number;

function instantiate(bytes: Uint8Array<ArrayBuffer>): PeakFn {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  return inst.exports.peak as PeakFn;
}

/**
 * GFLOP/s of one thread: the best of many short runs. A ceiling is the best the machine shows;
 * on a shared, busy machine a long run is always interrupted by the neighbours, while some short
 * runs are not (the kernels' short repetitions get those clean slices too).
 */
export function measurePeak(bytes: Uint8Array<ArrayBuffer>, sliceMs = 4, reps = 120): number {
  const peak = instantiate(bytes);
  // V8 first runs Wasm in its baseline compiler (Liftoff) and swaps in optimised code for later
  // calls: warm up with a few calls before timing anything.
  for (let i = 0; i < 4; i++) peak(200_000, 0.9999, 1e-4);
  // Calibrate the trip count to the slice length.
  let iters = 10_000;
  for (;;) {
    const t0 = performance.now();
    peak(iters, 0.9999, 1e-4);
    const ms = performance.now() - t0;
    if (ms > sliceMs / 2) {
      iters = Math.max(1, Math.round((iters * sliceMs) / ms));
      break;
    }
    iters *= 2;
  }
  const rates: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    peak(iters, 0.9999, 1e-4);
    const ms = performance.now() - t0;
    rates.push((iters * FLOPS_PER_TRIP) / (ms * 1e6));
  }
  return Math.max(...rates);
}

/** The same measurement in `threads` workers at once: the sum of their rates. */
async function measurePeakThreads(bytes: Uint8Array<ArrayBuffer>, threads: number): Promise<number> {
  // The worker is plain JS (no TypeScript loader in workers); it gets the module bytes.
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const peak = new WebAssembly.Instance(new WebAssembly.Module(workerData.bytes)).exports.peak;
    for (let i = 0; i < 4; i++) peak(workerData.iters, 0.9999, 1e-4);
    parentPort.once('message', () => {
      const t0 = performance.now();
      for (let r = 0; r < 5; r++) peak(workerData.iters, 0.9999, 1e-4);
      parentPort.postMessage(performance.now() - t0);
    });`;
  const iters = 400_000;
  const workers = Array.from({ length: threads }, () => new Worker(src, { eval: true, workerData: { bytes, iters } }));
  try {
    // Let each warm up on its own, then start them together.
    await new Promise((r) => setTimeout(r, 300));
    const done = workers.map((w) => new Promise<number>((res, rej) => (w.once('message', res), w.once('error', rej))));
    for (const w of workers) w.postMessage('go');
    const ms = await Promise.all(done);
    return ms.reduce((s, t) => s + (5 * iters * FLOPS_PER_TRIP) / (t * 1e6), 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * Node 20 validates relaxed SIMD only behind a flag: measure the FMA loop in a child Node that
 * has it (what a kernel could reach if the runtime enabled the flag). Null if that fails.
 */
function fmaInChild(bytes: Uint8Array<ArrayBuffer>): number | null {
  const script = `
    const bytes = Buffer.from(process.argv[1], 'base64');
    const peak = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.peak;
    for (let i = 0; i < 4; i++) peak(200000, 0.9999, 1e-4);
    let iters = 10000, best = 0;
    for (;;) { const t = performance.now(); peak(iters, 0.9999, 1e-4); const ms = performance.now() - t;
      if (ms > 2) { iters = Math.round(iters * 4 / ms); break; } iters *= 2; }
    for (let r = 0; r < 120; r++) { const t = performance.now(); peak(iters, 0.9999, 1e-4);
      best = Math.max(best, iters * ${FLOPS_PER_TRIP} / ((performance.now() - t) * 1e6)); }
    console.log(best);`;
  try {
    const out = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '-e', script, Buffer.from(bytes).toString('base64')], { encoding: 'utf8', timeout: 30_000 });
    const v = Number(out.trim());
    return Number.isFinite(v) && v > 0 ? v : null;
  } catch {
    return null;
  }
}

export interface CpuInfo {
  model: string;
  vendor: string;
  mhz: number;
  cores: number;
  flags: string[];
}

export function cpuInfo(): CpuInfo {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux: fall back to os.cpus() */
  }
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  const cpus = os.cpus();
  return {
    model: field('model name') || cpus[0]?.model || 'unknown',
    vendor: field('vendor_id') || 'unknown',
    mhz: Number(field('cpu MHz')) || cpus[0]?.speed || 0,
    cores: os.availableParallelism?.() ?? cpus.length,
    flags: field('flags').split(/\s+/).filter(Boolean),
  };
}

export interface Ceiling {
  cpu: CpuInfo;
  /** Measured mul+add f32x4 loop, GFLOP/s, one thread. */
  measured1: number;
  /** The same loop in one worker per core, summed. */
  measuredAll: number | null;
  /** relaxed_madd loop, one thread (in a child Node with the flag where needed); null if unavailable. */
  measuredFma1: number | null;
  /** clock × 4 lanes × 2 FLOPs × mul+add pairs per cycle, one thread. */
  theoretical1: number;
  pairsPerCycle: number;
  assumption: string;
}

export async function measureCeiling(opts: { threads?: boolean } = {}): Promise<Ceiling> {
  const cpu = cpuInfo();
  const amd = cpu.vendor === 'AuthenticAMD';
  const pairsPerCycle = Number(process.env.STATCELL_MULADD_PAIRS) || (amd ? 2 : 1);
  const assumption = amd
    ? 'AMD Zen: 2 FP multiply + 2 FP add pipes → 2 mul+add pairs per cycle'
    : 'Intel-style: multiply and add share 2 ports → 1 mul+add pair per cycle';
  const plain = peakModule(false);
  const fmaBytes = peakModule(true);
  const measured1 = measurePeak(plain);
  const measuredFma1 = WebAssembly.validate(fmaBytes) ? measurePeak(fmaBytes) : fmaInChild(fmaBytes);
  let measuredAll: number | null = null;
  if (opts.threads !== false && cpu.cores > 1) measuredAll = await measurePeakThreads(plain, cpu.cores).catch(() => null);
  return { cpu, measured1, measuredAll, measuredFma1, theoretical1: (cpu.mhz / 1000) * 4 * 2 * pairsPerCycle, pairsPerCycle, assumption };
}
