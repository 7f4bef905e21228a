// Checkpoints and run directories under bad input and faults: crafted pointers, malformed
// sidecars, tensors of the right size but the wrong shape, stale temporary files, one writer per
// run directory (a second trainer is refused; a dead one's lock is taken over), and the optimizer
// state kept only beside the latest checkpoint.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { parseSafetensors, writeSafetensors } from '../../runtime/safetensors.ts';
import { CheckpointError, loadCheckpoint, resolveCheckpoint, saveCheckpoint } from '../../session/checkpoint.ts';
import { LockError, lockRun } from '../../session/lock.ts';
import { assertFreshRunDir, modelOfCheckpoint, readRunInfo, writeRunInfo } from '../../session/run.ts';
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

  test("a sidecar whose model files were edited: the run's model is not rebuilt from them; the error names the field", () => {
    const dir = tmp();
    const { model } = written(dir);
    const file = join(dir, 'epoch-0001.json');
    expect(modelOfCheckpoint(dir, 'epoch-0001', {}).sourceHash).toBe(model.sourceHash);
    const sidecar = JSON.parse(readFileSync(file, 'utf8'));
    sidecar.model.files[sidecar.model.entryFile] += '\n# edited\n';
    writeFileSync(file, JSON.stringify(sidecar));
    expect(() => modelOfCheckpoint(dir, 'epoch-0001', {})).toThrow(/epoch-0001\.json: field 'model\.files' hashes to [0-9a-f]{12}…, not to its 'model\.sourceHash' [0-9a-f]{12}… \(the sidecar was edited or torn\)/);
  });

  test('a malformed sidecar is refused naming the file and the field', () => {
    const dir = tmp();
    const { model } = written(dir);
    const file = join(dir, 'epoch-0001.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    for (const [field, value, want] of [
      ['iteration', -3, /epoch-0001\.json: \/iteration must be >= 0/],
      ['iteration', 2.5, /epoch-0001\.json: \/iteration must be integer/],
      ['iteration', null, /epoch-0001\.json: \/iteration must be integer/],
      ['iteration', undefined, /epoch-0001\.json: \(top level\) must have required property 'iteration'/],
      ['batch', 0, /\/batch must be >= 1/],
      ['tensorsSha256', 'x', /\/tensorsSha256 must match pattern/],
      ['validation', { elbo: null }, /\/validation\/elbo must be number/],
      ['seeds', { init: 1 }, /\/seeds must have required property 'data'/],
    ] as const) {
      writeFileSync(file, JSON.stringify({ ...good, [field]: value }));
      expect(() => loadCheckpoint(dir, 'epoch-0001', model), `${field}=${JSON.stringify(value)}`).toThrow(want);
    }
    writeFileSync(file, '[1, 2]');
    expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(/epoch-0001\.json: \(top level\) must be object/);
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
    expect(readFileSync(join(dir, 'lock'), 'utf8').split('\n')[0]).toBe(String(process.pid));
    again();
  });

  test("a dead trainer's lock with this process's pid (a pod's trainer is pid 1 in every retry) is taken over; another host's, by its age", async () => {
    const { hostname } = await import('node:os');
    const { utimesSync } = await import('node:fs');
    const { STALE_MS } = await import('../../session/lock.ts');
    const dir = tmp();
    // pid 1 in the killed pod and in the retry: this process's pid, another process's token.
    writeFileSync(join(dir, 'lock'), `${process.pid}\n${dir}\n${hostname()}\nthe-killed-pod\n`);
    lockRun(dir)();
    // Another host: live while its holder touches it, stale once untouched for STALE_MS.
    writeFileSync(join(dir, 'lock'), `4242\n${dir}\nnode-17\nother\n`);
    expect(() => lockRun(dir)).toThrow(/pid 4242 on host node-17\) is writing to this run directory/);
    const old = new Date(Date.now() - STALE_MS - 1000);
    utimesSync(join(dir, 'lock'), old, old);
    const taken = lockRun(dir);
    expect(readFileSync(join(dir, 'lock'), 'utf8').split('\n').slice(0, 3)).toEqual([String(process.pid), dir, hostname()]);
    taken();
  });

  test('a run copied while its trainer runs is not locked by the original\'s live pid (it was refused, naming that pid)', () => {
    const original = tmp();
    const release = lockRun(original);
    const copy = tmp();
    writeFileSync(join(copy, 'lock'), readFileSync(join(original, 'lock')));
    const mine = lockRun(copy);
    expect(() => lockRun(original)).toThrow(LockError);
    mine();
    release();
  });

  test('a second statcell train on the same --out is refused while the first runs', async () => {
    const data = tmp();
    synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
    const out = tmp();
    const args = ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', '40', '--log-every', '1'];
    // Slow enough (40 × 1 s) that the second starts (a cold tsx start takes seconds on a loaded machine) while the first still runs.
    const first = spawn(process.execPath, [CLI, ...args, '--step-delay-ms', '1000'], { env: { ...process.env, CI: '1' } });
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

describe('confinement, divergence, run.json', () => {
  test('a pointer or checkpoint file that is a symlink out of the folder is refused', () => {
    const outside = tmp();
    written(outside);
    const dir = tmp();
    written(dir);
    unlinkSync(join(dir, 'latest'));
    symlinkSync(join(outside, 'latest'), join(dir, 'latest'));
    expect(() => resolveCheckpoint(dir, 'latest')).toThrow(/latest: resolves to .*, outside the checkpoint folder/);
    unlinkSync(join(dir, 'latest'));
    writeFileSync(join(dir, 'latest'), 'epoch-0001\n');
    unlinkSync(join(dir, 'epoch-0001.json'));
    symlinkSync(join(outside, 'epoch-0001.json'), join(dir, 'epoch-0001.json'));
    expect(() => loadCheckpoint(dir, resolveCheckpoint(dir, 'latest')!)).toThrow(/epoch-0001\.json: resolves to .*, outside the checkpoint folder/);
    expect(() => loadCheckpoint(dir, '../x')).toThrow(/not a checkpoint name/);
    expect(() => loadCheckpoint(dir, '/etc/passwd')).toThrow(/not a checkpoint name/);
  });

  test('NaN weights or a NaN ELBO are an error, and no file is lost or changed', () => {
    const dir = tmp();
    const { model, tensors, side } = written(dir);
    const before = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
    const p = model.tensors.find((t) => t.kind === 'param')!;
    const bad = new Map(tensors);
    bad.set(p.name, Float32Array.from(tensors.get(p.name)!, (v, i) => (i === 1 ? NaN : v)));
    const next = { ...side, name: 'epoch-0002', iteration: 6, epoch: 2 };
    expect(() => saveCheckpoint(dir, model, bad, next)).toThrow(new RegExp(`parameter '${p.name.replace(/\./g, '\\.')}' holds NaN`));
    expect(() => saveCheckpoint(dir, model, tensors, { ...next, validation: { elbo: NaN } })).toThrow(/validation\.elbo is NaN \(training diverged\); not saved/);
    const after = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [f, b] of before) expect(after.get(f)!.equals(b), f).toBe(true);
  });

  test('run.json is checked against its schema; a fresh run into a used directory is refused', () => {
    const dir = tmp();
    assertFreshRunDir(dir);
    writeRunInfo(dir, { model: 'm.vae', overrides: {}, data: '/d/m.csv', batch: 4, seed: 1, labels: ['a'] });
    expect(readRunInfo(dir).batch).toBe(4);
    // Without a checkpoint there is nothing to resume: a fresh run takes its place, and says so.
    expect(assertFreshRunDir(dir)).toMatch(/its run stopped before its first checkpoint, so there is nothing to resume; starting afresh \(run\.json replaced\)/);
    expect(existsSync(join(dir, 'run.json'))).toBe(false);
    writeRunInfo(dir, { model: 'm.vae', overrides: {}, data: '/d/m.csv', batch: 4, seed: 1, labels: ['a'] });
    // A checkpoint's sidecar, even without the latest pointer: refused.
    mkdirSync(join(dir, 'checkpoints'));
    writeFileSync(join(dir, 'checkpoints', 'epoch-0001.json'), '{}');
    expect(() => assertFreshRunDir(dir)).toThrow(/already holds a training run \(run\.json\); continue it with --resume, or give another --out/);
    expect(existsSync(join(dir, 'run.json'))).toBe(true);
    const good = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...good, batch: '4', labels: [1], fit: 'stretch' }));
    expect(() => readRunInfo(dir)).toThrow(/run\.json: \/batch must be integer; \/labels\/0 must be string; \/fit must be equal to one of the allowed values/);
    // Sidecars alone (run.json and the pointer gone): still a run with checkpoints.
    rmSync(join(dir, 'run.json'));
    expect(() => assertFreshRunDir(dir)).toThrow(/already holds a training run \(checkpoints\)/);
  });
});

