// `npx tsx bench/convt.ts [--json file] [--reps n]`: transposed convolutions on WebGPU, the
// FLOPs their launch plan executes (wgslPlanFlops: the sum of the passes' GEMMs, multiplies by
// zeros included) next to the dense count (launchFlops), and their time. Stride 2 in 2D and 3D
// (the decoder's up blocks and the input gradient of every stride-2 conv), plus a stride-1 row
// (no waste possible) and a k3 s2 row (phases of unequal tap counts). Each result is checked
// against the float64 oracle before it is timed.

import { writeFileSync } from 'node:fs';
import { openBackend } from '../runtime/device.ts';
import type { Backend } from '../runtime/backend.ts';
import { getOp } from '../kernels/registry.ts';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import type { Attrs, Shape } from '../kernels/types.ts';
import { fmtShape, numel } from '../kernels/types.ts';
import { fill, median } from './common.ts';
import { launchFlops, wgslPlanFlops } from './flops.ts';

export interface ConvTCase {
  name: string;
  inShapes: Shape[];
  attrs: Attrs;
}

/** Small enough for SwiftShader (a few seconds each before the phase decomposition). */
export const CONVT_CASES: ConvTCase[] = [
  { name: '2D up k4s2p1', inShapes: [[1, 64, 20, 12], [64, 64, 4, 4]], attrs: { stride: 2, pad: 1 } },
  { name: '2D k3s2p1 op1', inShapes: [[1, 32, 20, 12], [32, 32, 3, 3]], attrs: { stride: 2, pad: 1, outputPadding: 1 } },
  { name: '2D k3s1p1', inShapes: [[1, 32, 20, 12], [32, 32, 3, 3]], attrs: { stride: 1, pad: 1 } },
  { name: '3D up k4s2p1', inShapes: [[1, 32, 6, 6, 4], [32, 32, 4, 4, 4]], attrs: { stride: 2, pad: 1 } },
];

export interface ConvTRow {
  name: string;
  shapes: string;
  denseFlops: number;
  executedFlops: number;
  ratio: number;
  passes: number;
  medianMs: number | null;
  maxRelErr: number | null;
}

/** Runs one case: FLOPs from the plan, a check against float64, then `reps` timed launches. */
export async function runConvT(backend: Backend, c: ConvTCase, reps: number): Promise<ConvTRow> {
  const op = getOp('conv_transpose');
  const l = { op: 'conv_transpose', inShapes: c.inShapes, attrs: c.attrs };
  const denseFlops = launchFlops(l);
  const executedFlops = wgslPlanFlops(l);
  const passes = op.wgsl(c.inShapes, c.attrs).passes.length;
  const row: ConvTRow = { name: c.name, shapes: `${c.inShapes.map(fmtShape).join(' ')} ${JSON.stringify(c.attrs)}`, denseFlops, executedFlops, ratio: executedFlops / denseFlops, passes, medianMs: null, maxRelErr: null };
  if (reps <= 0) return row;
  const data = c.inShapes.map((s, i) => fill(numel(s), i + 7));
  const outShape = op.shape(c.inShapes, c.attrs)[0];
  const ins = data.map((d) => {
    const b = backend.alloc(d.length);
    backend.write(b, d);
    return b;
  });
  const out = backend.alloc(numel(outShape));
  const launch = backend.prepare(op, c.inShapes, c.attrs, ins, [out]);
  try {
    backend.execute([launch]);
    await backend.sync();
    const got = await backend.read(out);
    const [want] = oracle.call('conv_transpose', data.map((d, i) => oracleTensor(c.inShapes[i], Float64Array.from(d))), c.attrs);
    let err = 0;
    let scale = 0;
    for (let i = 0; i < want.data.length; i++) {
      err = Math.max(err, Math.abs(got[i] - want.data[i]));
      scale = Math.max(scale, Math.abs(want.data[i]));
    }
    row.maxRelErr = err / scale;
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      backend.execute([launch]);
      await backend.sync();
      times.push(performance.now() - t0);
    }
    row.medianMs = median(times);
  } finally {
    backend.release(launch);
    for (const b of [...ins, out]) backend.free(b);
  }
  return row;
}

export function formatConvT(rows: ConvTRow[]): string {
  const head = 'case            executed MFLOP  dense MFLOP  executed/dense  passes   ms (median)  GFLOP/s (dense)  max rel. err';
  const lines = rows.map((r) =>
    [
      r.name.padEnd(14),
      (r.executedFlops / 1e6).toFixed(1).padStart(16),
      (r.denseFlops / 1e6).toFixed(1).padStart(12),
      `${r.ratio.toFixed(2)}×`.padStart(15),
      String(r.passes).padStart(7),
      (r.medianMs === null ? '-' : r.medianMs.toFixed(1)).padStart(13),
      (r.medianMs === null ? '-' : (r.denseFlops / (r.medianMs * 1e6)).toFixed(3)).padStart(16),
      (r.maxRelErr === null ? '-' : r.maxRelErr.toExponential(1)).padStart(13),
    ].join(' '),
  );
  return [head, ...lines].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const jsonAt = argv.indexOf('--json');
  const repsAt = argv.indexOf('--reps');
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 3;
  const { backend, reason } = await openBackend('webgpu');
  console.log(`webgpu    ${reason}`);
  const rows: ConvTRow[] = [];
  try {
    for (const c of CONVT_CASES) rows.push(await runConvT(backend, c, reps));
  } finally {
    backend.destroy();
  }
  console.log(formatConvT(rows));
  if (jsonAt >= 0) writeFileSync(argv[jsonAt + 1], JSON.stringify({ backend: reason, rows }, null, 1));
}

if (process.argv[1]?.endsWith('convt.ts')) await main(process.argv.slice(2));
