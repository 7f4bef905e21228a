// The main job (`npm start` = `statcell demo`): synthesize a small 2D data set if missing, train
// the reference model then the target model on it (WebGPU with a hardware GPU, Wasm otherwise),
// and write a report folder. Sized to finish within 15 minutes on a 2-core machine on Wasm.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { synthesize } from '../data/synth.ts';
import { writeReport } from '../viz/report.ts';
import { backendFor, log, openSplit } from './common.ts';
import { openRun } from '../session/run.ts';
import { trainCommand } from './train.ts';

export interface DemoCommand {
  data: string;
  cells: number;
  size: number[];
  runs: string;
  report: string;
  backend: string;
  batch: number;
  epochs: number;
  evalSamples: number;
  /** Model widths for the reduced size (the paper's are [32, 64, 128, 256, 512] at 160×96). */
  channels: number[];
  latent: number;
  resume?: boolean;
}

/** Structures the report generates in real cells, when the data have them (else its first four labels). */
export const DEMO_LABELS = ['Nuclear envelope', 'Mitochondria', 'Microtubules', 'Golgi'];

export async function demoCommand(o: DemoCommand): Promise<string> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const manifest = join(o.data, 'manifest.csv');
  if (!existsSync(manifest)) {
    log(`synthesizing ${o.cells} 2D cells of ${o.size.join('×')} (plus controls) into ${o.data}`);
    synthesize({ out: o.data, cells: o.cells, dims: 2, size: o.size, seed: 1 });
  } else log(`using the data set in ${o.data}`);
  timings.data = (performance.now() - t0) / 1000;
  const backend = await backendFor(o.backend, log);
  const set = { size: o.size, channels: o.channels, latent: o.latent };
  const common = { data: manifest, backend: o.backend, batch: o.batch, epochs: o.epochs, seed: 1, evalSamples: o.evalSamples, resume: o.resume, openedBackend: backend, set };
  const runs = { reference: join(o.runs, 'reference'), target: join(o.runs, 'target') };
  let t = performance.now();
  const r = await trainCommand({ ...common, model: 'models/reference2d.vae', out: runs.reference });
  timings['reference model'] = (performance.now() - t) / 1000;
  if (r.stopped !== 'done') return `stopped by ${r.stopped}; run again with --resume to continue`;
  r.runtime.destroy();
  t = performance.now();
  const tg = await trainCommand({ ...common, model: 'models/target2d.vae', out: runs.target });
  timings['target model'] = (performance.now() - t) / 1000;
  if (tg.stopped !== 'done') return `stopped by ${tg.stopped}; run again with --resume to continue`;
  tg.runtime.destroy();

  t = performance.now();
  const ref = await openRun(runs.reference, backend, 'best');
  const tgt = await openRun(runs.target, backend, 'best');
  const test = openSplit(manifest, ref.model, 'test', { log, labels: tgt.info.labels });
  const known = DEMO_LABELS.filter((l) => tgt.info.labels.includes(l));
  const labels = known.length ? known : tgt.info.labels.slice(0, 4);
  timings.report = 0;
  const html = await writeReport(o.report, { reference: { run: ref, dir: runs.reference }, target: { run: tgt, dir: runs.target }, cells: test, labels, backend: backend.description, timings });
  timings.report = (performance.now() - t) / 1000;
  ref.runtime.destroy();
  tgt.runtime.destroy();
  log(`report written: ${resolve(html)} (total ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  return html;
}
