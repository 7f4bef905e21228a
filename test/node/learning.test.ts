// The real model learns the synthetic cells: a small Reference2D (the paper's architecture with
// three halvings and narrow widths) trained for a few epochs on built-in synthetic cells must
// improve its validation ELBO by a clear margin over the untrained model.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import { CellDataset } from '../../data/dataset.ts';
import { readManifest } from '../../data/manifest.ts';
import { synthesize } from '../../data/synth.ts';
import { WasmBackend } from '../../runtime/wasm.ts';
import { evaluateCells } from '../../session/evaluate.ts';
import { train } from '../../train/trainer.ts';

test('validation ELBO of Reference2D on synthetic cells improves by a clear margin', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'statcell-learn-'));
  const size = [32, 24];
  const manifest = synthesize({ out: join(dir, 'data'), cells: 120, dims: 2, size, seed: 4 });
  const rows = readManifest(manifest);
  const open = (split: 'train' | 'validate') => new CellDataset(rows, { dims: 2, size, split, manifestFile: manifest });
  const model = compileModelFile('models/reference2d.vae', { overrides: { size, channels: [8, 16, 32], latent: 16 } });
  const backend = await WasmBackend.create();
  const validate = open('validate');
  for (const r of ['r0', 'r1']) mkdirSync(join(dir, r));
  const res = await train({ model, backend, train: open('train'), batch: 8, seed: 1, iterations: 1, out: join(dir, 'r0'), evalSamples: 2, log: () => {} });
  // The model after one step stands in for "step 0": same initialisation, same evaluation.
  const before = (await evaluateCells(res.runtime, validate, { batch: 8, samples: 2 })).mean;
  res.runtime.destroy();
  const trained = await train({ model, backend, train: open('train'), batch: 8, seed: 1, iterations: 150, out: join(dir, 'r1'), evalSamples: 2, log: () => {} });
  const after = (await evaluateCells(trained.runtime, validate, { batch: 8, samples: 2 })).mean;
  trained.runtime.destroy();
  console.log(`validation −ELBO ${(-before.elbo).toFixed(1)} → ${(-after.elbo).toFixed(1)}, recon ${before.recon_cell.toFixed(1)} → ${after.recon_cell.toFixed(1)}`);
  // −ELBO (per cell: SSE + β·KL over 2·32·24 pixels) must at least halve.
  expect(-after.elbo).toBeLessThan(0.5 * -before.elbo);
  expect(after.recon_cell).toBeLessThan(0.5 * before.recon_cell);
}, 600_000);
