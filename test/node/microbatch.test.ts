// Micro-batches with gradient accumulation: one Adam step over k micro-batches equals one
// step over the whole batch when nothing normalises per batch (a linear VAE, noise fed in).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import { fuse } from '../../compiler/fuse.ts';
import { lower, memoryStats } from '../../compiler/plan.ts';
import { microBatchFor, ModelRuntime } from '../../session/model.ts';
import { forEachDevice, randn, relErr } from '../harness.ts';

const SOURCE = `
model Lin(lr: float = 0.05) {
  input x: [B, 6]
  train step(x) {
    mu = x |> fc_mu: linear(3)
    logvar = x |> fc_lv: linear(3)
    z = reparam(mu, logvar, randn([B, 3]))
    xhat = z |> dec: linear(6)
    recon = sse(xhat, x) / B
    kl = sum(kld(mu, logvar)) / B
    loss = 2 * (0.5 * recon + 0.5 * kl)
    minimize loss using adam(lr = lr)
    report recon, kl, loss
  }
}
`;

forEachDevice((d) => {
  test('k micro-batches + one Adam step = one step on the whole batch', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'statcell-mb-')), 'lin.vae');
    writeFileSync(file, SOURCE);
    const model = compileModelFile(file, { debug: { externalNoise: true } });
    const inputs = { x: Float32Array.from(randn([8, 6], 1).data), noise0: Float32Array.from(randn([8, 3], 2).data) };
    const whole = new ModelRuntime(d.eager.backend, model);
    const split = new ModelRuntime(d.eager.backend, model, { microBatch: 2 });
    whole.init(3);
    split.init(3);
    for (let it = 0; it < 3; it++) {
      const a = await whole.trainStep(inputs, 8, it);
      const b = await split.trainStep(inputs, 8, it);
      for (const m of ['recon', 'kl', 'loss']) expect(relErr([b[m]], [a[m]]), `${d.name} ${m} at step ${it}`).toBeLessThan(1e-5);
    }
    const [pa, pb] = [await whole.readAll(), await split.readAll()];
    for (const t of model.tensors) expect(relErr(pb.get(t.name)!, pa.get(t.name)!), `${d.name} ${t.name}`).toBeLessThan(1e-5);
    await expect(split.trainStep(inputs, 7, 0)).rejects.toThrow(/does not split into micro-batches of 2/);
    whole.destroy();
    split.destroy();
  });
});

test('a batch too large for the backend gets the largest micro-batch that fits', () => {
  const model = compileModelFile('models/reference2d.vae', { overrides: { size: [64, 32], channels: [4, 8, 16], latent: 8 } });
  const bytes = (b: number, k?: number) => memoryStats(lower(fuse(model.trainStep(b, k).graph))).planned * 4;
  const huge = { maxBufferBytes: 2 ** 40, totalBytes: 2 ** 40 };
  expect(microBatchFor(model, 12, huge)).toBe(12);
  // A budget between what micro-batches of 4 and of 6 need (÷0.9 headroom): 12 = 3 × 4.
  const budget = { maxBufferBytes: 2 ** 40, totalBytes: (bytes(4, 3) + bytes(6, 2)) / 2 / 0.9 };
  expect(bytes(6, 2)).toBeGreaterThan(bytes(4, 3));
  expect(microBatchFor(model, 12, budget)).toBe(4);
  expect(microBatchFor(model, 12, { maxBufferBytes: 16, totalBytes: 2 ** 40 })).toBeUndefined();
});
