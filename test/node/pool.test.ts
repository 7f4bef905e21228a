// The Wasm thread pool's launch protocol (runtime/wasm-threads.ts, wasm-worker.mjs) under many
// launches with spurious wake-ups between them, and its watchdog: a worker that stalls becomes a
// clear error within the configured timeout. The long run under load is bench/pool-stress.ts.
// Then: the same bits on 1, 2 and 3 threads.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import { CLASSES } from '../../data/labels.ts';
import { convGradWeightWasm, gradWeightChunks } from '../../kernels/conv/wasm.ts';
import { oracle } from '../../kernels/oracle.ts';
import type { Attrs } from '../../kernels/types.ts';
import { Eager } from '../../runtime/tensor.ts';
import { WasmBackend } from '../../runtime/wasm.ts';
import { train, type CellSource } from '../../train/trainer.ts';
import { randn, relErr, rng } from '../harness.ts';
import { poolHarness } from './pool-harness.ts';

describe('wasm thread pool', () => {
  test('thousands of launches: every piece runs exactly once, spurious wake-ups run nothing', async () => {
    const h = await poolHarness(3);
    const t0 = performance.now();
    let runs = 0;
    try {
      // Up to 20,000 launches within 8 s (the machine may be loaded); each followed by a notify
      // without a new generation, which the old worker took for a launch and ran again.
      while (runs < 20_000 && performance.now() - t0 < 8000) {
        h.launch();
        runs++;
        h.pool.spuriousWake();
      }
      expect(h.wrong(runs)).toBe(0);
    } finally {
      h.destroy();
    }
    console.log(`pool: ${runs} launches on 3 threads in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    expect(runs).toBeGreaterThanOrEqual(2000);
  }, 30_000);

  test('a stalled worker is an error within the stall timeout, and the pool then refuses to run', async () => {
    const h = await poolHarness(2, { stallMs: 300, stallAt: 3 });
    try {
      h.launch();
      h.launch();
      const t0 = performance.now();
      expect(() => h.launch()).toThrow(/1 of 1 worker thread\(s\) made no progress for 0\.3 s; the thread pool is stuck/);
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(300);
      expect(ms).toBeLessThan(3000);
      expect(() => h.launch()).toThrow(/made no progress/);
    } finally {
      h.destroy();
    }
  });

  test('a bad stall timeout is refused', async () => {
    await expect(poolHarness(2, { stallMs: 0 })).rejects.toThrow(/stall timeout must be a positive number of ms, got 0/);
  });
});

// Determinism across thread counts (issue 11): reductions split in fixed chunks that depend on the
// shapes alone (kernels/conv/wasm.ts, gradWeightChunks), so 1, 2 and 3 threads give the same bits
// and a run may resume with another thread count. Checked on the op against the float64 oracle,
// and on a few training steps of a conv model.
describe('the same bits whatever the Wasm thread count', () => {
  const counts = [1, 2, 3];

  test('conv_grad_weight: 1, 2, 3 threads bitwise equal, and equal to float64 within float error', async () => {
    const backends = await Promise.all(counts.map((threads) => WasmBackend.create({ threads })));
    try {
      expect(backends.map((b) => b.threads)).toEqual(counts);
      const cases: [number[], number[], Attrs][] = [
        [[16, 8, 16, 12], [16, 16, 16, 12], { kernel: 3, pad: 1 }],
        [[64, 16, 8, 6], [64, 32, 4, 3], { kernel: 4, stride: 2, pad: 1 }],
        [[7, 5, 17, 13], [7, 16, 17, 13], { kernel: 3, pad: 1 }],
      ];
      for (const [xs, dys, attrs] of cases) {
        const plan = convGradWeightWasm([xs, dys], attrs);
        // Several chunks, and the threaded form is taken (else the test would prove nothing).
        expect(gradWeightChunks(xs[0], dys.slice(2).reduce((a, b) => a * b, 1)).length).toBeGreaterThan(1);
        expect(plan.split?.(2)).toBeTruthy();
        expect(plan.split?.(3)).toBeTruthy();
        const inputs = [randn(xs, 7), randn(dys, 8)];
        const [want] = oracle.call('conv_grad_weight', inputs, attrs);
        const got = backends.map((b) => {
          const e = new Eager(b);
          const [out] = e.call('conv_grad_weight', inputs.map((t) => e.upload(t.shape, t.data)), attrs);
          return e.read(out);
        });
        const outs = await Promise.all(got);
        expect(relErr(outs[0], want.data)).toBeLessThan(1e-5);
        for (const o of outs.slice(1)) expect(Buffer.from(o.buffer).equals(Buffer.from(outs[0].buffer))).toBe(true);
      }
    } finally {
      for (const b of backends) b.destroy();
    }
  });

  test('three training steps of a conv model: the same weights on 1, 2 and 3 threads', async () => {
    const model = compileModelFile(fileURLToPath(new URL('../../models/reference2d.vae', import.meta.url)), { overrides: { channels: [4, 8, 16, 32, 64], latent: 8, size: [64, 32] } });
    const vox = 64 * 32;
    const r = rng(5);
    const cells = Array.from({ length: 8 }, () => Float32Array.from({ length: 2 * vox }, () => r()));
    const source: CellSource = {
      length: cells.length,
      async batch(idx) {
        const reference = new Float32Array(idx.length * 2 * vox);
        idx.forEach((i, k) => reference.set(cells[i], k * 2 * vox));
        return { reference, structure: new Float32Array(idx.length * vox), onehot: new Float32Array(idx.length * CLASSES.length), classes: CLASSES, rows: idx.map((i) => ({ line: i + 2, cellId: String(i), structure: CLASSES[0], split: 'train' as const, columns: {} })) };
      },
    };
    const weights: Map<string, Float32Array>[] = [];
    for (const threads of counts) {
      const backend = await WasmBackend.create({ threads });
      try {
        const res = await train({ model, backend, train: source, batch: 8, seed: 3, iterations: 3, out: mkdtempSync(join(tmpdir(), 'statcell-det-')), log: () => {} });
        weights.push(await res.runtime.readAll());
        res.runtime.destroy();
      } finally {
        backend.destroy();
      }
    }
    const [w1, ...others] = weights;
    let moved = 0;
    for (const w of others)
      for (const [name, v] of w1) {
        expect(Buffer.from(w.get(name)!.buffer).equals(Buffer.from(v.buffer)), `${name}`).toBe(true);
        moved++;
      }
    expect(moved).toBeGreaterThan(0);
  }, 120_000);
});
