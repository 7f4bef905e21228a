// `statcell eval` (ELBO, reconstruction and KL on a split) and `statcell embed` (CSV of μ).

import { writeFileSync } from 'node:fs';
import type { Split } from '../data/split.ts';
import type { Backend } from '../runtime/backend.ts';
import { evaluateElbo, feedsOf } from '../train/trainer.ts';
import { openSplit } from './common.ts';
import { openRun } from './run.ts';

export interface EvalCommand {
  run: string;
  checkpoint: string;
  split: Split;
  data?: string;
  samples: number;
  batch?: number;
  seed: number;
  skipBad?: boolean;
}

export async function evalCommand(o: EvalCommand, backend: Backend, log: (l: string) => void) {
  const r = await openRun(o.run, backend, o.checkpoint);
  const ds = openSplit(o.data ?? r.info.data, r.model, o.split, { skipBad: o.skipBad ?? r.info.skipBad, log });
  const res = await evaluateElbo(r.runtime, ds, { batch: o.batch ?? Math.min(r.info.batch, ds.length), samples: o.samples, seed: o.seed });
  const summary = { model: r.model.name, checkpoint: r.checkpoint, iteration: r.sidecar.iteration, split: o.split, cells: res.cells, elbo: res.elbo, recon: res.recon, kl: res.kl, samples: o.samples };
  r.runtime.destroy();
  return summary;
}

export interface EmbedCommand {
  run: string;
  checkpoint: string;
  split: Split | 'all';
  data?: string;
  out: string;
  batch?: number;
  skipBad?: boolean;
}

const csv = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Writes CellId, split, label, mu_0 … mu_k for every cell of the split (eval mode, μ only). */
export async function embedCommand(o: EmbedCommand, backend: Backend, log: (l: string) => void): Promise<number> {
  const r = await openRun(o.run, backend, o.checkpoint);
  const ds = openSplit(o.data ?? r.info.data, r.model, o.split, { skipBad: o.skipBad ?? r.info.skipBad, log });
  const B = o.batch ?? Math.min(r.info.batch, ds.length);
  const lines: string[] = [];
  let L = 0;
  for (let start = 0; start < ds.length; start += B) {
    const idx = Array.from({ length: B }, (_, k) => Math.min(start + k, ds.length - 1));
    const b = await ds.batch(idx);
    const [mu] = Object.values(await r.runtime.run('encode', feedsOf(r.model, b), B));
    L = mu.length / B;
    for (let c = 0; c < Math.min(B, ds.length - start); c++) {
      const row = b.rows[c];
      lines.push([row.cellId, row.split, row.structure].map(csv).join(',') + ',' + Array.from(mu.subarray(c * L, (c + 1) * L), (v) => String(v)).join(','));
    }
  }
  const header = ['CellId', 'split', 'label', ...Array.from({ length: L }, (_, d) => `mu_${d}`)].join(',');
  writeFileSync(o.out, header + '\n' + lines.join('\n') + '\n');
  r.runtime.destroy();
  return lines.length;
}
