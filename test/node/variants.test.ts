// Two user variants written from docs/language.md alone (test/models/variants/): each with its
// own input, entry and output names, depth, latent size and objective. Through the ordinary CLI
// they train, evaluate with their own `evaluate`, embed, generate and appear in a report — also
// after their run directories are copied elsewhere and opened from another working directory.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromArrayBuffer } from 'geotiff';
import { beforeAll, describe, expect, test } from 'vitest';
import { synthesize } from '../../data/synth.ts';
import { parseSafetensors, writeSafetensors } from '../../runtime/safetensors.ts';

const CLI = join(import.meta.dirname, '../../cli/statcell.js');
const MODELS = join(import.meta.dirname, '../models/variants');
const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-variant-'));

function run(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, CI: '1' }, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let manifest: string;
let shape: string;
let structure: string;
beforeAll(() => {
  const dir = tmp();
  manifest = synthesize({ out: join(dir, 'data'), cells: 48, dims: 2, size: [24, 16], seed: 5 });
  shape = join(dir, 'shape');
  structure = join(dir, 'structure');
  const common = ['--data', manifest, '--backend', 'wasm', '--batch', '4', '--epochs', '2', '--eval-samples', '2'];
  for (const [model, out] of [['shape3.vae', shape], ['structure2.vae', structure]]) {
    const r = run(['train', '--model', join(MODELS, model), '--out', out, ...common]);
    expect(r.code, r.err).toBe(0);
  }
}, 600_000);

