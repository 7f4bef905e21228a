import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { fromArrayBuffer } from 'geotiff';
import { beforeAll, describe, expect, inject, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { parseSafetensors } from '../../runtime/safetensors.ts';
import { resolveCheckpoint } from '../../session/checkpoint.ts';
import { latestCheckpoint } from './run-files.ts';
import { TINY_FILE } from './tiny-model.ts';

const CLI = join(import.meta.dirname, '../../cli/statcell.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-cli-'));
const env = { ...process.env, CI: '1' }; // plain progress lines, and no silent WebGPU fallback

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts a run and sends `signal` once its progress shows iteration `at`; resolves with the exit code and stderr. */
function runAndSignal(args: string[], at: number, signal: NodeJS.Signals): Promise<{ code: number | null; sig: NodeJS.Signals | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env });
    let err = '';
    let sent = false;
    p.stderr.on('data', (d) => {
      err += d;
      const m = [...err.matchAll(/step (\d+)\//g)].at(-1);
      if (!sent && m && Number(m[1]) >= at) {
        sent = true;
        p.kill(signal);
      }
    });
    p.on('exit', (code, sig) => resolve({ code, sig, err }));
  });
}

/** The latest checkpoint's tensors with its optimizer state. */
const tensorsOf = (dir: string) => {
  const ck = latestCheckpoint(dir);
  return new Map([...parseSafetensors(ck.tensors).tensors, ...parseSafetensors(ck.optimizer).tensors]);
};

let data: string;
beforeAll(() => {
  data = tmp();
  synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
});

const backends = () => (inject('devices') ? inject('devices').split(',') : ['wasm', 'webgpu']);
const trainArgs = (out: string, backend: string) => ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--out', out, '--backend', backend, '--batch', '4', '--iterations', '24', '--checkpoint-every', '3', '--log-every', '1', '--seed', '4', '--eval-samples', '2'];

