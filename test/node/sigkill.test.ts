// SIGKILL at 20 random moments (issue 11): one short Wasm training run is killed 20 times, each
// time at a seeded random delay after it starts training (a checkpoint every step, so many kills
// land inside a checkpoint write), and resumed after each kill; the run's final checkpoint (weights
// and Adam's moments) equals an uninterrupted run's bit for bit, and no temporary file is left.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { rng } from '../rng.ts';
import { latestCheckpoint } from './run-files.ts';
import { TINY_FILE } from './tiny-model.ts';

const CLI = join(import.meta.dirname, '../../cli/statcell.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-kill-'));
const env = { ...process.env, CI: '1' };
const ITERATIONS = 300; // more than 20 short lives can reach, so every kill lands mid-run
const KILLS = 20;
let manifest = '';

const args = (out: string) => ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', manifest, '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', String(ITERATIONS), '--checkpoint-every', '1', '--log-every', '1', '--seed', '7', '--eval-samples', '1', '--step-delay-ms', '20'];

/** Starts (or resumes) the run and SIGKILLs it `delayMs` after its first logged step; resolves with how it ended. */
function killAfter(out: string, resume: boolean, delayMs: number): Promise<{ killed: boolean; code: number | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args(out), ...(resume ? ['--resume'] : [])], { env, timeout: 120_000, killSignal: 'SIGKILL' });
    let err = '';
    let armed = false;
    p.stderr.on('data', (d) => {
      err += d;
      if (!armed && /step \d+\//.test(err)) {
        armed = true;
        setTimeout(() => p.kill('SIGKILL'), delayMs);
      }
    });
    p.on('exit', (code, sig) => resolve({ killed: sig === 'SIGKILL', code, err }));
  });
}

beforeAll(() => {
  const data = tmp();
  synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 5 });
  manifest = join(data, 'manifest.csv');
});

test(`killed with SIGKILL at ${KILLS} random moments and resumed each time = uninterrupted, bit for bit`, async () => {
  const whole = tmp();
  const r = spawnSync(process.execPath, [CLI, ...args(whole)], { env, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);

  const out = tmp();
  const delay = rng(20261202);
  let kills = 0;
  let finished = false;
  const stoppedAt: number[] = [];
  for (let life = 0; kills < KILLS && !finished; life++) {
    const resume = existsSync(join(out, 'checkpoints', 'latest'));
    const k = await killAfter(out, resume, Math.floor(delay() * 300));
    if (k.killed) kills++;
    else {
      expect(k.code, k.err).toBe(0);
      finished = true; // it ran to the end before the kill came
    }
    if (existsSync(join(out, 'checkpoints', 'latest'))) stoppedAt.push(latestCheckpoint(out).side.iteration);
  }
  expect(kills, `only ${kills} kills landed before the run ended (iterations at each: ${stoppedAt.join(', ')})`).toBe(KILLS);
  if (!finished) {
    const last = spawnSync(process.execPath, [CLI, ...args(out), '--resume'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(last.status, last.stderr).toBe(0);
  }
  // The kills were spread over the run, not all before its first step.
  expect(new Set(stoppedAt).size, `checkpoint iterations after each kill: ${stoppedAt.join(', ')}`).toBeGreaterThan(5);

  const a = latestCheckpoint(whole);
  const b = latestCheckpoint(out);
  expect(b.side.iteration).toBe(ITERATIONS);
  expect(b.tensors.equals(a.tensors), 'weights and state').toBe(true);
  expect(b.optimizer.equals(a.optimizer), "Adam's moments").toBe(true);
  // Half-written files of the killed lives are cleaned up by the lives after them.
  expect(readdirSync(join(out, 'checkpoints')).filter((f) => f.includes('.tmp-'))).toEqual([]);
}, 600_000);
