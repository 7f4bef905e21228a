// statcell sweep: the plan (grammar, sweep.json, the Slurm array script, the Kubernetes Indexed
// Job checked against the batch/v1 schema), the index contract as a pod runs it, a SIGKILLed index
// resuming bit for bit, and collect showing the β trade-off on the tiny model.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job } from 'kubernetes-models/batch/v1';
import { parse } from 'yaml';
import { beforeAll, describe, expect, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { latestCheckpoint } from './run-files.ts';
import { grid, makePlan, parseAxis, readPlan } from '../../sweep/plan.ts';
import { readDone } from '../../sweep/index.ts';
import { TINY_FILE } from './tiny-model.ts';

const CLI = join(import.meta.dirname, '../../cli/statcell.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-sweep-'));
const env = { ...process.env, CI: '1' };
const cli = (args: string[], extra: Record<string, string> = {}) => spawnSync(process.execPath, [CLI, ...args], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 60_000 });
let manifest = '';

beforeAll(() => {
  const data = tmp();
  synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
  manifest = join(data, 'manifest.csv');
});

/** A 3-index β sweep of the tiny model on Wasm: 20 training cells, batch 4, 60 iterations, a checkpoint every 5. */
const planTiny = (out: string, betas = '0.01,0.5,0.99') => {
  const r = cli(['sweep', 'plan', '--model', TINY_FILE, '--set', 'size=[24,16]', '--sweep', `beta=${betas}`, '--data', manifest, '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', '60', '--checkpoint-every', '5', '--eval-samples', '1', '--gpus', '0']);
  expect(r.status, r.stderr).toBe(0);
};
const latestTensors = (run: string) => latestCheckpoint(run).bytes;

