// Dynamic loss scaling (session/loss-scale.ts): its rules; that a power-of-two scale changes no
// bit of an f32 step; that an overflowed f16-storage step is skipped without touching the
// parameters or Adam, and Adam then counts only the steps it took; and that a run's scale is
// checkpointed, so a resumed f16-storage run continues bit for bit.
// (The accuracy of the scaled f16-storage gradients against the float64 fixtures, and the 3D
// model whose unscaled gradients overflow: precision-accuracy.test.ts.)

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import type { CompiledModel } from '../../compiler/model.ts';
import { CLASSES } from '../../data/labels.ts';
import { DynamicLossScale, LossScaleError, MAX_LOSS_SCALE } from '../../session/loss-scale.ts';
import { adamMoment, ModelRuntime } from '../../session/model.ts';
import { readMetrics } from '../../train/metrics.ts';
import { train, TrainError } from '../../train/trainer.ts';
import { backendOf, devices, rng } from '../harness.ts';
import { memorySource, TINY_FILE, TINY_SIZE, TINY_TARGET } from './tiny-model.ts';

const SIZE = TINY_SIZE;
const quiet = () => {};
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('the scale rules (PyTorch GradScaler’s, from 1)', () => {
  test('doubles after growthInterval good steps, halves and skips on overflow, stays in [2^-24, 2^24]', () => {
    const s = new DynamicLossScale(3, 8);
    expect([s.update(true), s.update(true)]).toEqual([true, true]);
    expect(s.state).toEqual({ scale: 8, goodSteps: 2, skipped: 0 });
    s.update(true);
    expect(s.state).toEqual({ scale: 16, goodSteps: 0, skipped: 0 });
    s.update(true);
    expect(s.update(false)).toBe(false);
    // An overflow restarts the count of good steps.
    expect(s.state).toEqual({ scale: 8, goodSteps: 0, skipped: 1 });
    const top = new DynamicLossScale(1, MAX_LOSS_SCALE);
    top.update(true);
    expect(top.state.scale).toBe(MAX_LOSS_SCALE);
    const bottom = new DynamicLossScale(1, 2 ** -23);
    bottom.update(false);
    expect(() => bottom.update(false)).toThrow(LossScaleError);
    expect(() => bottom.update(false)).toThrow(/not finite even at loss scale 2\^-24/);
  });

  test('a state no run reaches is refused, naming the field', () => {
    expect(() => new DynamicLossScale(2000, 3)).toThrow(/scale must be a power of two/);
    expect(() => new DynamicLossScale(0)).toThrow(/growthInterval must be an integer ≥ 1/);
    const s = new DynamicLossScale();
    expect(s.state).toEqual({ scale: 1, goodSteps: 0, skipped: 0 });
    expect(() => s.restore({ scale: 2 ** 30, goodSteps: 0, skipped: 0 }, 'ck.json: /lossScale')).toThrow(/^ck\.json: \/lossScale: scale must be a power of two in \[2\^-24, 2\^24\], got 1073741824$/);
    expect(() => s.restore({ scale: 4, goodSteps: 1.5, skipped: 0 }, 'ck.json: /lossScale')).toThrow(/goodSteps must be an integer/);
  });
});

/** The tiny target model with its noise as an input, so that two runs can feed the same noise at different iterations. */
const tiny = () => compileModelFile(TINY_FILE, { overrides: { size: SIZE, ...TINY_TARGET }, debug: { externalNoise: true, gradients: true } });

function feeds(model: CompiledModel, seed: number, B: number): Record<string, Float32Array> {
  const r = rng(seed);
  const out: Record<string, Float32Array> = {};
  for (const i of model.trainStep(B).inputs) out[i.name] = Float32Array.from({ length: i.shape.reduce((a, b) => a * b, 1) }, () => (i.name === 'cls' ? 0 : r() * 2 - 1));
  out.cls = new Float32Array(B * CLASSES.length);
  for (let k = 0; k < B; k++) out.cls[k * CLASSES.length + ((seed + k) % CLASSES.length)] = 1;
  return out;
}

