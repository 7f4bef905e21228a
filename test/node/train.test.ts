import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { evaluate } from '../../compiler/evaluate.ts';
import { oracle, type OracleTensor } from '../../kernels/oracle.ts';
import { ModelRuntime } from '../../session/model.ts';
import { CheckpointError, loadCheckpoint, resolveCheckpoint, saveCheckpoint } from '../../session/checkpoint.ts';
import { readMetrics } from '../../train/metrics.ts';
import { train, TrainError } from '../../train/trainer.ts';
import { evaluateCells } from '../../session/evaluate.ts';
import { feedsFor } from '../../session/feeds.ts';
import { backendOf, devices, forEachDevice, relErr } from '../harness.ts';
import { memorySource, TINY_SIZE, TINY_TARGET, tinyModel } from './tiny-model.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-train-'));
const SIZE = TINY_SIZE;

const quiet = () => {};

describe('checkpoints', () => {
  test('round trip, pointers, torn-file and wrong-model detection', async () => {
    const dir = tmp();
    const model = tinyModel({ size: SIZE });
    const tensors = new Map(model.tensors.map((t, i) => [t.name, Float32Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, (_, j) => i + j / 7)]));
    const side = { name: 'epoch-0001', iteration: 3, epoch: 1, seeds: { init: 1, data: 1 }, model: { name: model.name, config: model.config, source: model.source, sourceHash: model.sourceHash }, backend: 'wasm', batch: 4, optimizer: { kind: 'adam', lr: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 3 }, metrics: { loss: 1 } };
    saveCheckpoint(dir, model, tensors, side, ['latest', 'best']);
    expect(resolveCheckpoint(dir, 'latest')).toBe('epoch-0001');
    expect(resolveCheckpoint(dir, 'best')).toBe('epoch-0001');
    const back = loadCheckpoint(dir, 'epoch-0001', model);
    for (const [k, v] of tensors) expect(back.tensors.get(k)).toEqual(v);
    expect(back.sidecar.iteration).toBe(3);
    expect(back.sidecar.model.source).toBe(model.source);
    // A different model (other overrides) is refused naming the parameter and both values (it showed two equal source hashes).
    const latent = model.config.latent;
    expect(() => loadCheckpoint(dir, 'epoch-0001', tinyModel({ size: SIZE, latent: 5 }))).toThrow(`its parameters differ: latent was ${latent}, now 5 (from --set, or the run's run.json overrides)`);
    const edited = { ...model, sourceHash: '0'.repeat(64) };
    expect(() => loadCheckpoint(dir, 'epoch-0001', edited)).toThrow(`its source (hash ${model.sourceHash.slice(0, 12)}…) differs from the model's now (000000000000…)`);
    // A truncated tensors file is caught by its hash.
    const f = join(dir, 'epoch-0001.safetensors');
    writeFileSync(f, readFileSync(f).subarray(0, 100));
    expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(dir, 'epoch-0009', model)).toThrow(/epoch-0009: no such checkpoint/);
  });
});

