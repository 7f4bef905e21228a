// Checkpoints and run directories under bad input and faults: crafted pointers, malformed
// sidecars, tensors of the right size but the wrong shape, stale temporary files, and one
// writer per run directory (a second trainer is refused; a dead one's lock is taken over).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { writeSafetensors } from '../../runtime/safetensors.ts';
import { CheckpointError, loadCheckpoint, resolveCheckpoint, saveCheckpoint } from '../../session/checkpoint.ts';
import { LockError, lockRun } from '../../session/lock.ts';
import { TINY_FILE, tinyModel } from './tiny-model.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-ck-'));
const CLI = join(import.meta.dirname, '../../cli/statcell.js');

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function written(dir: string) {
  const model = tinyModel({ size: [6, 4] });
  const tensors = new Map(model.tensors.map((t) => [t.name, new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(0.5)]));
  const side = { name: 'epoch-0001', iteration: 3, epoch: 1, seeds: { init: 1, data: 1 }, model: { name: model.name, config: model.config, source: model.source, sourceHash: model.sourceHash, files: model.files, entryFile: model.entryFile }, backend: 'wasm', batch: 4, optimizer: { kind: 'adam', lr: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 3 }, metrics: { loss: 1 } };
  saveCheckpoint(dir, model, tensors, side, ['latest']);
  return { model, tensors, side };
}

describe('checkpoint files', () => {
  test('a pointer must name a checkpoint of its folder', () => {
    const dir = tmp();
    written(dir);
    for (const bad of ['../../../etc/passwd', '/tmp/x', '', 'a'.repeat(300)]) {
      writeFileSync(join(dir, 'latest'), bad + '\n');
      expect(() => resolveCheckpoint(dir, 'latest'), JSON.stringify(bad.slice(0, 20))).toThrow(CheckpointError);
      expect(() => resolveCheckpoint(dir, 'latest')).toThrow(/latest: the pointer must hold the name of a checkpoint/);
    }
    expect(() => resolveCheckpoint(dir, '../epoch-0001')).toThrow(/--checkpoint \.\.\/epoch-0001: give best, latest or the name/);
  });

  test('a malformed sidecar is refused naming the file and the field', () => {
    const dir = tmp();
    const { model } = written(dir);
    const file = join(dir, 'epoch-0001.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    for (const [field, value, want] of [['iteration', -3, /field 'iteration' is -3, expected a non-negative integer/], ['iteration', null, /field 'iteration' is null/], ['batch', 0, /field 'batch' is 0/], ['tensorsSha256', 'x', /field 'tensorsSha256'/]] as const) {
      writeFileSync(file, JSON.stringify({ ...good, [field]: value }));
      expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(want);
    }
    writeFileSync(file, '[1, 2]');
    expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(/epoch-0001\.json: not a checkpoint sidecar/);
  });

  test("a tensor of the right size but not the model's shape is refused", async () => {
    const dir = tmp();
    const { model, side } = written(dir);
    const w = model.tensors.find((t) => t.shape.length === 2 && t.shape[0] !== t.shape[1])!;
    const tensors = new Map(model.tensors.map((t) => [t.name, { shape: t === w ? [...t.shape].reverse() : [...t.shape], data: new Float32Array(t.shape.reduce((a, b) => a * b, 1)) }]));
    const bytes = writeSafetensors(tensors);
    writeFileSync(join(dir, 'epoch-0001.safetensors'), bytes);
    const { createHash } = await import('node:crypto');
    writeFileSync(join(dir, 'epoch-0001.json'), JSON.stringify({ ...side, format: 'statcell-checkpoint/1', tensorsSha256: createHash('sha256').update(bytes).digest('hex') }));
    expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(new RegExp(`tensor '${w.name.replace(/\./g, '\\.')}' is \\[${[...w.shape].reverse().join(', ')}\\], the model's is \\[${w.shape.join(', ')}\\]`));
  });

  test('temporary files of a writer that died are removed at the next checkpoint', () => {
    const dir = tmp();
    written(dir);
    const stale = join(dir, `epoch-0002.safetensors.tmp-${deadPid()}`);
    writeFileSync(stale, 'torn');
    written(dir);
    expect(existsSync(stale)).toBe(false);
  });
});

describe('one writer per run directory', () => {
  test('a live lock is refused, a dead one taken over, a released one gone', () => {
    const dir = tmp();
    const release = lockRun(dir);
    expect(() => lockRun(dir)).toThrow(LockError);
    expect(() => lockRun(dir)).toThrow(new RegExp(`pid ${process.pid}\\) is writing to this run directory`));
    release();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
    writeFileSync(join(dir, 'lock'), `${deadPid()}\n`);
    const again = lockRun(dir);
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid));
    again();
  });

  test('a second statcell train on the same --out is refused while the first runs', async () => {
    const data = tmp();
    synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
    const out = tmp();
    const args = ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', '40', '--log-every', '1'];
    const first = spawn(process.execPath, [CLI, ...args, '--step-delay-ms', '100'], { env: { ...process.env, CI: '1' } });
    let err = '';
    await new Promise<void>((resolve) => first.stderr.on('data', (d) => ((err += d), /step \d+\//.test(err) && resolve())));
    const second = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, CI: '1' }, encoding: 'utf8', timeout: 60_000 });
    first.kill('SIGKILL');
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/is writing to this run directory; wait for it to end, or give another --out/);
    await new Promise((r) => first.on('exit', r));
    // Killed, its lock is stale: the run resumes.
    const resumed = spawnSync(process.execPath, [CLI, ...args, '--resume'], { env: { ...process.env, CI: '1' }, encoding: 'utf8', timeout: 120_000 });
    expect(resumed.status, resumed.stderr).toBe(0);
  }, 180_000);
});