describe('sweep plan', () => {
  test('grammar: lo:hi:n is linear and inclusive, a,b,c a list, several axes the product', () => {
    const b = parseAxis('beta=0.01:0.99:25').values as number[];
    expect(b).toHaveLength(25);
    b.forEach((v, k) => expect(v).toBeCloseTo(0.01 + (0.98 * k) / 24, 12));
    expect(b[0]).toBe(0.01);
    expect(b[24]).toBe(0.99);
    expect(parseAxis('latent=4,8').values).toEqual([4, 8]);
    expect(grid([parseAxis('a=1,2'), parseAxis('b=x,y,z')])).toEqual([
      { a: 1, b: 'x' }, { a: 1, b: 'y' }, { a: 1, b: 'z' }, { a: 2, b: 'x' }, { a: 2, b: 'y' }, { a: 2, b: 'z' },
    ]);
    expect(() => parseAxis('beta')).toThrow(/expected name=lo:hi:n/);
    expect(() => parseAxis('beta=0:1:0')).toThrow(/positive integer/);
    expect(() => parseAxis('beta=0:1')).toThrow(/three parts/);
  });

  test('refused at plan time, not in every task of a queued array: a huge grid, a repeated value, a parameter the model lacks, a value of the wrong type or one its asserts refuse', () => {
    const t0 = performance.now();
    expect(() => parseAxis('beta=0.1:0.9:1e9')).toThrow('--sweep beta=0.1:0.9:1e9: 1000000000 values, more than the 10000 indices a sweep may have');
    expect(() => grid([parseAxis('a=0:1:200'), parseAxis('b=0:1:200')])).toThrow('--sweep a (200) × b (200): 40000 indices, more than the 10000 a sweep may have');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(() => parseAxis('beta=0.1,0.2,0.1')).toThrow('--sweep beta=0.1,0.2,0.1: 0.1 is given twice');
    const plan = (sweep: string[], model = TINY_FILE, set: Record<string, unknown> = { size: [24, 16] }) => makePlan({ model, data: manifest, set, sweep, options: { backend: 'wasm', batch: 4, epochs: 1, seed: 1, evalSamples: 1 } });
    expect(() => plan(['nope=1,2'])).toThrow(/--sweep nope=1: the index with size=\[24,16\] nope=1 does not compile: .*has no parameter 'nope'/);
    expect(() => plan(['beta=abc'])).toThrow(/--sweep beta="abc": .*does not compile: .*'beta' got "abc" \(string\), but beta is a number/);
    expect(() => plan(['beta=-1:1:3'], 'models/reference2d.vae', {})).toThrow(/--sweep beta=-1: .*does not compile: .*beta must be positive/);
    expect(plan(['beta=0.1,0.5']).indices).toHaveLength(2);
    // What train refuses is refused at plan, not in every task (tester: each task wrote FAILED).
    const options = (more: object) => makePlan({ model: TINY_FILE, data: manifest, set: { size: [24, 16] }, sweep: ['beta=0.1,0.5'], options: { backend: 'wasm', batch: 4, epochs: 1, seed: 1, evalSamples: 1, ...more } });
    expect(() => options({ iterations: 5 })).toThrow('statcell sweep plan: give --epochs or --iterations, not both');
    expect(() => options({ microBatch: 3 })).toThrow('statcell sweep plan: --micro-batch 3 does not divide --batch 4; give one of 1, 2, 4');
  });

  test('25 β values: sweep.json, the Slurm array, the Kubernetes Indexed Job (batch/v1 schema)', () => {
    const S = tmp();
    const r = cli(['sweep', 'plan', '--model', TINY_FILE, '--sweep', 'beta=0.01:0.99:25', '--data', manifest, '--out', S, '--epochs', '3', '--parallelism', '5']);
    expect(r.status, r.stderr).toBe(0);
    const plan = readPlan(S);
    expect(plan.indices).toHaveLength(25);
    expect(plan.indices[12].set).toEqual({ beta: 0.5 });
    expect(plan.options).toMatchObject({ epochs: 3, batch: 32, seed: 1 });

    const sb = readFileSync(join(S, 'slurm.sbatch'), 'utf8').split('\n');
    expect(sb[0]).toBe('#!/bin/bash');
    expect(sb).toContain('#SBATCH --array=0-24');
    expect(sb).toContain('#SBATCH --gres=gpu:1');
    expect(sb).toContain('#SBATCH --requeue');
    expect(sb.find((l) => l.startsWith('exec '))).toMatch(new RegExp(`sweep run ${S} --index "\\$SLURM_ARRAY_TASK_ID"$`));

    const job = parse(readFileSync(join(S, 'job.yaml'), 'utf8'));
    expect(() => new Job(job).validate()).not.toThrow();
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 25, parallelism: 5, backoffLimitPerIndex: 3 });
    expect(job.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
    // The validator is strict enough to fail: a wrong field type is refused.
    expect(() => new Job({ ...job, spec: { ...job.spec, completions: 'many' } }).validate()).toThrow();
    expect(existsSync(join(S, 'logs'))).toBe(true); // Slurm fails a task whose --output folder is missing
    expect(readFileSync(join(S, 'README.md'), 'utf8')).toMatch(/sbatch .*slurm\.sbatch[\s\S]*kubectl apply -f .*job\.yaml/);

    // A CPU cluster: no GPU requested anywhere.
    const C = tmp();
    expect(cli(['sweep', 'plan', '--model', TINY_FILE, '--sweep', 'beta=0.1,0.2', '--data', manifest, '--out', C, '--epochs', '1', '--gpus', '0']).status).toBe(0);
    expect(readFileSync(join(C, 'slurm.sbatch'), 'utf8')).not.toMatch(/gres/);
    expect(parse(readFileSync(join(C, 'job.yaml'), 'utf8')).spec.template.spec.containers[0].resources).toEqual({});

    // A hand-edited plan fails naming the file and the field.
    writeFileSync(join(C, 'sweep.json'), readFileSync(join(C, 'sweep.json'), 'utf8').replace('"batch": 32', '"batch": "32"'));
    expect(() => readPlan(C)).toThrow(`${join(C, 'sweep.json')}: /options/batch must be integer`);
  }, 30_000);
});