describe('trainer', () => {
  forEachDevice((d) => {
    test('a run stopped and resumed ends with the same parameters, bit for bit', async () => {
      for (const variant of [{}, { ...TINY_TARGET, warmup: true, objective: 'h' }]) {
        const model = tinyModel({ size: SIZE, ...variant });
        const data = memorySource(10, 3);
        const common = { model, backend: backendOf(d), train: data, validate: memorySource(5, 4), batch: 4, seed: 5, iterations: 11, evalSamples: 2, log: quiet };
        const a = tmp();
        const full = await train({ ...common, out: a });
        const whole = await full.runtime.readAll();
        full.runtime.destroy();
        const b = tmp();
        const first = await train({ ...common, out: b, iterations: 4, checkpointEvery: 2 });
        first.runtime.destroy();
        const second = await train({ ...common, out: b, resume: true });
        expect(second.resumedFrom, d.name).toBe('step-00000004');
        const resumed = await second.runtime.readAll();
        second.runtime.destroy();
        for (const [name, v] of whole) expect(Buffer.from(resumed.get(name)!.buffer).equals(Buffer.from(v.buffer)), `${d.name} ${model.name} ${name}`).toBe(true);
        // Training moved the parameters, so the comparison above can fail.
        const init = new ModelRuntime(backendOf(d), model);
        init.init(5);
        expect((await init.readAll()).get('enc.fc_mu.weight')).not.toEqual(whole.get('enc.fc_mu.weight'));
        init.destroy();
        // The resumed run's metrics read as one uninterrupted run.
        const steps = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).filter((r) => r.kind === 'step').map((r) => [r.iteration, r.loss]);
        expect(steps(b)).toEqual(steps(a));
        expect(steps(a).length).toBe(11);
      }
    });
  });

  test('the training loss falls and the step agrees with the float64 graph', async () => {
    const [d] = await devices();
    const model = tinyModel({ size: SIZE });
    const out = tmp();
    const res = await train({ model, backend: backendOf(d), train: memorySource(12, 1), batch: 4, seed: 2, iterations: 60, out, log: quiet });
    const steps = readMetrics(join(out, 'metrics.jsonl')).filter((r) => r.kind === 'step');
    const mean = (rs: typeof steps) => rs.reduce((a, r) => a + Number(r.loss), 0) / rs.length;
    expect(mean(steps.slice(-10))).toBeLessThan(0.7 * mean(steps.slice(0, 10))) // random pixels: much of the SSE is irreducible;
    // One more step (its metrics, computed before the update) on the device vs the same graph in float64 from the same parameters.
    const params = await res.runtime.readAll();
    const batch = await memorySource(12, 1).batch([0, 1, 2, 3]);
    const g = model.trainStep(4).graph;
    const data = feedsFor(model, batch);
    const feeds = new Map<string, OracleTensor>(g.inputs.map((gi) => [gi.name, { shape: gi.value.shape, data: Float64Array.from(data[gi.name] ?? params.get(gi.name)!) }]));
    // The float64 evaluator uses the static attributes (noise offset 0, Adam step 1), i.e. iteration 0.
    const want = evaluate(g, oracle, feeds).outputs;
    const got = await res.runtime.trainStep(data, 4, 0);
    for (const k of ['recon', 'kl_mean', 'loss']) expect(relErr([got[k]], want.get(k)!.data), k).toBeLessThan(1e-4);
    res.runtime.destroy();
  });

  test("validation each epoch, best checkpoint = best validation ELBO, the model's ELBO = −(SSE + β·KL)", async () => {
    const [d] = await devices();
    const model = tinyModel({ size: SIZE, beta: 0.3 });
    const out = tmp();
    const res = await train({ model, backend: backendOf(d), train: memorySource(10, 1), validate: memorySource(5, 9), batch: 4, seed: 2, epochs: 4, evalSamples: 3, out, log: quiet });
    const vals = readMetrics(join(out, 'metrics.jsonl')).filter((r) => r.kind === 'validate');
    expect(vals.map((v) => v.epoch)).toEqual([1, 2, 3, 4]);
    const bestEpoch = vals.reduce((a, b) => (Number(b.elbo) > Number(a.elbo) ? b : a));
    expect(resolveCheckpoint(join(out, 'checkpoints'), 'best')).toBe(`epoch-000${bestEpoch.epoch}`);
    expect(res.best!.elbo).toBe(bestEpoch.elbo);
    const cells = memorySource(5, 9);
    const ev = await evaluateCells(res.runtime, cells, { batch: 4, samples: 3, iteration: res.iteration });
    expect(ev.cells).toBe(5); // 5 cells in batches of 4: the padding is not counted
    expect(ev.names).toEqual(['elbo', 'sse', 'kl']);
    for (const c of ev.perCell) expect(c.elbo).toBeCloseTo(-(c.sse + 0.3 * c.kl), 4);
    expect(ev.mean.elbo).toBeCloseTo(Number(vals[3].elbo), 3); // same draws as the last validation
    // The KL (no noise in it) against float64 from the encoder's mean and log-variance.
    const b = await cells.batch([0, 1, 2, 3]);
    const enc = await res.runtime.run('encode', feedsFor(model, b), 4);
    for (let c = 0; c < 4; c++) {
      let kl = 0;
      for (let j = c * 4; j < (c + 1) * 4; j++) kl += -0.5 * (1 + enc.logvar[j] - enc.mean[j] ** 2 - Math.exp(enc.logvar[j]));
      expect(ev.perCell[c].kl).toBeCloseTo(kl, 4);
    }
    res.runtime.destroy();
  });

  test('NaN stops the run naming the step, and keeps the last good checkpoint', async () => {
    const [d] = await devices();
    const model = tinyModel({ size: SIZE, ...TINY_TARGET });
    const out = tmp();
    // Cell 7 carries a NaN: the first batch that draws it poisons the loss.
    const err = await train({ model, backend: backendOf(d), train: memorySource(10, 1, 7), batch: 4, seed: 2, iterations: 40, checkpointEvery: 1, out, log: quiet }).catch((e) => e);
    expect(err).toBeInstanceOf(TrainError);
    const step = Number(/at step (\d+)/.exec(err.message)![1]);
    expect(err.message).toMatch(/NaN at step \d+.*last good checkpoint is .*step-0+\d+/s);
    expect(err.message).toContain('1007');
    expect(step).toBeGreaterThan(0); // (fixed seed) so there is a good checkpoint to keep
    {
      const latest = resolveCheckpoint(join(out, 'checkpoints'), 'latest')!;
      const ck = loadCheckpoint(join(out, 'checkpoints'), latest, model);
      expect(ck.sidecar.iteration).toBe(step);
      for (const v of ck.tensors.values()) expect(v.every(Number.isFinite)).toBe(true);
    }
  });

  test('bad settings are refused with what to do', async () => {
    const [d] = await devices();
    const model = tinyModel({ size: SIZE });
    await expect(train({ model, backend: backendOf(d), train: memorySource(3, 1), batch: 4, seed: 1, iterations: 1, out: tmp(), log: quiet })).rejects.toThrow(/batch of 4 distinct cells needs at least 4.*lower --batch/);
    const out = tmp();
    (await train({ model, backend: backendOf(d), train: memorySource(8, 1), batch: 4, seed: 1, iterations: 2, out, log: quiet })).runtime.destroy();
    await expect(train({ model, backend: backendOf(d), train: memorySource(8, 1), batch: 2, seed: 1, iterations: 4, out, resume: true, log: quiet })).rejects.toThrow(/batch 4.*--batch 4/);
    expect(existsSync(join(out, 'checkpoints', 'latest'))).toBe(true);
  });

});
