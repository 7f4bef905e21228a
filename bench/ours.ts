// Our backends as benchmark engines: the ops from kernels/registry.ts, launched through
// runtime/backend.ts exactly as a compiled program does (prepare once, replay).
//   wasm:   one prepared launch, executed synchronously per repetition.
//   webgpu: a batch of the same prepared launch enqueued in one command encoder, then sync();
//           the batch size is picked so that one repetition takes ~`batchMs`, which hides the
//           submit and readback latency the way a training step does.
// An op that is not there yet (unknown op, no kernel) makes the row 'not available: <reason>'.

import type { Backend, DeviceBuffer, PreparedLaunch } from '../runtime/backend.ts';
import { openBackend } from '../runtime/device.ts';
import { WasmBackend } from '../runtime/wasm.ts';
import { getOp } from '../kernels/registry.ts';
import type { Attrs, Shape } from '../kernels/types.ts';
import { numel } from '../kernels/types.ts';
import type { Engine, Outcome, Task, TimerOptions } from './common.ts';
import { convOut, errMessage, fill, taskFlops, timeIt } from './common.ts';

/** The op, its input shapes and attributes that perform a task on our backends. */
export function opFor(task: Task): { op: string; inShapes: Shape[]; attrs: Attrs } {
  if (task.kind === 'matmul') return { op: 'matmul', inShapes: [[task.M, task.K], [task.K, task.N]], attrs: {} };
  const { B, Ci, H, W, Co, K, stride, pad } = task.layer;
  const [oh, ow] = convOut(task.layer);
  const w = [Co, Ci, K, K];
  switch (task.pass) {
    case 'fwd':
      return { op: 'conv', inShapes: [[B, Ci, H, W], w], attrs: { stride, pad } };
    case 'dx': {
      // conv_transpose takes the weight as [its Ci, its Co, K, K] = conv's [Co, Ci, K, K].
      const outputPadding = [H - ((oh - 1) * stride - 2 * pad + K), W - ((ow - 1) * stride - 2 * pad + K)];
      return { op: 'conv_transpose', inShapes: [[B, Co, oh, ow], w], attrs: { stride, pad, outputPadding } };
    }
    case 'dw':
      return { op: 'conv_grad_weight', inShapes: [[B, Ci, H, W], [B, Co, oh, ow]], attrs: { stride, pad, kernel: K } };
  }
}

export interface OursOptions {
  /** WebGPU: the time one batch of launches should take. */
  batchMs?: number;
  /** WebGPU: a launch slower than this is timed once, not repeated (software adapters). */
  slowLaunchMs?: number;
}

export async function openOurs(kind: 'wasm' | 'wasm-fma' | 'webgpu', opts: OursOptions = {}): Promise<Engine> {
  const { backend, reason } = kind === 'webgpu' ? await openBackend(kind) : await openWasm(kind === 'wasm-fma');
  const batchMs = opts.batchMs ?? 300;
  const slowMs = opts.slowLaunchMs ?? 1500;
  return {
    name: kind,
    describe: () => reason,
    run: (task, timer) => runOn(backend, task, timer, batchMs, slowMs),
    compute: (task, inputs) => computeOn(backend, task, inputs),
    close: () => backend.destroy(),
  };
}

/**
 * The exact build (wasm) or the relaxed-SIMD FMA build (wasm-fma, the default where the engine
 * has relaxed SIMD), at the thread count STATCELL_WASM_THREADS gives.
 */
async function openWasm(fma: boolean): Promise<{ backend: Backend; reason: string }> {
  const backend = await WasmBackend.create({ fma });
  return { backend, reason: backend.description };
}

async function computeOn(backend: Backend, task: Task, data: Float32Array[]): Promise<Float32Array> {
  const { op: name, inShapes, attrs } = opFor(task);
  const op = getOp(name);
  const outShape = op.shape(inShapes, attrs)[0];
  const inputs = data.map((d) => {
    const b = backend.alloc(d.length);
    backend.write(b, d);
    return b;
  });
  const out = backend.alloc(numel(outShape));
  const launch = backend.prepare(op, inShapes, attrs, inputs, [out]);
  try {
    backend.execute([launch]);
    await backend.sync();
    return (await backend.read(out)).slice(0, numel(outShape));
  } finally {
    backend.release(launch);
    for (const b of [...inputs, out]) backend.free(b);
  }
}

async function runOn(backend: Backend, task: Task, timer: TimerOptions, batchMs: number, slowMs: number): Promise<Outcome> {
  const bufs: DeviceBuffer[] = [];
  let launch: PreparedLaunch | null = null;
  try {
    const { op: name, inShapes, attrs } = opFor(task);
    const op = getOp(name);
    const outShapes = op.shape(inShapes, attrs);
    const inputs = inShapes.map((s, i) => {
      const b = backend.alloc(numel(s));
      bufs.push(b);
      backend.write(b, fill(numel(s), i + 1));
      return b;
    });
    const outputs = outShapes.map((s) => {
      const b = backend.alloc(numel(s));
      bufs.push(b);
      return b;
    });
    launch = backend.prepare(op, inShapes, attrs, inputs, outputs);
    const l = launch;
    const flops = taskFlops(task);
    if (backend.kind === 'wasm') {
      const timing = await timeIt(() => backend.execute([l]), flops, timer);
      return { ok: true, timing };
    }
    // WebGPU: time one launch (this also compiles the pipeline), then size the batch.
    backend.execute([l]);
    await backend.sync();
    const t0 = performance.now();
    backend.execute([l]);
    await backend.sync();
    const one = performance.now() - t0;
    if (one > slowMs) {
      const timing = { medianMs: one, minMs: one, reps: 1, flops, gflops: flops / (one * 1e6) };
      return { ok: true, timing, note: `one launch, timed once (over ${slowMs} ms)` };
    }
    const batch = Math.max(1, Math.min(64, Math.round(batchMs / Math.max(one, 1e-3))));
    const many = Array<PreparedLaunch>(batch).fill(l);
    const timing = await timeIt(
      async () => {
        backend.execute(many);
        await backend.sync();
      },
      flops * batch,
      { ...timer, warmup: Math.min(timer.warmup, 1) },
    );
    return { ok: true, timing, note: `batch of ${batch} launch(es) per sync` };
  } catch (e) {
    return { ok: false, reason: errMessage(e) };
  } finally {
    if (launch) backend.release(launch);
    for (const b of bufs) backend.free(b);
  }
}