describe('sweep run', () => {
  let S = '';
  test('the index from JOB_COMPLETION_INDEX, as a pod runs it; DONE; a second run is a no-op; status', () => {
    S = tmp();
    planTiny(S);
    const r = cli(['sweep', 'run', S], { JOB_COMPLETION_INDEX: '2' });
    expect(r.status, r.stderr).toBe(0);
    const done = JSON.parse(readFileSync(join(S, 'runs', '2', 'DONE'), 'utf8'));
    expect(done).toMatchObject({ index: 2, iteration: 60, set: { size: [24, 16], beta: 0.99 } });
    expect(JSON.parse(readFileSync(join(S, 'runs', '2', 'run.json'), 'utf8')).overrides).toEqual({ size: [24, 16], beta: 0.99 });
    expect(existsSync(join(S, 'runs', '0'))).toBe(false);
    const again = cli(['sweep', 'run', S], { JOB_COMPLETION_INDEX: '2' });
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('index 2: already DONE');
    const bad = cli(['sweep', 'run', S], { JOB_COMPLETION_INDEX: '3' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('JOB_COMPLETION_INDEX=3 is not an index of this sweep (0…2)');
    const st = cli(['sweep', 'status', S]);
    expect(st.stdout.split('\n').map((l) => l.split('\t')[1])).toEqual(['pending', 'pending', 'done', undefined]);
  }, 60_000);

  test("from the package's bin, in a folder named with a space and a quote: the Slurm script runs as written and --local starts the same bin", () => {
    const bin = join(import.meta.dirname, '../../dist/statcell.mjs'); // `npm test` builds it
    const run = (args: string[], extra: Record<string, string> = {}) => spawnSync(process.execPath, [bin, ...args], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 60_000 });
    const B = join(tmp(), "it's a sweep");
    const plan = run(['sweep', 'plan', '--model', TINY_FILE, '--set', 'size=[24,16]', '--sweep', 'beta=0.1,0.9', '--data', manifest, '--out', B, '--backend', 'wasm', '--batch', '4', '--iterations', '4', '--eval-samples', '1', '--gpus', '0']);
    expect(plan.status, plan.stderr).toBe(0);
    const script = join(B, 'slurm.sbatch');
    expect(readFileSync(script, 'utf8')).toContain(`exec ${process.execPath} ${bin} sweep run '${B.replace(/'/g, `'\\''`)}'`);
    // sbatch splits #SBATCH arguments at whitespace unless quoted.
    expect(readFileSync(script, 'utf8')).toContain(`#SBATCH --output="${B}/logs/%A_%a.out"`);
    // A pod mounts only the sweep directory: the model and the manifest outside it are said.
    expect(plan.stderr).toContain(`warning: ${TINY_FILE} is outside ${B}, which is all a Kubernetes pod of job.yaml mounts`);
    expect(plan.stderr).toContain(`warning: ${manifest} is outside ${B}`);
    expect(readFileSync(join(B, 'README.md'), 'utf8')).toContain(`The pods mount only that directory: ${TINY_FILE} and ${manifest} must be in the image or another volume at the same paths`);
    // #SBATCH lines are comments to bash: the script is what a task runs.
    const task = spawnSync('bash', [script], { env: { ...env, SLURM_ARRAY_TASK_ID: '0' }, encoding: 'utf8', timeout: 60_000 });
    expect(task.status, task.stderr).toBe(0);
    expect(existsSync(join(B, 'runs', '0', 'DONE'))).toBe(true);
    const local = run(['sweep', 'run', B, '--local']);
    expect(local.status, local.stderr).toBe(0);
    expect(existsSync(join(B, 'runs', '1', 'DONE'))).toBe(true);
  }, 60_000);

  test('--local: an index whose task is killed before it can write FAILED (the OOM killer) is failed, not pending', async () => {
    const K = tmp();
    planTiny(K, '0.5');
    const parent = spawn(process.execPath, [CLI, 'sweep', 'run', K, '--local', '--step-delay-ms', '200'], { env, stdio: 'ignore' });
    const lock = join(K, 'runs', '0', 'lock');
    const started = Date.now();
    while (!existsSync(join(K, 'runs', '0', 'checkpoints', 'latest')) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50));
    process.kill(Number(readFileSync(lock, 'utf8').split('\n')[0]), 'SIGKILL');
    const code = await new Promise((r) => parent.on('exit', r));
    expect(code).toBe(1);
    const st = cli(['sweep', 'status', K]);
    expect(st.stdout.split('\n')[0].split('\t').slice(0, 2)).toEqual(['0', 'failed']);
    expect(st.stdout).toContain('the task exited with a signal before it could say why');
  }, 60_000);

  test('--local stopped with SIGTERM stops its running task (which checkpoints) and starts no other (it exited and left the task training, orphaned)', async () => {
    const K = tmp();
    planTiny(K, '0.5,0.6');
    const parent = spawn(process.execPath, [CLI, 'sweep', 'run', K, '--local', '--step-delay-ms', '200'], { env, stdio: 'ignore' });
    const started = Date.now();
    while (!existsSync(join(K, 'runs', '0', 'checkpoints', 'latest')) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50));
    const child = Number(readFileSync(join(K, 'runs', '0', 'lock'), 'utf8').split('\n')[0]);
    parent.kill('SIGTERM');
    const code = await new Promise((r) => parent.on('exit', r));
    expect(code).toBe(143);
    const { alive } = await import('../../session/lock.ts');
    expect(alive(child)).toBe(false);
    expect(existsSync(join(K, 'runs', '1'))).toBe(false);
    const st = cli(['sweep', 'status', K]);
    expect(st.stdout.split('\n')[0].split('\t').slice(0, 2)).toEqual(['0', 'pending']);
  }, 60_000);

  test('plan into a folder that holds a sweep is refused (its DONE runs were reported under the new plan\'s β)', () => {
    const K = tmp();
    planTiny(K, '0.5');
    const again = cli(['sweep', 'plan', '--model', TINY_FILE, '--sweep', 'beta=0.1', '--data', manifest, '--out', K, '--epochs', '1', '--gpus', '0']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`sweep plan: ${K} already holds a sweep`);
  });

  test('--local runs the rest; collect: test reconstruction error rises and KL falls as β rises', () => {
    // Contradictions are refused, not resolved silently (tester: --index was ignored, --parallel 0 ran one at a time).
    expect(cli(['sweep', 'run', S, '--local', '--index', '0']).stderr).toContain('--index runs one index, --local every unfinished one; give one of them');
    expect(cli(['sweep', 'run', S, '--local', '--parallel', '0']).stderr).toContain("argument '0' is invalid. expected a positive integer");
    const local = cli(['sweep', 'run', S, '--local', '--parallel', '2']);
    expect(local.status, local.stderr).toBe(0);
    expect(local.stderr).toContain('2 of 3 indices to run');
    for (const i of [0, 1, 2]) expect(existsSync(join(S, 'runs', String(i), 'DONE'))).toBe(true);
    const c = cli(['sweep', 'collect', S, '--backend', 'wasm', '--samples', '4', '--generated', '4']);
    expect(c.status, c.stderr).toBe(0);
    const [head, ...lines] = readFileSync(join(S, 'results.csv'), 'utf8').trim().split('\n');
    expect(head).toBe('index,beta,elbo,sse,kl');
    const rows = lines.map((l) => l.split(',').map(Number));
    expect(rows.map((r) => r[1])).toEqual([0.01, 0.5, 0.99]);
    const [sse, kl] = [rows.map((r) => r[3]), rows.map((r) => r[4])];
    expect(sse[0]).toBeLessThan(sse[1]);
    expect(sse[1]).toBeLessThan(sse[2]);
    expect(kl[0]).toBeGreaterThan(kl[1]);
    expect(kl[1]).toBeGreaterThan(kl[2]);
    for (const f of ['tradeoff.svg', 'tradeoff.png', 'generated.png']) expect(existsSync(join(S, f))).toBe(true);
    expect(readFileSync(join(S, 'generated.png')).subarray(1, 4).toString()).toBe('PNG');
  }, 90_000);

  // The uninterrupted reference is index 1 of the sweep above (the same plan in another directory).
  test('an index SIGKILLed mid-training and rerun ends bit-identical to an uninterrupted one', async () => {
    const W = S;
    S = tmp();
    planTiny(S);
    // Killed once a checkpoint past iteration 12 exists (mid-run: 60 iterations, checkpoints every 5).
    const killedAt = await new Promise<number>((resolve) => {
      const p = spawn(process.execPath, [CLI, 'sweep', 'run', S, '--index', '1', '--log-every', '1', '--step-delay-ms', '30'], { env, timeout: 60_000, killSignal: 'SIGKILL' });
      let err = '';
      let sent = 0;
      p.stderr.on('data', (d) => {
        err += d;
        const m = [...err.matchAll(/step (\d+)\//g)].at(-1);
        if (!sent && m && Number(m[1]) >= 13) {
          sent = Number(m[1]);
          p.kill('SIGKILL');
        }
      });
      p.on('exit', () => resolve(sent));
    });
    expect(killedAt).toBeGreaterThanOrEqual(13);
    expect(existsSync(join(S, 'runs', '1', 'DONE'))).toBe(false);
    expect(cli(['sweep', 'status', S]).stdout.split('\n')[1].split('\t')[1]).toBe('pending');
    const resumed = cli(['sweep', 'run', S, '--index', '1']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .* at iteration (1[0-9]|[2-5][0-9])/);
    expect(readDone(W, 1)).toMatchObject({ iteration: 60 });
    expect(latestTensors(join(S, 'runs', '1')).equals(latestTensors(join(W, 'runs', '1')))).toBe(true);
  }, 90_000);
});
