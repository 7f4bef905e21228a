// `statcell run`: one entry point of a compiled model on tensors from safetensors files, checked
// against the PyTorch fixture's evaluation-mode encoder output.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { asFloat64, parseSafetensors, writeSafetensors } from '../../runtime/safetensors.ts';
import { loadSafetensorsFixture } from '../fixtures.ts';
import { relErr } from '../harness.ts';

test('statcell run encode reproduces the fixture\'s evaluation μ and log-variance', async () => {
  const st = await loadSafetensorsFixture('model_reference2d_small');
  const dir = mkdtempSync(join(tmpdir(), 'statcell-run-'));
  // The post-Adam state under checkpoint names: exactly what eval/ was computed from.
  const weights: Record<string, { shape: number[]; data: Float64Array }> = {};
  for (const [name, t] of st.tensors) {
    const m = /^(after_adam|state_after_train)\/(.*)$/.exec(name);
    if (m) weights[m[2]] = { shape: [...t.shape], data: asFloat64(t, name) };
  }
  writeFileSync(join(dir, 'w.safetensors'), writeSafetensors(weights));
  const x = st.tensors.get('input/x')!;
  writeFileSync(join(dir, 'in.safetensors'), writeSafetensors({ x: { shape: [...x.shape], data: asFloat64(x) } }));
  const args = ['cli/statcell.js', 'run', 'models/reference2d.vae', '--set', 'channels=[4,8,16,32,64]', '--set', 'latent=16', '--set', 'beta=0.3', '--weights', join(dir, 'w.safetensors'), '--entry', 'encode', '--input', join(dir, 'in.safetensors'), '--out', join(dir, 'out.safetensors'), '--backend', 'wasm'];
  execFileSync('node', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = parseSafetensors(readFileSync(join(dir, 'out.safetensors')));
  expect(out.tensors.get('mu')!.shape).toEqual([2, 16]);
  expect(relErr(asFloat64(out.tensors.get('mu')!), asFloat64(st.tensors.get('eval/mu')!))).toBeLessThan(1e-4);
  expect(relErr(asFloat64(out.tensors.get('logvar')!), asFloat64(st.tensors.get('eval/logvar')!))).toBeLessThan(1e-4);
}, 120_000);

test('statcell run names a missing weight with its shape', () => {
  const dir = mkdtempSync(join(tmpdir(), 'statcell-run-'));
  writeFileSync(join(dir, 'w.safetensors'), writeSafetensors({ 'enc.fc_mu.weight': { shape: [1], data: new Float64Array(1) } }));
  writeFileSync(join(dir, 'in.safetensors'), writeSafetensors({ y: { shape: [1], data: new Float64Array(1) } }));
  const run = () => execFileSync('node', ['cli/statcell.js', 'run', 'models/reference2d.vae', '--weights', join(dir, 'w.safetensors'), '--entry', 'encode', '--input', join(dir, 'in.safetensors'), '--out', join(dir, 'o.safetensors'), '--backend', 'wasm'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  expect(run).toThrow(/w\.safetensors: no tensor 'enc\.down0\.bypass\.weight' \(shape \[32, 2, 1, 1\]\)/);
});
