// --profile: per-kernel times of a training step. On WebGPU they are the GPU's own timestamps
// (SwiftShader here offers 'timestamp-query'), on Wasm the host clock around each launch. The
// checks do not trust the profiler's arithmetic: every launch of the program is counted once per
// step, conv kernels take measurable time, and the kernels' sum lies between a quarter of the
// step's wall time and the wall time itself (+10%: the kernels run one after another inside it).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, vi } from 'vitest';
import { trainCommand } from '../../cli/train.ts';
import { synthesize } from '../../data/synth.ts';
import { compileModelFile } from '../../compiler/index.ts';
import { backendReason, featureLine } from '../../runtime/device.ts';
import { formatProfile, launchLabels, Profiler, profilerOf, profileUnavailable } from '../../runtime/profile.ts';
import type { Backend } from '../../runtime/backend.ts';
import { OPTIONAL_FEATURES, WebGpuBackend } from '../../runtime/webgpu.ts';
import { Executable, type Program } from '../../runtime/program.ts';
import { ModelRuntime } from '../../session/model.ts';
import { profileTrainStep } from '../../session/profile.ts';
import { backendOf, forEachDevice, onDevice, rng } from '../harness.ts';

const model = (size = 16) => compileModelFile('models/reference2d.vae', { overrides: { size: [size, size], channels: [2, 4, 8], latent: 4 } });

forEachDevice((d) => {
  test('the profile of a training step: every launch timed, conv kernels > 0, their sum within [0.25, 1.1] × the wall time', async () => {
    const backend = backendOf(d);
    // Wasm at 32×32, so that its kernels outweigh the step's host work (feeding, attribute updates, metric reads); SwiftShader at 16×16.
    const size = d.name === 'wasm' ? 32 : 16;
    const m = model(size);
    const B = 2;
    const rand = rng(7);
    const inputs = Object.fromEntries(m.trainStep(B).inputs.map(({ name, shape }) => [name, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand)]));
    const rt = new ModelRuntime(backend, m);
    rt.init(1);
    try {
      const p = await profileTrainStep(rt, inputs, B, { steps: 1 });
      expect(p.clock).toBe(d.name === 'webgpu' ? 'gpu-timestamps' : 'host');
      expect(profilerOf(backend)).toBeUndefined();
      // Every launch of the step's program, once per step.
      const program = m.program('train', B).program;
      expect(p.rows.reduce((a, r) => a + r.launches, 0)).toBe(program.launches.length);
      const convs = p.rows.filter((r) => r.op === 'conv');
      expect(convs.length).toBeGreaterThan(0);
      for (const r of convs) expect(r.ms, `${r.op} ${r.layer} ${r.shapes}`).toBeGreaterThan(0);
      expect(p.kernelMs).toBeGreaterThan(0.25 * p.wallMs);
      expect(p.kernelMs).toBeLessThan(1.1 * p.wallMs);
      // The encoder's first conv (2 input channels, 4×4 kernel) is named after its layer.
      expect(p.rows.some((r) => r.op === 'conv' && r.layer.startsWith('enc.') && r.shapes.startsWith(`[2,2,${size},${size}] [2,2,4,4]`))).toBe(true);
      const table = formatProfile(p, 5);
      expect(table.split('\n')).toHaveLength(1 + 1 + 5 + 1);
      expect(table).toMatch(d.name === 'webgpu' ? /GPU timestamps/ : /host clock/);
    } finally {
      rt.destroy();
    }
  });
});

onDevice('wasm', (d) => {
  test('budgetMs: as many profiled steps as fit it by the dropped step\'s time, 1 to 5, and every launch counted once per step', async () => {
    const m = model(16);
    const B = 2;
    const rand = rng(3);
    const inputs = Object.fromEntries(m.trainStep(B).inputs.map(({ name, shape }) => [name, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand)]));
    const rt = new ModelRuntime(backendOf(d), m);
    rt.init(1);
    try {
      const launches = m.program('train', B).program.launches.length;
      for (const [budgetMs, steps] of [[0, 1], [1e9, 5]] as const) {
        const p = await profileTrainStep(rt, inputs, B, { budgetMs });
        expect(p.steps).toBe(steps);
        expect(p.rows.reduce((a, r) => a + r.launches, 0)).toBe(launches);
      }
    } finally {
      rt.destroy();
    }
  });
});

