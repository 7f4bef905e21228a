// The compiler in a browser page: the model files fetched from the test server and compiled by the
// pure core (no node: modules), the source hash independent of where the files lie, and one
// training step of a narrow Reference2D on Wasm and on WebGPU, the two backends agreeing.

import { beforeAll, describe, expect, test } from 'vitest';
import { compileModel, parameterCount } from '../../compiler/compile.ts';
import { ModelRuntime } from '../../session/model.ts';
import { backendOf, devices, rng } from '../harness.ts';

/** A file of the repository, as the test server (Vite, rooted at the repository) serves it. */
async function text(path: string): Promise<string> {
  const url = new URL(path, location.origin);
  const res = await fetch(url);
  expect(res.status, `GET ${url}`).toBe(200);
  return res.text();
}

/** Reference2D's trainable parameters by the layers of models/statcell.vae (unconditioned). */
function referenceParams(nIn: number, channels: number[], latent: number, size: number[]): number {
  const n = channels.length;
  const cells = size.reduce((a, s) => (a * s) / 2 ** n, 1); // the smallest grid, size / 2^n
  const conv = (cin: number, cout: number, k: number) => cin * cout * k ** size.length + cout;
  // Down and Up alike: bypass 1×1, conv1 (k 4, C → C), bn1, conv2 (k 3, C → cout), bn2.
  const block = (c: number, cout: number) => conv(c, cout, 1) + conv(c, c, 4) + 2 * c + conv(c, cout, 3) + 2 * cout;
  const top = channels[n - 1];
  let p = 0;
  channels.forEach((cout, i) => (p += block(i === 0 ? nIn : channels[i - 1], cout)));
  p += 2 * (top * cells * latent + latent); // fc_mu, fc_logvar
  p += latent * top * cells + top * cells + 2 * top; // dec.fc, bn0
  for (let i = 0, c = top; i < n; i++) {
    const cout = i === n - 1 ? nIn : channels[n - 2 - i];
    p += block(c, cout);
    c = cout;
  }
  return p;
}

const NARROW = { channels: [4, 8], latent: 8, size: [16, 8] };

describe('the compiler in the browser', () => {
  let files: Record<string, string>;
  beforeAll(async () => {
    files = { 'reference2d.vae': await text('/models/reference2d.vae'), 'statcell.vae': await text('/models/statcell.vae') };
  });

  test('runs in a browser page', () => {
    expect(typeof window).toBe('object');
    expect(typeof document).toBe('object');
  });

  test('Reference2D compiles to the paper\'s 22,279,054 parameters', () => {
    const m = compileModel(files, 'reference2d.vae');
    expect(m.name).toBe('Reference2D');
    expect(parameterCount(m)).toBe(22_279_054);
    expect(referenceParams(2, [32, 64, 128, 256, 512], 512, [160, 96])).toBe(22_279_054);
  });

  test('a narrow variant has the parameters its layers give', () => {
    const m = compileModel(files, 'reference2d.vae', { overrides: NARROW });
    expect(m.config.channels).toEqual(NARROW.channels);
    expect(parameterCount(m)).toBe(referenceParams(2, NARROW.channels, NARROW.latent, NARROW.size));
  });

  test('the source and its hash name files relative to the entry: the same from any folder', async () => {
    const here = compileModel(files, 'reference2d.vae');
    expect(here.entryFile).toBe('reference2d.vae');
    expect(here.files).toEqual(files);
    expect(Object.keys(here.files)).toEqual(['reference2d.vae', 'statcell.vae']); // the entry, then its imports
    expect(here.source).toBe(`# file: reference2d.vae\n${files['reference2d.vae']}\n# file: statcell.vae\n${files['statcell.vae']}`);
    // SHA-256 by the browser's own implementation.
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(here.source)));
    expect(here.sourceHash).toBe(Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''));

    const under = (dir: string) => new Map(Object.entries(files).map(([f, t]) => [`${dir}/${f}`, t]));
    for (const [where, entry] of [['models', 'models/reference2d.vae'], ['/srv/a/b/models', '/srv/a/b/models/reference2d.vae'], ['x/../y', './y/reference2d.vae']]) {
      const m = compileModel(under(where), entry);
      expect(m.sourceHash, entry).toBe(here.sourceHash);
      expect(m.source, entry).toBe(here.source);
      expect(m.files, entry).toEqual(here.files);
      expect(m.entryFile, entry).toBe('reference2d.vae');
    }
    // A reader works as a map does, and a model compiles again from its own files (a checkpoint).
    const again = compileModel((f) => under('deep/er').get(`deep/er/${f}`) ?? (() => { throw new Error(`no ${f}`); })(), 'reference2d.vae', { overrides: NARROW });
    const narrow = compileModel(again.files, again.entryFile, { overrides: again.config });
    expect(narrow.sourceHash).toBe(here.sourceHash);
    expect(parameterCount(narrow)).toBe(parameterCount(again));
    // A file imported from a sibling folder keeps its `../` name.
    const split = compileModel({ 'm/r.vae': files['reference2d.vae'].replace('import "statcell.vae"', 'import "../lib/statcell.vae"'), 'lib/statcell.vae': files['statcell.vae'] }, 'm/r.vae');
    expect(Object.keys(split.files)).toEqual(['r.vae', '../lib/statcell.vae']);
    expect(compileModel(split.files, split.entryFile).sourceHash).toBe(split.sourceHash);
  });

  // The first WebGPU step compiles every pipeline: 30-50 s on SwiftShader.
  test('one training step of the narrow variant: finite metrics, Wasm and WebGPU agree', { timeout: 300_000 }, async (ctx) => {
    const model = compileModel(files, 'reference2d.vae', { overrides: NARROW });
    const batch = 4;
    const step = model.trainStep(batch);
    expect(step.metrics).toContain('loss');
    const [input] = step.inputs;
    expect(input.name).toBe('x');
    expect(input.shape).toEqual([batch, 2, ...NARROW.size]);
    const r = rng(7);
    const x = Float32Array.from({ length: input.shape.reduce((a, b) => a * b, 1) }, () => r());

    const metrics: Record<string, Record<string, number>> = {};
    for (const d of await devices()) {
      const rt = new ModelRuntime(backendOf(d), model);
      try {
        rt.init(3);
        metrics[d.name] = await rt.trainStep({ x }, batch, 0);
        // A second step runs on the updated parameters and Adam moments.
        metrics[`${d.name} step 2`] = await rt.trainStep({ x }, batch, 1);
      } finally {
        rt.destroy();
      }
    }
    for (const [name, m] of Object.entries(metrics)) {
      expect(Object.keys(m).sort(), name).toEqual([...step.metrics].sort());
      for (const [k, v] of Object.entries(m)) expect(Number.isFinite(v), `${name} ${k} = ${v}`).toBe(true);
    }
    expect(Object.keys(metrics).length, 'no backend ran').toBeGreaterThan(0);
    // devices() fails in CI without WebGPU; elsewhere it leaves it out, or STATCELL_TEST_DEVICES does.
    if (!metrics.wasm || !metrics.webgpu) ctx.skip(`the comparison needs both backends (ran: ${Object.keys(metrics).join(', ')})`);
    for (const which of ['', ' step 2'])
      for (const k of step.metrics) {
        const a = metrics[`wasm${which}`][k];
        const b = metrics[`webgpu${which}`][k];
        expect(Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-6), `${k}${which}: wasm ${a}, webgpu ${b}`).toBeLessThan(1e-4);
      }
  });
});
