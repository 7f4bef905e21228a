// SIGINT/SIGTERM stop `statcell train` at the next step boundary (issue 11): with the data fully
// cached and no --step-delay-ms, so every await of a step resolves as a microtask — the case where
// the handlers used to run only after the last iteration. The stopped run exits 130/143 within a
// second, leaves a checkpoint at the iteration it reports, and `--resume` continues it to exactly
// the weights of a run that was never stopped.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { latestCheckpoint } from './run-files.ts';
import { TINY_FILE } from './tiny-model.ts';

const CLI = join(import.meta.dirname, '../../cli/statcell.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-sig-'));
const env = { ...process.env, CI: '1' };
let manifest = '';

// 20 training cells, batch 4: 5 iterations an epoch; by iteration 60 every cell is cached.
const args = (out: string, iterations: number, logEvery = 20) => ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', manifest, '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', String(iterations), '--log-every', String(logEvery), '--eval-samples', '1'];

/** Runs until progress shows iteration ≥ `at`, sends `signal`; the exit code and the ms from the signal to the exit. */
function stopAt(out: string, at: number, signal: NodeJS.Signals, logEvery = 20): Promise<{ code: number | null; ms: number; err: string }> {
  return new Promise((resolve) => {
    // Bounded, and killed on the test's timeout: a run that ignores the signal must not outlive it.
    const p = spawn(process.execPath, [CLI, ...args(out, 20_000, logEvery)], { env, timeout: 60_000, killSignal: 'SIGKILL' });
    let err = '';
    let sentAt = 0;
    p.stderr.on('data', (d) => {
      err += d;
      const m = [...err.matchAll(/step (\d+)\//g)].at(-1);
      if (!sentAt && m && Number(m[1]) >= at) {
        sentAt = performance.now();
        p.kill(signal);
      }
    });
    p.on('exit', (code) => resolve({ code, ms: performance.now() - sentAt, err }));
  });
}

const sidecar = latestCheckpoint;

beforeAll(() => {
  const data = tmp();
  synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
  manifest = join(data, 'manifest.csv');
});

describe('signals stop training at a step boundary', () => {
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const)
    test(`${signal}: exit ${code} within 1 s, a checkpoint at the stop, --resume continues bit for bit`, async () => {
      const out = tmp();
      const k = await stopAt(out, 60, signal);
      expect(k.code, k.err).toBe(code);
      expect(k.ms).toBeLessThan(1000);
      const stopped = Number(k.err.match(new RegExp(`${signal} received, checkpoint \\S+ written at iteration (\\d+)`))?.[1]);
      expect(stopped).toBeGreaterThanOrEqual(60);
      const ck = sidecar(out);
      expect(ck.side.iteration).toBe(stopped);

      // Resumed to stopped + 7 (mid-epoch), it matches a run of stopped + 7 that never stopped.
      const end = stopped + 7;
      const resumed = spawnSync(process.execPath, [CLI, ...args(out, end), '--resume'], { env, encoding: 'utf8', timeout: 60_000 });
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toContain(`resuming from ${join(out, 'checkpoints', ck.name)} at iteration ${stopped}`);
      const whole = tmp();
      const ref = spawnSync(process.execPath, [CLI, ...args(whole, end)], { env, encoding: 'utf8', timeout: 60_000 });
      expect(ref.status, ref.stderr).toBe(0);
      const a = sidecar(out);
      const b = sidecar(whole);
      expect(a.side.iteration).toBe(end);
      expect(b.side.iteration).toBe(end);
      expect(a.bytes.equals(b.bytes)).toBe(true); // the weights and Adam's moments
    }, 120_000);

  test('SIGTERM in the first epoch, while cells are still read from disk: exit 143 within 1 s, a checkpoint', async () => {
    const out = tmp();
    const k = await stopAt(out, 1, 'SIGTERM', 1);
    expect(k.code, k.err).toBe(143);
    expect(k.ms).toBeLessThan(1000);
    const stopped = Number(k.err.match(/SIGTERM received, checkpoint \S+ written at iteration (\d+)/)?.[1]);
    expect(stopped).toBeGreaterThanOrEqual(1);
    expect(sidecar(out).side.iteration).toBe(stopped);
  }, 60_000);
});
