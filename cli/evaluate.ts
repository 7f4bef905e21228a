// `statcell eval` (the model's own evaluation on a split: its ELBO and the parts it names) and
// `statcell embed` (CSV of the encoder's mean per cell).

import type { Split } from '../data/split.ts';
import type { Backend } from '../runtime/backend.ts';
import { evaluateCells } from '../session/evaluate.ts';
import { feedsFor } from '../session/feeds.ts';
import { openRun, type OpenedRun } from '../session/run.ts';
import { openSplit } from './common.ts';
import { writeAtomic } from '../data/files.ts';

interface RunData {
  run: string;
  checkpoint: string;
  split: Split | 'all';
  data?: string;
  batch?: number;
  skipBad?: boolean;
  /** Images of another size than the model's (default: as the run was trained). */
  fit?: 'exact' | 'crop-pad';
}

/** The run at its checkpoint and its data split (the run's manifest and label vocabulary unless --data). */
async function open(o: RunData, backend: Backend, log: (l: string) => void) {
  const r = await openRun(o.run, backend, o.checkpoint, log);
  // Unreadable rows left out, not replaced: each cell counts once.
  const ds = await openSplit(o.data ?? r.info.data, r.model, o.split, { skipBad: o.skipBad ?? r.info.skipBad, log, labels: r.info.labels, fit: o.fit ?? r.info.fit }).readable();
  return { r, ds, batch: o.batch ?? Math.min(r.info.batch, ds.length) };
}

/** A progress line at most every 10 s (a long evaluation said nothing until it ended, which looked like a hang). */
function everyFewSeconds(log: (l: string) => void, what: string): (done: number, of: number) => void {
  const t0 = performance.now();
  let last = t0;
  return (done, of) => {
    const now = performance.now();
    if (now - last < 10_000 || done === of) return;
    last = now;
    log(`${what}: ${done}/${of} cells, ${((now - t0) / 1000).toFixed(0)} s`);
  };
}

export interface EvalCommand extends RunData {
  split: Split | 'all';
  samples: number;
}

export async function evalCommand(o: EvalCommand, backend: Backend, log: (l: string) => void) {
  const { r, ds, batch } = await open(o, backend, log);
  try {
    const res = await evaluateCells(r.runtime, ds, { batch, samples: o.samples, iteration: r.sidecar.iteration, progress: everyFewSeconds(log, 'eval') });
    return { model: r.model.name, checkpoint: r.checkpoint, iteration: r.sidecar.iteration, split: o.split, cells: res.cells, samples: o.samples, precision: r.info.precision ?? 'f32', ...res.mean };
  } finally {
    r.runtime.destroy();
  }
}

export interface EmbedCommand extends RunData {
  out: string;
}

const csv = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** The encoder's mean (μ) of cells in batches, with their rows. */
export async function embedCells(r: OpenedRun, ds: ReturnType<typeof openSplit>, batch: number, progress?: (done: number, of: number) => void): Promise<{ rows: ReturnType<typeof openSplit>['rows']; mean: Float32Array[] }> {
  const enc = r.model.roles.encode;
  if (!enc) throw r.model.error('SC5001', { need: 'entry', model: r.model.name, role: 'encode', purpose: 'embed cells' }, { notes: ['add `entry encode(<inputs>) -> (mu: [B, L], logvar: [B, L]) { ... }` (or mark an entry `as encode`)'] });
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`embedding needs a batch of at least 1, got ${batch}`); // 0 would never advance
  const rows: ReturnType<typeof openSplit>['rows'] = [];
  const mean: Float32Array[] = [];
  for (let start = 0; start < ds.length; start += batch) {
    const idx = Array.from({ length: batch }, (_, k) => Math.min(start + k, ds.length - 1));
    const b = await ds.batch(idx);
    const mu = (await r.runtime.run(enc.entry, feedsFor(r.model, b), batch))[enc.mean];
    const L = mu.length / batch;
    for (let c = 0; c < Math.min(batch, ds.length - start); c++) {
      rows.push(b.rows[c]);
      mean.push(mu.slice(c * L, (c + 1) * L));
    }
    progress?.(rows.length, ds.length);
  }
  return { rows, mean };
}

/** Writes CellId, split, label, <mean>_0 … <mean>_k for every cell of the split (eval mode, the mean only). */
export async function embedCommand(o: EmbedCommand, backend: Backend, log: (l: string) => void): Promise<number> {
  const { r, ds, batch } = await open(o, backend, log);
  try {
    const { rows, mean } = await embedCells(r, ds, batch, everyFewSeconds(log, 'embed'));
    const name = r.model.roles.encode!.mean;
    const header = ['CellId', 'split', 'label', ...Array.from({ length: mean[0]?.length ?? 0 }, (_, d) => `${name}_${d}`)].join(',');
    const lines = rows.map((row, i) => [row.cellId, row.split, row.structure].map(csv).join(',') + ',' + Array.from(mean[i], String).join(','));
    writeAtomic(o.out, header + '\n' + lines.join('\n') + '\n');
    return lines.length;
  } finally {
    r.runtime.destroy();
  }
}