onDevice('webgpu', (d) => {
  test('a program of more launches than one query set holds (4096 timestamps) is timed launch by launch', async () => {
    const backend = backendOf(d);
    const n = 2100;
    const program: Program = {
      buffers: [{ elements: 64, kind: 'input', name: 'x' }, { elements: 64, kind: 'temp' }],
      launches: Array.from({ length: n }, () => ({ op: 'copy', attrs: {}, inShapes: [[64]], inputs: [0], outputs: [1] })),
      inputs: new Map([['x', 0]]),
      outputs: new Map([['y', { buffer: 1, shape: [64] }]]),
      lifetimes: [],
    };
    const exe = new Executable(backend, program);
    try {
      exe.write('x', Float32Array.from({ length: 64 }, (_, i) => i));
      const profiler = Profiler.attach(backend);
      exe.run();
      const samples = await profiler.stop();
      expect(samples).toHaveLength(n);
      expect(samples.every((s) => s.label.op === 'copy' && s.ms >= 0 && s.ms < 1000)).toBe(true);
      expect(samples.reduce((a, s) => a + s.ms, 0)).toBeGreaterThan(0);
      expect([...(await exe.read('y'))]).toEqual(Array.from({ length: 64 }, (_, i) => i));
    } finally {
      exe.destroy();
    }
  });

  test("optional features are read from the device, and shown on the backend line", () => {
    const b = backendOf(d) as WebGpuBackend;
    expect(b.features).toEqual(OPTIONAL_FEATURES.filter((f) => b.device.features.has(f)));
    expect(b.timestamps).toBe(b.device.features.has('timestamp-query'));
    const line = backendReason('webgpu', b);
    for (const f of OPTIONAL_FEATURES) expect(line).toContain(b.features.includes(f) ? f : `no ${f}`);
  });
});

test('an adapter without timestamp-query: --profile says why, and nothing is attached', () => {
  const fake = { kind: 'webgpu', description: 'Some GPU', timestamps: false, executeTimed: () => Promise.resolve([]) } as unknown as Backend;
  expect(profileUnavailable(fake)).toMatch(/Some GPU.*does not offer 'timestamp-query'.*--backend wasm/);
  expect(() => Profiler.attach(fake)).toThrow(/does not offer 'timestamp-query'/);
  expect(profilerOf(fake)).toBeUndefined();
  expect(featureLine(['timestamp-query'])).toBe('timestamp-query; no shader-f16, no subgroups');
  expect(featureLine([...OPTIONAL_FEATURES])).toBe('shader-f16, subgroups, timestamp-query');
});

test('statcell train --profile prints the table before training, and the run is trained as without it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'statcell-profile-'));
  synthesize({ out: join(dir, 'data'), cells: 24, dims: 2, size: [24, 16], seed: 3 });
  const lines: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (lines.push(String(s)), true));
  try {
    const set = { size: [24, 16], channels: [2, 4, 8], latent: 4 };
    const common = { model: 'models/reference2d.vae', set, data: join(dir, 'data', 'manifest.csv'), backend: 'wasm', batch: 2, iterations: 2, seed: 1, evalSamples: 1, logEvery: 100 };
    const r = await trainCommand({ ...common, out: join(dir, 'run'), profile: true });
    expect(r.iteration).toBe(2);
    const profiled = await r.runtime.readAll();
    r.runtime.destroy();
    // The profile runs in a runtime of its own: the run's weights are those of a run without it, bit for bit.
    const plain = await trainCommand({ ...common, out: join(dir, 'plain') });
    const weights = await plain.runtime.readAll();
    plain.runtime.destroy();
    expect([...weights.keys()]).toEqual([...profiled.keys()]);
    for (const [name, w] of weights) expect(Buffer.from(profiled.get(name)!.buffer).equals(Buffer.from(w.buffer)), name).toBe(true);
    const text = lines.join('');
    expect(text).toMatch(/profile of (one training step|[2-5] training steps \(per step\)) on wasm .*host clock/); // the mean of the steps that fit 3 s
    expect(text).toMatch(/^op +layer +input shapes +launches +ms\/step +share$/m);
    expect(text.indexOf('profile of')).toBeLessThan(text.indexOf('training cells'));
  } finally {
    spy.mockRestore();
  }
});

test("launches are named after their layer: each conv weight's gradient once, every conv and Adam step", () => {
  const m = model();
  const labels = launchLabels(m.program('train', 2).program);
  // The model's conv weights (4-D parameters) by layer, from the model's tensors, not from the program.
  const convLayers = m.tensors.filter((t) => t.kind === 'param' && t.name.endsWith('.weight') && t.shape.length === 4).map((t) => t.name.slice(0, -'.weight'.length));
  expect(convLayers.length).toBeGreaterThan(6);
  expect(labels.filter((l) => l.op === 'conv_grad_weight').map((l) => l.layer).sort()).toEqual([...convLayers].sort());
  for (const l of labels.filter((x) => ['conv', 'conv_transpose', 'adam', 'batchnorm_grad'].includes(x.op))) expect(l.layer, `${l.op} ${l.shapes}`).not.toBe('');
  // Adam's launch for a parameter is named after that parameter's layer.
  const adams = labels.filter((l) => l.op === 'adam').map((l) => l.layer);
  const params = m.tensors.filter((t) => t.kind === 'param').map((t) => t.name.replace(/\.[^.]+$/, ''));
  expect(adams.sort()).toEqual(params.sort());
});
