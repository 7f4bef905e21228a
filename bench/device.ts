// The one-go GPU benchmark (run by bench/device.sh): on the WebGPU adapter Dawn finds, prints
//   the adapter, its features and limits;
//   matmul 4096³ GFLOP/s against the GPU's f32 peak (non-tensor-core FMA rate);
//   conv forward / input gradient / weight gradient at the paper's 2D encoder shapes (batch 32);
//   conv_transpose executed vs dense FLOPs (bench/convt.ts) at stride 2, 2D and 3D;
//   training steps: 2D reference and target at batch 32, 3D target at the largest batch that
//   fits (tried from 32 down), in images/s, with each program's planned memory;
// and writes one JSON to bench/results/. `--quick`: small shapes, so that it runs on SwiftShader.
//
//   --quick            small shapes (matmul 256³, one layer at batch 1, the models at the fixtures' small
//                      widths, 32×32 at batch 2 and 64×64×32 at batch 2): runs on SwiftShader
//   --peak-tflops x    the f32 peak to compare against (default: 67 for an H100/H200, else none)
//   --out file         JSON path (default bench/results/<date>T<hh-mm-ss>-device[-quick].json: one per run,
//                      so that a rerun cut short never replaces a complete result)
//   --skip a,b         parts to skip: kernels, convt, train2d, train3d

import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { compileModelFile } from '../compiler/index.ts';
import { writeAtomic } from '../data/files.ts';
import { fuse } from '../compiler/fuse.ts';
import { lower, memoryStats } from '../compiler/plan.ts';
import { openBackend } from '../runtime/device.ts';
import { formatProfile, profileUnavailable } from '../runtime/profile.ts';
import type { WebGpuBackend } from '../runtime/webgpu.ts';
import { microBatchFor, ModelRuntime } from '../session/model.ts';
import { profileTrainStep } from '../session/profile.ts';
import type { Task } from './common.ts';
import { errMessage, median, taskFlops, taskName, taskShape } from './common.ts';
import { convTasks } from './conv.ts';
import { CONVT_CASES, formatConvT, runConvT } from './convt.ts';
import { programFlops } from './flops.ts';
import { openOurs } from './ours.ts';

/** H100 SXM: 132 SMs × 128 FP32 lanes × 2 FLOP × 1.98 GHz ≈ 67 TFLOP/s (no tensor cores); the H200 is the same die. */
const HOPPER_F32_TFLOPS = 67;

interface Args {
  quick: boolean;
  peakTflops?: number;
  out?: string;
  skip: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, skip: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench/device: ${k} needs a value`);
      return v;
    };
    if (k === '--quick') a.quick = true;
    else if (k === '--peak-tflops') a.peakTflops = Number(value());
    else if (k === '--out') a.out = value();
    else if (k === '--skip') a.skip = value().split(',');
    else throw new Error(`bench/device: unknown option ${k} (options: --quick, --peak-tflops x, --out file, --skip kernels,convt,train2d,train3d)`);
  }
  return a;
}

const log = (s: string) => console.log(s);
const load = () => os.loadavg().map((x) => +x.toFixed(2));

/** Deterministic training inputs: images uniform in [0, 1), one-hot labels cycling through the classes. */
function inputsFor(model: ReturnType<typeof compileModelFile>, batch: number): Record<string, Float32Array> {
  let s = 12345;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out: Record<string, Float32Array> = {};
  for (const { name, shape } of model.trainStep(batch).inputs) {
    const n = shape.reduce((x, y) => x * y, 1);
    if (name === 'cls') {
      out[name] = new Float32Array(n);
      for (let b = 0; b < batch; b++) out[name][b * shape[1] + (b % shape[1])] = 1;
    } else out[name] = Float32Array.from({ length: n }, rand);
  }
  return out;
}

interface StepRow {
  model: string;
  size: number[] | 'paper';
  /** --quick: small widths too. */
  small?: boolean;
  batch: number;
  /** The micro-batch the trainer would pick for this batch on this adapter's limits. */
  microBatch?: number;
  ok: boolean;
  reason?: string;
  medianMs?: number;
  imagesPerS?: number;
  gflops?: number;
  gflopPerImage?: number;
  plannedMiB?: number;
  firstStepS?: number;
  /** The top kernels of one step by GPU time (--profile's table), for the 2D models. */
  profile?: string;
}

/** --quick: the paper's models at small widths and sizes (as the float64 fixtures), so a step takes seconds on SwiftShader. */
const QUICK_2D = { channels: [4, 8, 16, 32, 64], latent: 16, size: [32, 32] };
const QUICK_3D = { channels: [2, 4, 8, 16, 32], latent: 8, size: [64, 64, 32] };

async function trainStep(backend: WebGpuBackend, model: string, overrides: Record<string, unknown> | undefined, batch: number, reps: number, profile = false): Promise<StepRow> {
  const size = overrides?.size as number[] | undefined;
  const row: StepRow = { model, size: size ?? 'paper', small: !!overrides, batch, ok: false };
  let rt: ModelRuntime | undefined;
  // Any failure (does not compile at this batch, does not fit) is this row's, not the run's.
  try {
    const m = compileModelFile(join('models', `${model}.vae`), overrides ? { overrides } : {});
    const program = lower(fuse(m.trainStep(batch).graph));
    const flops = programFlops(program).total;
    row.gflopPerImage = +(flops / batch / 1e9).toFixed(3);
    row.plannedMiB = Math.round((memoryStats(program).planned * 4) / 2 ** 20);
    // As the trainer does: micro-batches when a tensor of the whole batch exceeds one binding.
    row.microBatch = microBatchFor(m, batch, backend.limits);
    if (row.microBatch === undefined) throw new Error(`no micro-batch of ${batch} fits this adapter's limits`);
    rt = new ModelRuntime(backend, m, { microBatch: row.microBatch });
    rt.init(1);
    const inputs = inputsFor(m, batch);
    const t0 = performance.now();
    await rt.trainStep(inputs, batch, 0);
    row.firstStepS = +((performance.now() - t0) / 1000).toFixed(2);
    const ms: number[] = [];
    for (let i = 1; i <= reps; i++) {
      const t = performance.now();
      const metrics = await rt.trainStep(inputs, batch, i);
      ms.push(performance.now() - t);
      for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) throw new Error(`metric ${k} = ${v} at step ${i}`);
    }
    row.medianMs = +median(ms).toFixed(2);
    row.imagesPerS = +((batch * 1000) / row.medianMs).toFixed(2);
    row.gflops = +(flops / (row.medianMs * 1e6)).toFixed(1);
    row.ok = true;
    if (profile) row.profile = profileUnavailable(backend) ?? formatProfile(await profileTrainStep(rt, inputs, batch, { iteration: reps + 1 }));
  } catch (e) {
    row.reason = errMessage(e);
  } finally {
    rt?.destroy();
  }
  return row;
}