describe('user variants through the CLI', () => {
  test("train records the model's own metrics and evaluation", () => {
    const lines = readFileSync(join(shape, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(Object.keys(lines.find((l) => l.kind === 'step'))).toEqual(['kind', 'iteration', 'epoch', 'objective']);
    const v = lines.filter((l) => l.kind === 'validate');
    expect(v.length).toBe(2);
    for (const r of v) expect(r.elbo).toBe(r.score); // the first evaluate value is the ELBO
    expect(existsSync(join(shape, 'checkpoints', 'best'))).toBe(true);
  });

  test('eval gives the ELBO from the model’s own objective, per part', () => {
    const s = run(['eval', '--run', shape, '--split', 'test', '--backend', 'wasm', '--samples', '3']);
    expect(s.code, s.err).toBe(0);
    const e = JSON.parse(s.out);
    expect(e.score).toBeCloseTo(-(e.squared + e.divergence), 3); // β = 1: its objective has no weight
    expect(e.divergence).toBeGreaterThan(0);
    const t = run(['eval', '--run', structure, '--split', 'test', '--backend', 'wasm', '--samples', '3']);
    expect(t.code, t.err).toBe(0);
    const f = JSON.parse(t.out);
    // Trained past its 20-step warm-up, the KL weight is 0.25.
    expect(f.iteration).toBeGreaterThan(20);
    expect(f.elbo).toBeCloseTo(-(f.err + 0.25 * f.kl), 3);
  });

  test('embed writes the encoder’s mean under its own name, and runs from a copied run directory elsewhere', () => {
    const copy = join(tmp(), 'moved-shape');
    cpSync(shape, copy, { recursive: true });
    const cwd = tmp(); // no models/ here, nothing relative to the original run
    const out = join(cwd, 'centre.csv');
    const r = run(['embed', '--run', copy, '--out', out, '--backend', 'wasm'], cwd);
    expect(r.code, r.err).toBe(0);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    expect(rows[0]).toBe(['CellId', 'split', 'label', ...Array.from({ length: 6 }, (_, d) => `centre_${d}`)].join(','));
    expect(rows[1].split(',').slice(3).every((v) => Number.isFinite(Number(v)))).toBe(true);
    const e = run(['eval', '--run', copy, '--backend', 'wasm', '--samples', '2'], cwd);
    expect(e.code, e.err).toBe(0);
    expect(JSON.parse(e.out).score).toBeLessThan(0);
    // And it trains on from there: --resume without --model takes the model its checkpoint keeps.
    const t = run(['train', '--resume', '--out', copy, '--data', manifest, '--backend', 'wasm', '--batch', '4', '--epochs', '3', '--eval-samples', '2'], cwd);
    expect(t.code, t.err).toBe(0);
    expect(t.err).toMatch(/resuming from .* at iteration \d+/);
  });

  test('generate composes the two models by channel names; the report shows both', async () => {
    const cwd = tmp();
    const copyS = join(cwd, 's');
    const copyT = join(cwd, 't');
    cpSync(shape, copyS, { recursive: true });
    cpSync(structure, copyT, { recursive: true });
    const out = join(cwd, 'gen');
    const g = run(['generate', '--reference', copyS, '--target', copyT, '--labels', 'Golgi;Mitochondria', '--n', '2', '--format', 'both', '--out', out, '--backend', 'wasm'], cwd);
    expect(g.code, g.err).toBe(0);
    expect(readdirSync(out).filter((f) => f.endsWith('.png')).length).toBe(4);
    const buf = readFileSync(join(out, '001-Mitochondria.ome.tiff'));
    const tiff = await fromArrayBuffer(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const img = await tiff.getImage(0);
    expect(String(await img.fileDirectory.loadValue('ImageDescription'))).toMatch(/SizeC="3".*Name="membrane".*Name="Mitochondria".*Name="DNA"/s);
    const rep = run(['report', '--reference', copyS, '--target', copyT, '--data', manifest, '--labels', 'Golgi;Mitochondria', '--out', join(cwd, 'report'), '--backend', 'wasm'], cwd);
    expect(rep.code, rep.err).toBe(0);
    const html = readFileSync(join(cwd, 'report', 'index.html'), 'utf8');
    for (const f of ['loss-reference.png', 'loss-target.png', 'recon-reference.png', 'recon-target.png', 'generated.png', 'structures.png']) expect(html).toContain(`src="${f}"`);
    expect(html).toContain('Shape3');
    expect(html).toContain('Structure2');
  });

  test("statcell run --run calls an entry of the run's model by name and writes its named outputs", () => {
    const dir = tmp();
    const cell = Float64Array.from({ length: 2 * 2 * 24 * 16 }, (_, i) => (i % 7) / 7);
    writeFileSync(join(dir, 'in.safetensors'), writeSafetensors({ cell: { shape: [2, 2, 24, 16], data: cell } }));
    const r = run(['run', '--run', shape, '--entry', 'embed', '--input', join(dir, 'in.safetensors'), '--out', join(dir, 'out.safetensors'), '--backend', 'wasm'], dir);
    expect(r.code, r.err).toBe(0);
    const out = parseSafetensors(readFileSync(join(dir, 'out.safetensors')));
    expect([...out.tensors.keys()].sort()).toEqual(['centre', 'spread']);
    expect(out.tensors.get('centre')!.shape).toEqual([2, 6]);
    // The run's overrides apply: another code size is refused by its checkpoint.
    const other = run(['run', '--run', shape, '--set', 'code_size=7', '--entry', 'embed', '--input', join(dir, 'in.safetensors'), '--out', join(dir, 'o2.safetensors'), '--backend', 'wasm'], dir);
    expect(other.code).toBe(1);
  });

  test('what a model does not declare is a located diagnostic', () => {
    const dir = tmp();
    // A variant without a generate entry and without `evaluate`.
    const file = join(dir, 'nogen.vae');
    writeFileSync(file, readFileSync(join(MODELS, 'shape3.vae'), 'utf8').replace(/import "[^"]*"/, `import "${join(import.meta.dirname, '../../models/statcell.vae')}"`).replace(/  entry sample\(\)[^}]*}\n/, '').replace(/    evaluate .*\n/, ''));
    const out = join(dir, 'run');
    const t = run(['train', '--model', file, '--data', manifest, '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', '2'], dir);
    expect(t.code, t.err).toBe(0);
    expect(t.err).toMatch(/no `evaluate`, so no validation ELBO/);
    const g = run(['generate', '--reference', out, '--out', join(dir, 'g'), '--backend', 'wasm'], dir);
    expect(g.code).toBe(1);
    expect(g.err).toMatch(/nogen\.vae:\d+:\d+: error\[SC5001\]: model Shape3 has no generate entry/);
    const e = run(['eval', '--run', out, '--backend', 'wasm'], dir);
    expect(e.err).toMatch(/nogen\.vae:\d+:\d+: error\[SC5001\]: model Shape3 does not say how a cell is scored/);
    // Models in roles they cannot take: a shape model as the target, a conditioned one as the reference.
    const asTarget = run(['generate', '--reference', shape, '--target', shape, '--labels', 'Golgi', '--out', join(dir, 'g2'), '--backend', 'wasm'], dir);
    expect(asTarget.err).toMatch(/shape3\.vae:\d+:\d+: error\[SC5001\]: model Shape3 takes no label/);
    const asReference = run(['generate', '--reference', structure, '--out', join(dir, 'g3'), '--backend', 'wasm'], dir);
    expect(asReference.err).toMatch(/structure2\.vae:\d+:\d+: error\[SC5001\]: model Structure2 is conditioned on outline, which/);
    // Data of another size than the model's image input.
    const big = synthesize({ out: join(dir, 'big'), cells: 8, dims: 2, size: [32, 16], seed: 1 });
    const b = run(['embed', '--run', shape, '--data', big, '--out', join(dir, 'x.csv'), '--backend', 'wasm'], dir);
    expect(b.code).toBe(1);
    expect(b.err).toMatch(/manifest\.csv:\d+ \(CellId \d+\): .*the image is 32×16 but the model takes 24×16/);
    // … which --fit crop-pad centre-crops, as the paper does.
    const c = run(['embed', '--run', shape, '--data', big, '--fit', 'crop-pad', '--out', join(dir, 'x.csv'), '--backend', 'wasm'], dir);
    expect(c.code, c.err).toBe(0);
  });
});