describe('on the backend', () => {
  test('f32 at loss scale 2^10 gives the bits of scale 1: the gradients times 2^10, the parameters after 3 steps the same', async () => {
    const [d] = await devices();
    const model = tiny();
    const run = async (initial: number) => {
      const rt = new ModelRuntime(backendOf(d), model, { lossScale: { initial, growthInterval: 1e9 } });
      rt.init(4);
      const grads: Float32Array[] = [];
      for (let i = 0; i < 3; i++) {
        await rt.trainStep(feeds(model, 10 + i, 4), 4, i);
        expect(rt.lastStep).toEqual({ lossScale: initial, applied: true });
        if (i === 0) for (const t of model.tensors) if (t.kind === 'param') grads.push(await rt.output('accumulate:1', 4, `grad/${t.name}`));
      }
      const state = await rt.readAll();
      rt.destroy();
      return { grads, state };
    };
    const [one, scaled] = [await run(1), await run(2 ** 10)];
    for (const [i, g] of one.grads.entries()) expect(same(scaled.grads[i], g.map((x) => x * 2 ** 10)), `gradient ${i}`).toBe(true);
    for (const [name, v] of one.state) expect(same(scaled.state.get(name)!, v), name).toBe(true);
    // The gradients are not all zero (the test could not tell otherwise).
    expect(one.grads.some((g) => g.some((x) => x !== 0))).toBe(true);
  });

  test('f16-storage from scale 2^24: overflowed steps skipped, parameters and Adam untouched; the first applied step is the step taken at that scale from the start', async () => {
    const [d] = await devices();
    const model = tiny();
    const B = 4;
    const x = feeds(model, 3, B);
    const params = model.tensors.filter((t) => t.kind === 'param');
    const held = (s: Map<string, Float32Array>) => params.flatMap((t) => [t.name, adamMoment('m', t.name), adamMoment('v', t.name)]).map((n) => s.get(n)!);
    const a = new ModelRuntime(backendOf(d), model, { precision: 'f16-storage', lossScale: { initial: 2 ** 24 } });
    a.init(7);
    const before = held(await a.readAll());
    let i = 0;
    for (; ; i++) {
      await a.trainStep(x, B, i);
      if (a.lastStep!.applied) break;
      const now = await a.readAll();
      held(now).forEach((v, j) => expect(same(v, before[j]), `skipped step ${i}: tensor ${j}`).toBe(true));
      for (const t of params) expect(now.get(`grad.${t.name}`)!.every((g) => g === 0)).toBe(true);
      expect(i).toBeLessThan(30);
    }
    expect(i, 'steps skipped').toBeGreaterThan(0);
    expect(a.lossScale!.state).toEqual({ scale: 2 ** (24 - i), goodSteps: 1, skipped: i });
    // The same step, taken at the scale that fit from the start (Adam's first step either way).
    const b = new ModelRuntime(backendOf(d), model, { precision: 'f16-storage', lossScale: { initial: 2 ** (24 - i) } });
    b.init(7);
    await b.trainStep(x, B, 0);
    expect(b.lastStep!.applied).toBe(true);
    const [sa, sb] = [held(await a.readAll()), held(await b.readAll())];
    sa.forEach((v, j) => expect(same(v, sb[j]), `tensor ${j}`).toBe(true));
    expect(sa.some((v, j) => !same(v, before[j]))).toBe(true);
    a.destroy();
    b.destroy();
  });
});

describe('training', () => {
  test('an f16-storage run logs its scale, checkpoints it, and resumed continues bit for bit', async () => {
    const [d] = await devices();
    const model = compileModelFile(TINY_FILE, { overrides: { size: SIZE, ...TINY_TARGET } });
    const dir = mkdtempSync(join(tmpdir(), 'statcell-loss-scale-'));
    for (const run of ['whole', 'split']) mkdirSync(join(dir, run));
    // From 2^24 the first steps overflow; growth every 2 good steps makes it overflow again later.
    const common = { model, backend: backendOf(d), train: memorySource(12, 1), batch: 4, seed: 5, precision: 'f16-storage' as const, lossScale: { initial: 2 ** 24, growthInterval: 2 }, log: quiet };
    const whole = await train({ ...common, out: join(dir, 'whole'), iterations: 30 });
    const wholeState = await whole.runtime.readAll();
    whole.runtime.destroy();
    const steps = readMetrics(join(dir, 'whole', 'metrics.jsonl')).filter((m) => m.kind === 'step');
    const skipped = steps.filter((m) => m.skipped).map((m) => m.iteration);
    expect(skipped.slice(0, 3)).toEqual([0, 1, 2]);
    expect(skipped.some((s) => s > 15), `skipped steps ${skipped}`).toBe(true);
    // Each step's scale follows from the skips before it by the rules.
    let scale = 2 ** 24, good = 0;
    for (const m of steps) {
      expect(m.loss_scale, `step ${m.iteration}`).toBe(scale);
      if (m.skipped) [scale, good] = [scale / 2, 0];
      else if (++good === 2) [scale, good] = [scale * 2, 0];
    }
    const side = JSON.parse(readFileSync(join(dir, 'whole', 'checkpoints', 'epoch-0010.json'), 'utf8'));
    expect(side.lossScale.skipped).toBe(skipped.length);
    expect(side.optimizer.step).toBe(30 - skipped.length);

    (await train({ ...common, out: join(dir, 'split'), iterations: 13, checkpointEvery: 13 })).runtime.destroy();
    const resumed = await train({ ...common, out: join(dir, 'split'), iterations: 30, resume: true });
    const resumedState = await resumed.runtime.readAll();
    resumed.runtime.destroy();
    for (const [name, v] of wholeState) expect(same(resumedState.get(name)!, v), name).toBe(true);
    expect(readMetrics(join(dir, 'split', 'metrics.jsonl')).filter((m) => m.kind === 'step')).toEqual(steps);

    // A checkpoint whose scale no run reaches is refused, naming the file and the field.
    const ck = join(dir, 'split', 'checkpoints', 'epoch-0010.json');
    writeFileSync(ck, JSON.stringify({ ...JSON.parse(readFileSync(ck, 'utf8')), lossScale: { scale: 3, goodSteps: 0, skipped: 0 } }));
    await expect(train({ ...common, out: join(dir, 'split'), iterations: 40, resume: true })).rejects.toThrow(TrainError);
    await expect(train({ ...common, out: join(dir, 'split'), iterations: 40, resume: true })).rejects.toThrow(/epoch-0010\.json: \/lossScale: scale must be a power of two/);
  }, 120_000);
});