const fmtStep = (r: StepRow): string =>
  `  ${r.model.padEnd(12)} ${(r.size === 'paper' ? 'paper size' : `${r.size.join('×')}${r.small ? ' small' : ''}`).padEnd(16)} batch ${String(r.batch).padStart(3)}${r.microBatch && r.microBatch !== r.batch ? ` (${r.batch / r.microBatch}×${r.microBatch})` : ''}  ` +
  (r.ok ? `${r.medianMs!.toFixed(1).padStart(9)} ms/step  ${r.imagesPerS!.toFixed(2).padStart(8)} images/s  ${r.gflops!.toFixed(1).padStart(8)} GFLOP/s` : `failed: ${r.reason}`) +
  `  planned ${r.plannedMiB} MiB, ${r.gflopPerImage} GFLOP/image${r.firstStepS !== undefined ? `, first step ${r.firstStepS} s` : ''}`;

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const a = parseArgs(argv);
  const started = performance.now();
  const date = new Date().toISOString();
  const out = a.out ?? join('bench', 'results', `${date.slice(0, 19).replace(/:/g, '-')}-device${a.quick ? '-quick' : ''}.json`);
  // `complete` stays false until every part has run: a file cut off by the time limit says so.
  const result: Record<string, unknown> = { date, complete: false, argv, node: process.version, host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30) } };

  // 1. The adapter.
  const { backend: b, reason } = await openBackend('webgpu');
  const backend = b as WebGpuBackend;
  const dev = backend.device;
  const info = (dev as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const limits: Record<string, number> = {};
  for (const k in dev.limits) limits[k] = (dev.limits as unknown as Record<string, number>)[k];
  const features = [...dev.features].sort();
  const adapter = { description: backend.description, vendor: info?.vendor, architecture: info?.architecture, device: info?.device, features, limits };
  result.adapter = adapter;
  log(`adapter   ${reason}`);
  // The JSON is written again after each part, so that a run stopped by its time limit keeps
  // what it measured; each time whole (a temporary file renamed over it), never half written.
  const save = () => {
    result.seconds = +((performance.now() - started) / 1000).toFixed(1);
    result.loadavg = load();
    mkdirSync(dirname(out), { recursive: true });
    writeAtomic(out, JSON.stringify(result, null, 1));
  };
  if (!a.quick && /\(software\)$/.test(backend.description)) {
    // The full shapes take hours on a software rasterizer: stop before spending the lent machine's
    // minutes, and leave any earlier result of the day in place (nothing was measured).
    log(`bench/device: ${backend.description} is a software adapter, not the GPU: Dawn found no hardware adapter (Vulkan loader and ICD: VK_DRIVER_FILES=${process.env.VK_DRIVER_FILES ?? ''} VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? ''}). Stopped, nothing written; --quick runs the small shapes on it`);
    process.exit(2);
  }
  log(`features  ${features.join(' ') || '(none)'}`);
  log(`          timestamp-query: ${features.includes('timestamp-query') ? 'yes' : 'no'}; shader-f16: ${features.includes('shader-f16') ? 'yes' : 'no'}; subgroups: ${features.includes('subgroups') ? 'yes' : 'no'}`);
  log(`limits    maxBufferSize ${limits.maxBufferSize}, maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize}, maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}, maxComputeWorkgroupsPerDimension ${limits.maxComputeWorkgroupsPerDimension}`);
  const hopper = /H100|H200|hopper/i.test(`${backend.description} ${info?.architecture ?? ''} ${info?.device ?? ''}`);
  const peak = a.peakTflops ?? (hopper ? HOPPER_F32_TFLOPS : undefined);
  log(`f32 peak  ${peak ? `${peak} TFLOP/s${a.peakTflops ? ' (--peak-tflops)' : ' (H100 SXM / H200: 132 SMs × 128 FP32 lanes × 2 × 1.98 GHz, no tensor cores)'}` : 'unknown for this adapter (give --peak-tflops)'}`);

  // 2. Kernels: matmul and the conv layers, through the same prepared launches as training.
  if (!a.skip.includes('kernels')) {
    const engine = await openOurs('webgpu', { batchMs: a.quick ? 50 : 300, slowLaunchMs: a.quick ? 20_000 : 1500 });
    const n = a.quick ? 256 : 4096;
    const tasks: Task[] = [{ kind: 'matmul', M: n, N: n, K: n }, ...convTasks({ batch: a.quick ? 1 : 32, quick: true }).filter((t) => !a.quick || (t.kind === 'conv' && t.layer.name === 'd4.skip k1'))];
    const timer = a.quick ? { warmup: 1, minReps: 2, maxReps: 2, budgetMs: 0 } : { warmup: 1, minReps: 3, maxReps: 10, budgetMs: 1500 };
    const rows = [];
    log('\nkernel                       shape                                  GFLOP      ms    GFLOP/s   of f32 peak');
    for (const t of tasks) {
      const o = await engine.run(t, timer);
      const flops = taskFlops(t);
      const row = { task: taskName(t), shape: taskShape(t), flops, ...(o.ok ? { medianMs: o.timing.medianMs / (o.timing.flops / flops), gflops: o.timing.gflops } : { reason: o.reason }) };
      rows.push(row);
      const frac = o.ok && peak ? `${((o.timing.gflops / (peak * 1000)) * 100).toFixed(1)} %` : '-';
      log(`${row.task.padEnd(28)} ${row.shape.padEnd(38)} ${(flops / 1e9).toFixed(3).padStart(6)} ${o.ok ? (o.timing.medianMs / (o.timing.flops / flops)).toFixed(2).padStart(8) : '-'.padStart(8)} ${o.ok ? o.timing.gflops.toFixed(1).padStart(10) : `failed: ${o.reason}`} ${frac.padStart(12)}`);
    }
    await engine.close?.();
    result.kernels = { peakTflops: peak, rows };
    save();
  }

  // 3. conv_transpose: executed FLOPs from the launch plans against the dense count, 2D and 3D.
  if (!a.skip.includes('convt')) {
    const rows = [];
    for (const c of CONVT_CASES) rows.push(await runConvT(backend, c, a.quick ? 0 : 5)); // --quick: FLOPs only (SwiftShader)
    log(`\n${formatConvT(rows)}`);
    result.convTranspose = rows;
    save();
  }

  // 4. Training steps.
  const steps: StepRow[] = [];
  result.trainSteps = steps; // filled below, saved after each step
  const reps = a.quick ? 1 : 5;
  if (!a.skip.includes('train2d')) {
    log('\ntraining steps (forward, loss, backward, Adam, reading the metrics)');
    for (const model of ['reference2d', 'target2d']) {
      const r = await trainStep(backend, model, a.quick ? QUICK_2D : undefined, a.quick ? 2 : 32, reps, true);
      steps.push(r);
      save();
      log(fmtStep(r));
      if (r.profile) log(r.profile);
    }
  }
  if (!a.skip.includes('train3d')) {
    // The largest batch that fits: the first of these whose step runs.
    // BatchNorm needs 2 values per channel at the deepest level: batch ≥ 2.
    for (const batch of a.quick ? [2] : [32, 16, 8, 4, 2]) {
      const r = await trainStep(backend, 'target3d', a.quick ? QUICK_3D : undefined, batch, a.quick ? 1 : 3);
      steps.push(r);
      save();
      log(fmtStep(r));
      if (r.ok) break;
    }
  }
  const ok = steps.filter((s) => s.ok);
  result.peakPlannedMiB = ok.length ? Math.max(...ok.map((s) => s.plannedMiB!)) : null;
  log(`\npeak memory: ${result.peakPlannedMiB ?? '-'} MiB planned by the largest program that ran (compiler/plan.ts memoryStats; WebGPU reports no device memory use)`);

  backend.destroy();
  result.complete = true;
  save();
  log(`took ${result.seconds} s; wrote ${out}`);
}

if (process.argv[1]?.match(/device\.(ts|mjs)$/)) await main();
