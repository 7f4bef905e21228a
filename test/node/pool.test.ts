// The Wasm thread pool's launch protocol (runtime/wasm-threads.ts, wasm-worker.mjs) under many
// launches with spurious wake-ups between them, and its watchdog: a worker that stalls becomes a
// clear error within the configured timeout. The long run under load is bench/pool-stress.ts.

import { describe, expect, test } from 'vitest';
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