describe('optimizer state only where a run resumes from', () => {
  const model = tinyModel({ size: [6, 4] });
  const params = model.tensors.filter((t) => t.kind === 'param');
  const n = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  /** A runtime store: tensors filled with k, distinct Adam moments. */
  const store = (k: number) => {
    const m = new Map(model.tensors.map((t) => [t.name, new Float32Array(n(t.shape)).fill(k)]));
    for (const p of params) for (const w of ['m', 'v']) m.set(`adam.${w}.${p.name}`, Float32Array.from({ length: n(p.shape) }, (_, i) => k + i * 1e-3 + (w === 'v' ? 0.5 : 0)));
    return m;
  };
  const side = (name: string, iteration: number) => ({ name, iteration, epoch: iteration / 3, seeds: { init: 1, data: 1 }, model: { name: model.name, config: model.config, source: model.source, sourceHash: model.sourceHash, files: model.files, entryFile: model.entryFile }, backend: 'wasm', batch: 4, optimizer: { kind: 'adam', lr: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: iteration }, metrics: { loss: 1 } });
  const keysOf = (f: string) => [...parseSafetensors(readFileSync(f)).tensors.keys()];
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

  test('the latest keeps Adam moments in its own file; the previous (here also the best) loses them once latest moves on', () => {
    const dir = tmp();
    saveCheckpoint(dir, model, store(1), side('epoch-0001', 3), ['latest', 'best']);
    expect(existsSync(join(dir, 'epoch-0001.optimizer.safetensors'))).toBe(true);
    saveCheckpoint(dir, model, store(2), side('epoch-0002', 6), ['latest']);
    expect(readdirSync(dir).filter((f) => f.endsWith('.optimizer.safetensors'))).toEqual(['epoch-0002.optimizer.safetensors']);
    for (const c of ['epoch-0001', 'epoch-0002']) expect(keysOf(join(dir, `${c}.safetensors`)).sort()).toEqual(model.tensors.map((t) => t.name).sort());
    expect(keysOf(join(dir, 'epoch-0002.optimizer.safetensors')).sort()).toEqual(params.flatMap((p) => [`adam.m.${p.name}`, `adam.v.${p.name}`]).sort());
    expect(JSON.parse(readFileSync(join(dir, 'epoch-0001.json'), 'utf8')).optimizerSha256).toBeUndefined();
    // The latest resumes with exactly the moments it was given.
    const back = loadCheckpoint(dir, 'epoch-0002', model, { optimizer: true });
    for (const [k, v] of store(2)) expect(bits(back.tensors.get(k)!).equals(bits(v)), k).toBe(true);
    // The best still serves eval and the rest; resuming from it is an error naming it and saying why.
    expect(loadCheckpoint(dir, 'epoch-0001', model).tensors.size).toBe(model.tensors.length);
    expect(() => loadCheckpoint(dir, 'epoch-0001', model, { optimizer: true })).toThrow(/epoch-0001: holds no optimizer state \(Adam's moments of .*; no .*epoch-0001\.optimizer\.safetensors\), so training cannot resume from it\. Only a run's latest checkpoint keeps them/);
    // The latest's optimizer file torn or missing: an error naming it.
    const opt = join(dir, 'epoch-0002.optimizer.safetensors');
    const good = readFileSync(opt);
    writeFileSync(opt, good.subarray(0, good.length - 4));
    expect(() => loadCheckpoint(dir, 'epoch-0002', model, { optimizer: true })).toThrow(/epoch-0002\.optimizer\.safetensors: its SHA-256 .* differs from the sidecar's/);
    unlinkSync(opt);
    expect(() => loadCheckpoint(dir, 'epoch-0002', model, { optimizer: true })).toThrow(/epoch-0002: cannot read its optimizer state \(no such file: .*epoch-0002\.optimizer\.safetensors/);
  });

  test('a stray optimizer file (a crash after its sidecar was rewritten) goes at the next checkpoint; an older checkpoint with adam.* inside still resumes', () => {
    const dir = tmp();
    saveCheckpoint(dir, model, store(1), side('epoch-0001', 3));
    writeFileSync(join(dir, 'epoch-0000.optimizer.safetensors'), 'stray');
    saveCheckpoint(dir, model, store(2), side('epoch-0002', 6));
    expect(readdirSync(dir).filter((f) => f.endsWith('.optimizer.safetensors'))).toEqual(['epoch-0002.optimizer.safetensors']);
    // Written before the optimizer state had its own file: one file with everything.
    const all = store(3);
    const shapes = new Map<string, readonly number[]>(model.tensors.map((t) => [t.name, t.shape]));
    for (const p of params) for (const w of ['m', 'v']) shapes.set(`adam.${w}.${p.name}`, p.shape);
    const bytes = writeSafetensors(new Map([...all].map(([k, v]) => [k, { shape: [...shapes.get(k)!], data: v }])));
    writeFileSync(join(dir, 'epoch-0003.safetensors'), bytes);
    writeFileSync(join(dir, 'epoch-0003.json'), JSON.stringify({ ...side('epoch-0003', 9), format: 'statcell-checkpoint/1', tensorsSha256: createHash('sha256').update(bytes).digest('hex') }));
    const back = loadCheckpoint(dir, 'epoch-0003', model, { optimizer: true });
    for (const [k, v] of all) expect(bits(back.tensors.get(k)!).equals(bits(v)), k).toBe(true);
  });

  test('statcell train: only the latest epoch keeps the optimizer state, --resume continues from it, and without it --resume is refused naming the file', () => {
    const data = tmp();
    synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
    const out = tmp();
    const args = (epochs: number) => ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--out', out, '--backend', 'wasm', '--batch', '4', '--epochs', String(epochs), '--eval-samples', '1'];
    const cli = (a: string[]) => spawnSync(process.execPath, [CLI, ...a], { env: { ...process.env, CI: '1' }, encoding: 'utf8', timeout: 120_000 });
    const ck = join(out, 'checkpoints');
    const optimizers = () => readdirSync(ck).filter((f) => f.endsWith('.optimizer.safetensors'));
    let r = cli(args(2));
    expect(r.status, r.stderr).toBe(0);
    expect(optimizers()).toEqual(['epoch-0002.optimizer.safetensors']);
    r = cli([...args(3), '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming from .*epoch-0002 at iteration 12/);
    expect(optimizers()).toEqual(['epoch-0003.optimizer.safetensors']);
    for (const e of ['epoch-0001', 'epoch-0002', 'epoch-0003']) expect(keysOf(join(ck, `${e}.safetensors`)).some((k) => k.startsWith('adam.')), e).toBe(false);
    // The moments are twice the parameters: an epoch checkpoint is a third of what it was.
    const size = (f: string) => statSync(join(ck, f)).size;
    expect(size('epoch-0003.optimizer.safetensors')).toBeGreaterThan(1.9 * size('epoch-0003.safetensors') * (params.reduce((a, p) => a + n(p.shape), 0) / model.tensors.reduce((a, t) => a + n(t.shape), 0)));
    unlinkSync(join(ck, 'epoch-0003.optimizer.safetensors'));
    const before = new Map(readdirSync(out, { recursive: true }).map(String).filter((f) => statSync(join(out, f)).isFile() && f !== 'lock').map((f) => [f, readFileSync(join(out, f))]));
    r = cli([...args(4), '--resume']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/epoch-0003: cannot read its optimizer state \(no such file: .*epoch-0003\.optimizer\.safetensors/);
    const after = new Map(readdirSync(out, { recursive: true }).map(String).filter((f) => statSync(join(out, f)).isFile() && f !== 'lock').map((f) => [f, readFileSync(join(out, f))]));
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [f, b] of before) expect(after.get(f)!.equals(b), f).toBe(true);
  }, 300_000);
});

describe('a damaged or missing checkpoint', () => {
  test('is named with what can be done: the run\'s other checkpoints, read with --checkpoint; training only from the latest (the advice was "resume from another checkpoint", which train cannot; a missing one gave a raw ENOENT)', () => {
    const dir = tmp();
    const { model, tensors, side } = written(dir);
    saveCheckpoint(dir, model, tensors, { ...side, name: 'epoch-0002', iteration: 6, epoch: 2 }, ['latest']);
    const file = join(dir, 'epoch-0002.safetensors');
    writeFileSync(file, readFileSync(file).subarray(0, 100));
    expect(() => loadCheckpoint(dir, 'epoch-0002', model)).toThrow(`checkpoint ${file}: its SHA-256`);
    expect(() => loadCheckpoint(dir, 'epoch-0002', model)).toThrow("(a torn or replaced file). Restore it from a copy; eval, embed, generate, report, run, export-web, serve and analyze features read another with --checkpoint <name> (the run's other checkpoints: epoch-0001); training resumes only from the latest");
    expect(() => loadCheckpoint(dir, 'epoch-0099', model)).toThrow(`checkpoint ${join(dir, 'epoch-0099')}: no such checkpoint (the run's other checkpoints: epoch-0001, epoch-0002)`);
  });
});

describe("a model anywhere imports statcell's library by its file name", () => {
  test('import "reference2d.vae" from a folder outside models/ (as docs/language.md shows; SC2003 for every installed user), compiled again from the files a checkpoint keeps; a file of that name beside the model comes first', async () => {
    const { compileModel, compileModelFile } = await import('../../compiler/index.ts');
    const dir = tmp();
    const entry = join(dir, 'small.vae');
    writeFileSync(entry, 'import "reference2d.vae"\nmodel Small = Reference2D(channels = [8, 16], latent = 4, size = [32, 16])\n');
    const m = compileModelFile(entry);
    expect(m.name).toBe('Small');
    expect(Object.keys(m.files).sort()).toEqual(['@statcell/models/reference2d.vae', '@statcell/models/statcell.vae', 'small.vae']);
    const again = compileModel(new Map(Object.entries(m.files)), m.entryFile);
    expect(again.sourceHash).toBe(m.sourceHash);
    expect(again.tensors.map((t) => `${t.name}:${t.shape}`)).toEqual(m.tensors.map((t) => `${t.name}:${t.shape}`));
    // The user's own file of that name wins.
    writeFileSync(join(dir, 'reference2d.vae'), 'model Reference2D(channels: [int] = [2], latent: int = 2, size: [int] = [8, 8]) {}\n');
    expect(Object.keys(compileModelFile(entry).files).sort()).toEqual(['reference2d.vae', 'small.vae']);
    const { loadModule } = await import('../../dsl/load.ts');
    expect(loadModule('nowhere.vae', new Map([['nowhere.vae', 'import "nope.vae"\n']])).diagnostics[0].notes?.join(' ')).toContain("a bare file name is also looked for in statcell's models/ (@statcell/models)");
  });
});

describe('the model files a checkpoint keeps compile again to the same model', () => {
  test('whether the library is imported by a relative path, an absolute one, or one that climbs above / (a run trained with that could not be reopened: SC2003)', async () => {
    const { compileModel, compileModelFile } = await import('../../compiler/index.ts');
    const library = join(import.meta.dirname, '../../models/statcell.vae');
    const dir = tmp();
    const { relative } = await import('node:path');
    for (const path of [relative(dir, library), library, '../'.repeat(12) + library.slice(1)]) {
      const entry = join(dir, 'mine.vae');
      writeFileSync(entry, `import "${path}"\nmodel Mine = StatCell(dims = 2, size = [32, 24], conditioned = false, channels = [4, 8], latent = 4)\n`);
      const m = compileModelFile(entry);
      const again = compileModel(new Map(Object.entries(m.files)), m.entryFile);
      expect(again.tensors.map((t) => `${t.name}:${t.shape}`), path).toEqual(m.tensors.map((t) => `${t.name}:${t.shape}`));
    }
  });
});