describe('statcell train', () => {
  test.each(backends())('killed with SIGKILL and resumed = uninterrupted, bit for bit (%s)', async (backend) => {
    const whole = tmp();
    const r = run(trainArgs(whole, backend));
    expect(r.code, r.err).toBe(0);
    const killed = tmp();
    const k = await runAndSignal([...trainArgs(killed, backend), '--step-delay-ms', '150'], 10, 'SIGKILL');
    expect(k.sig).toBe('SIGKILL');
    const stoppedAt = Number(readFileSync(join(killed, 'checkpoints', 'latest'), 'utf8').match(/\d+/)![0]);
    expect(stoppedAt).toBeGreaterThan(0);
    expect(stoppedAt).toBeLessThan(24); // it really was killed mid-way
    const resumed = run([...trainArgs(killed, backend), '--resume']);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toMatch(/resuming from .* at iteration \d+/);
    const a = tensorsOf(whole);
    const b = tensorsOf(killed);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()]).toContain('adam.v.dec.fc.weight');
    for (const [name, t] of a) expect(Buffer.from((b.get(name)!.data as Float32Array).buffer).equals(Buffer.from((t.data as Float32Array).buffer)), name).toBe(true);
  });

  test('SIGTERM writes a checkpoint at the current step and exits 143', async () => {
    const out = tmp();
    const k = await runAndSignal([...trainArgs(out, 'wasm'), '--checkpoint-every', '100', '--step-delay-ms', '150'], 5, 'SIGTERM');
    expect(k.code, k.err).toBe(143);
    const last = Number([...k.err.matchAll(/step (\d+)\//g)].at(-1)![1]);
    const side = JSON.parse(readFileSync(join(out, 'checkpoints', `${resolveCheckpoint(join(out, 'checkpoints'))}.json`), 'utf8'));
    expect(side.iteration).toBe(last);
    expect(k.err).toMatch(/SIGTERM received, checkpoint .* written/);
  });

  test('bad data names the manifest row and file; --skip-bad logs and skips it', () => {
    const bad = tmp();
    synthesize({ out: bad, cells: 24, dims: 2, size: [24, 16], seed: 3 });
    const lines = readFileSync(join(bad, 'manifest.csv'), 'utf8').split('\n');
    const cols = lines[0].split(',');
    const flat = cols.indexOf('save_reg_path_flat');
    // Row 2 (line 3): a truncated PNG; row 3 (line 4): a label outside the Allen classes.
    const f = lines[2].split(',');
    writeFileSync(join(bad, f[flat]), readFileSync(join(bad, f[flat])).subarray(0, 60));
    const g = lines[3].split(',');
    g[cols.indexOf('StructureDisplayName')] = 'Flagellum';
    lines[3] = g.join(',');
    writeFileSync(join(bad, 'manifest.csv'), lines.join('\n'));
    // Each run its own directory (a fresh run into another's is refused).
    const args = () => ['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(bad, 'manifest.csv'), '--out', tmp(), '--backend', 'wasm', '--batch', '4', '--iterations', '30'];
    // A label outside the Allen 24 makes the data's labels their own vocabulary: a target model
    // whose label input is 24 wide does not fit them, and is told where.
    const target = run([...args(), '--set', 'conditioned=true', '--set', 'image_channels=["structure"]']);
    expect(target.code).toBe(1);
    expect(target.err).toMatch(/tiny\.vae:\d+:\d+: error\[SC5002\]: input cls takes 24 labels but the data have \d+ \(.*\)/);
    // The truncated PNG stops the run (when a batch draws it) or is skipped with --skip-bad.
    const r = run(args());
    if (r.code !== 0) expect(r.err).toMatch(new RegExp(`manifest\\.csv:3 \\(CellId \\d+\\): .*${f[flat]}`));
    const s = run([...args(), '--skip-bad']);
    expect(s.code, s.err).toBe(0);
    // The truncated PNG is met when a batch first draws it (train or validation split).
    if (/manifest\.csv:3 /.test(s.err)) expect(s.err).toContain(f[flat]);
  });

  test('usage errors: unknown backend, model file and --set syntax', () => {
    expect(run(['train', '--model', 'models/nope.vae', '--data', 'x.csv', '--out', tmp()]).err).toMatch(/models\/nope\.vae: no such file/);
    expect(run(['train', '--model', TINY_FILE, '--data', join(data, 'manifest.csv'), '--out', tmp(), '--backend', 'cuda']).err).toMatch(/--backend cuda: expected auto, webgpu or wasm/);
    expect(run(['train', '--model', TINY_FILE, '--set', 'beta', '--data', 'x', '--out', 'y']).err).toMatch(/expected name=value/);
    // The last of two was taken unseen.
    expect(run(['train', '--model', TINY_FILE, '--set', 'size=[32,24]', '--set', 'size=[64,40]', '--data', 'x', '--out', 'y']).err).toContain('--set size is given twice ([32,24], then [64,40]); give it once');
  });
});

describe('statcell eval, embed, generate, demo', () => {
  let runDir: string;
  let target: string;
  beforeAll(() => {
    runDir = tmp();
    target = tmp();
    const base = ['--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--backend', 'wasm', '--batch', '4', '--epochs', '2', '--eval-samples', '2'];
    expect(run(['train', '--model', TINY_FILE, '--out', runDir, ...base]).code).toBe(0);
    expect(run(['train', '--model', TINY_FILE, '--set', 'conditioned=true', '--set', 'image_channels=["structure"]', '--out', target, ...base]).code).toBe(0);
  });

  test('--keep N: the newest N epoch checkpoints stay, with the best and the latest; the rest are deleted', () => {
    const dir = tmp();
    const r = run(['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--backend', 'wasm', '--batch', '4', '--epochs', '4', '--eval-samples', '1', '--keep', '1', '--out', dir]);
    expect(r.code, r.err).toBe(0);
    const ck = join(dir, 'checkpoints');
    const best = readFileSync(join(ck, 'best'), 'utf8').trim();
    const names = readdirSync(ck).filter((f) => /^epoch-\d+\.json$/.test(f)).map((f) => f.slice(0, -5)).sort();
    expect(names).toEqual([...new Set([best, 'epoch-0004'])].sort());
    for (const n of names) expect(existsSync(join(ck, `${n}.safetensors`))).toBe(true);
  });

  test('a fresh train into a directory that holds a run is refused, and the run is left as it was', () => {
    const before = Object.fromEntries(readdirSync(runDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => [join(e.parentPath, e.name), readFileSync(join(e.parentPath, e.name)).toString('base64')]));
    const r = run(['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--backend', 'wasm', '--batch', '4', '--epochs', '1', '--out', runDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/already holds a training run \(run\.json, checkpoints\/latest, metrics\.jsonl\); continue it with --resume, or give another --out/);
    const after = Object.fromEntries(readdirSync(runDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => [join(e.parentPath, e.name), readFileSync(join(e.parentPath, e.name)).toString('base64')]));
    expect(after).toEqual(before);
  });

  test('a run killed before its first checkpoint: a fresh train starts afresh in its place, and --resume may take another --data', async () => {
    const dir = tmp();
    // Checkpoints only at the end of the 24 iterations; killed at step 2, the run leaves run.json and metrics.jsonl alone.
    const args = trainArgs(dir, 'wasm').filter((a, i, all) => a !== '--checkpoint-every' && all[i - 1] !== '--checkpoint-every');
    const k = await runAndSignal([...args, '--step-delay-ms', '200'], 2, 'SIGKILL');
    expect(k.sig).toBe('SIGKILL');
    expect(existsSync(join(dir, 'run.json')) && existsSync(join(dir, 'metrics.jsonl'))).toBe(true);
    expect(existsSync(join(dir, 'checkpoints', 'latest'))).toBe(false);
    // Resuming on another manifest (its last cell dropped) is not refused: there is no validation ELBO to keep comparable yet.
    const other = join(tmp(), 'manifest.csv');
    writeFileSync(other, readFileSync(join(data, 'manifest.csv'), 'utf8').trimEnd().split('\n').slice(0, -1).join('\n') + '\n');
    for (const f of readdirSync(data)) if (f !== 'manifest.csv') cpSync(join(data, f), join(other, '..', f), { recursive: true });
    const k2 = await runAndSignal([...args.map((a) => (a === join(data, 'manifest.csv') ? other : a)), '--resume', '--step-delay-ms', '200'], 2, 'SIGKILL');
    expect(k2.err).not.toMatch(/another manifest/);
    expect(k2.sig).toBe('SIGKILL');
    const r = run(args);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/its run stopped before its first checkpoint, so there is nothing to resume; starting afresh \(run\.json and metrics\.jsonl replaced\)/);
    expect(readFileSync(join(dir, 'run.json'), 'utf8')).toContain(join(data, 'manifest.csv'));
    // Its metrics are this run's alone: each step once.
    const steps = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'step').map((m) => m.iteration);
    expect(steps).toEqual([...steps.keys()]);
  });

  test("eval prints the model's own evaluation of a split: its ELBO and the parts it names", () => {
    const r = run(['eval', '--run', runDir, '--split', 'train', '--backend', 'wasm', '--samples', '3']);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.split).toBe('train');
    expect(s.cells).toBeGreaterThan(10);
    expect(s.elbo).toBeCloseTo(-(s.sse + 0.5 * s.kl), 3);
    expect(s.kl).toBeGreaterThan(0);
  });

  test("embed writes CellId, split, label and the encoder's mean, named after its output", () => {
    const out = join(tmp(), 'mu.csv');
    const r = run(['embed', '--run', runDir, '--out', out, '--backend', 'wasm']);
    expect(r.code, r.err).toBe(0);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('CellId,split,label,mean_0,mean_1,mean_2,mean_3');
    const manifestRows = readFileSync(join(data, 'manifest.csv'), 'utf8').trim().split('\n').length - 1;
    expect(rows.length - 1).toBe(manifestRows);
    expect(rows[1].split(',').slice(3).every((v) => Number.isFinite(Number(v)))).toBe(true);
  });

  test('generate writes cells and structures as PNG and OME-TIFF', async () => {
    const out = tmp();
    const r = run(['generate', '--reference', runDir, '--target', target, '--labels', 'Golgi;Mitochondria', '--n', '3', '--format', 'both', '--out', out, '--backend', 'wasm']);
    expect(r.code, r.err).toBe(0);
    const files = readdirSync(out).sort();
    expect(files.filter((f) => f.endsWith('.png')).length).toBe(6);
    expect(files).toContain('000-Golgi.ome.tiff');
    const png = decode(readFileSync(join(out, '000-Golgi.png')));
    expect([png.width, png.height, png.channels]).toEqual([32, 48, 3]);
    const openTiff = (f: string) => {
      const buf = readFileSync(join(out, f));
      return fromArrayBuffer(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    };
    const tiff = await openTiff('001-Mitochondria.ome.tiff');
    expect(await tiff.getImageCount()).toBe(3); // membrane, structure, DNA
    const img = await tiff.getImage(0);
    expect([img.getWidth(), img.getHeight()]).toEqual([16, 24]);
    expect(String(await img.fileDirectory.loadValue('ImageDescription'))).toMatch(/SizeC="3".*Name="Mitochondria"/s);
    // A file's number is its cell: 001-Golgi and 001-Mitochondria share the membrane, 000 and 001 do not.
    const membrane = async (f: string) => Array.from((await (await (await openTiff(f)).getImage(0)).readRasters())[0] as ArrayLike<number>);
    expect(await membrane('001-Golgi.ome.tiff')).toEqual(await membrane('001-Mitochondria.ome.tiff'));
    expect(await membrane('000-Golgi.ome.tiff')).not.toEqual(await membrane('001-Golgi.ome.tiff'));
    const inReal = run(['generate', '--target', target, '--data', join(data, 'manifest.csv'), '--labels', 'Golgi', '--n', '2', '--out', tmp(), '--backend', 'wasm']);
    expect(inReal.code, inReal.err).toBe(0);
    expect(run(['generate', '--target', target, '--labels', 'Golgi', '--out', tmp(), '--backend', 'wasm']).err).toMatch(/whole cells need the reference model/);
    expect(run(['generate', '--reference', runDir, '--target', target, '--labels', 'Flagellum', '--out', tmp(), '--backend', 'wasm']).err).toMatch(/unknown label 'Flagellum'/);
  });

  test("--labels takes a run's label that holds ';' or ',' whole, and still splits the others", () => {
    const renamed = tmp();
    cpSync(target, renamed, { recursive: true });
    const info = JSON.parse(readFileSync(join(renamed, 'run.json'), 'utf8'));
    const golgi = info.labels.indexOf('Golgi');
    expect(golgi).toBeGreaterThanOrEqual(0);
    info.labels[golgi] = 'Golgi; cis, trans';
    writeFileSync(join(renamed, 'run.json'), JSON.stringify(info));
    const out = tmp();
    const r = run(['generate', '--reference', runDir, '--target', renamed, '--labels', 'Golgi; cis, trans,Mitochondria', '--n', '1', '--out', out, '--backend', 'wasm']);
    expect(r.code, r.err).toBe(0);
    // One cell (--n 1) with two structures: both files carry its number.
    expect(readdirSync(out).sort()).toEqual(['000-Golgi_cis_trans.png', '000-Mitochondria.png']);
    // Outside the run's labels the separators split as before, so a piece of it is an unknown label.
    expect(run(['generate', '--reference', runDir, '--target', renamed, '--labels', 'Golgi; cis', '--out', tmp(), '--backend', 'wasm']).err).toMatch(/unknown label 'Golgi'/);
  });

  test('demo (narrow models) writes the report folder', async () => {
    const dir = tmp();
    const r = run(['demo', '--cells', '30', '--size', '24,16', '--channels', '4,8', '--latent', '4', '--batch', '4', '--epochs', '1', '--data', join(dir, 'ds'), '--runs', join(dir, 'runs'), '--report', join(dir, 'report'), '--backend', 'wasm']);
    expect(r.code, r.err).toBe(0);
    const files = readdirSync(join(dir, 'report'));
    for (const f of ['index.html', 'loss-reference.png', 'loss-target.png', 'recon-reference.png', 'recon-target.png', 'generated.png', 'structures.png']) expect(files).toContain(f);
    const html = readFileSync(join(dir, 'report', 'index.html'), 'utf8');
    for (const f of files.filter((x) => x.endsWith('.png'))) expect(html).toContain(`src="${f}"`);
    expect(html).toMatch(/Label fidelity of the target model: \d+ of \d+ labels within 0\.15/);
    // Control - Blank has no structure signal: not measured, not counted (its row read NaN).
    expect(html).not.toContain('NaN');
    expect(html).toMatch(/<td>Control - Blank<\/td><td>n\/a \(\d+\)<\/td><td>[^<]*<\/td><td>not measured: no structure signal in its real cells<\/td>/);
    expect(html).toContain('99.5th percentile'); // the contrast stretch is stated
    // The paper's analyses, each a section (in so small a data set some can only say why they did not run).
    for (const title of ['Per-dimension KL of', 'Latent walk of', 'coupling', 'Drug test']) expect(html).toContain(title);
    expect(existsSync(join(dir, 'report', 'analysis', 'kld-target', 'kld.png'))).toBe(true);
    expect(existsSync(join(dir, 'ds', 'manifest.csv'))).toBe(true);
    // The cells synthesized are counted as written (it said "about 30" of a manifest of hundreds).
    const rows = readFileSync(join(dir, 'ds', 'manifest.csv'), 'utf8').trim().split('\n').length - 1;
    expect(r.err).toMatch(new RegExp(`${rows} cells: \\d+ for training, validation and test, \\d+ drug-treated \\(evaluation only\\)`));
    // Over these runs with other settings: named as such, not as a --resume never given.
    const other = run(['demo', '--cells', '30', '--size', '24,16', '--channels', '4,8', '--latent', '6', '--batch', '4', '--epochs', '1', '--data', join(dir, 'ds'), '--runs', join(dir, 'runs'), '--report', join(dir, 'report'), '--backend', 'wasm']);
    expect(other.code).toBe(1);
    expect(other.err).toContain(`${join(dir, 'runs', 'reference')} holds a demo run trained with {"size":[24,16],"channels":[4,8],"latent":4}, and this demo asks for {"size":[24,16],"channels":[4,8],"latent":6}: give --runs <another folder>, or remove ${join(dir, 'runs')}`);
    // Runs made by an older statcell, whose models/ differed, are continued with the model their checkpoint keeps
    // (the demo passed models/…vae, and the checkpoint was refused as of another source).
    const { compileModel } = await import('../../compiler/index.ts');
    const ck = join(dir, 'runs', 'reference', 'checkpoints');
    const side = join(ck, `${readFileSync(join(ck, 'latest'), 'utf8').trim()}.json`);
    const sidecar = JSON.parse(readFileSync(side, 'utf8'));
    sidecar.model.files[sidecar.model.entryFile] += '\n# as an older statcell wrote it\n';
    sidecar.model.sourceHash = compileModel(new Map(Object.entries(sidecar.model.files)), sidecar.model.entryFile).sourceHash;
    writeFileSync(side, JSON.stringify(sidecar));
    const again = run(['demo', '--cells', '30', '--size', '24,16', '--channels', '4,8', '--latent', '4', '--batch', '4', '--epochs', '1', '--data', join(dir, 'ds'), '--runs', join(dir, 'runs'), '--report', join(dir, 'report'), '--backend', 'wasm']);
    expect(again.code, again.err).toBe(0);
  });
});
