// `npx tsx bench/subgroups.ts [--reps n]`: the WebGPU launches whose sums go through wg_sum
// (kernels/wgsl.ts, WG_SUM), with subgroups and without (the same adapter opened with
// `disable: ['subgroups']`), at the 2D reference model's batch-8 shapes: BatchNorm statistics
// and backward of the first Down blocks, the conv bias gradient (reduce_sum over B·H·W), the
// reconstruction error and dec.fc's spectral norm. Per launch: the median wall time of `reps`
// submissions (one launch each, synced; the two devices alternate) and the relative error of
// output 0 against the float64 oracle.

import { openWebGpu } from '../runtime/device.ts';
import type { WebGpuBackend } from '../runtime/webgpu.ts';
import { getOp } from '../kernels/registry.ts';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import type { Attrs, Shape } from '../kernels/types.ts';
import { fmtShape, numel } from '../kernels/types.ts';
import { fill, median } from './common.ts';

interface Case {
  name: string;
  op: string;
  inShapes: Shape[];
  attrs: Attrs;
}

const C = (n: number): Shape => [n];
const bnStats = (x: Shape): Case => ({ name: 'batchnorm_stats', op: 'batchnorm_stats', inShapes: [x, C(x[1]), C(x[1]), C(x[1])], attrs: { training: true } });
const bnGrad = (x: Shape): Case => ({ name: 'batchnorm_grad', op: 'batchnorm_grad', inShapes: [x, x, C(x[1]), C(x[1]), C(x[1])], attrs: { training: true } });

const CASES: Case[] = [
  ...[[8, 2, 80, 48], [8, 32, 80, 48], [8, 64, 40, 24], [8, 128, 20, 12]].flatMap((x) => [bnStats(x), bnGrad(x)]),
  { name: 'conv bias grad', op: 'reduce_sum', inShapes: [[8, 32, 80, 48]], attrs: { axes: [0, 2, 3] } },
  { name: 'sse', op: 'sse', inShapes: [[8, 2, 160, 96], [8, 2, 160, 96]], attrs: {} },
  { name: 'sn_sigma dec.fc', op: 'sn_sigma', inShapes: [[7680, 512], [7680]], attrs: {} },
];

/** Inputs in [−1, 1]; invstd, running variance and γ made positive. */
const inputsOf = (c: Case): Float32Array[] => c.inShapes.map((s, i) => (c.op.startsWith('batchnorm') && i > 0 ? fill(numel(s), i + 3).map((v) => 1 + 0.5 * v) : fill(numel(s), i + 3)));

/** A launch of `c` on `backend`, its inputs uploaded; `run` submits it once and waits. */
async function prepare(backend: WebGpuBackend, c: Case, data: Float32Array[]) {
  const op = getOp(c.op);
  const ins = data.map((d) => {
    const b = backend.alloc(d.length);
    backend.write(b, d);
    return b;
  });
  const outs = op.shape(c.inShapes, c.attrs).map((s, i) => (op.inplace?.[i] !== undefined ? ins[op.inplace[i]] : backend.alloc(numel(s))));
  const launch = backend.prepare(op, c.inShapes, c.attrs, ins, outs);
  backend.execute([launch]);
  const out = await backend.read(outs[0]);
  return {
    out,
    run: async () => {
      const t0 = performance.now();
      backend.execute([launch]);
      await backend.sync();
      return performance.now() - t0;
    },
    free: () => {
      backend.release(launch);
      for (const b of new Set([...ins, ...outs])) backend.free(b);
    },
  };
}

const relErr = (a: Float32Array, b: Float64Array): number => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};

const arg = process.argv.indexOf('--reps');
const reps = arg > 0 ? Number(process.argv[arg + 1]) : 7;
const on = await openWebGpu(true);
const off = await openWebGpu(true, { disable: ['subgroups'] });
if (!on.target.subgroups) throw new Error(`bench/subgroups: the adapter (${on.description}) offers no subgroups`);
const load = async () => ((await import('node:os')).loadavg() as number[]).map((l) => l.toFixed(1)).join(' ');
console.log(`${on.description}; ${reps} reps; load average ${await load()}`);
console.log('| launch | input | core WGSL ms | subgroups ms | speed-up | rel. error core | rel. error subgroups |');
console.log('|---|---|--:|--:|--:|--:|--:|');
for (const c of CASES) {
  const data = inputsOf(c);
  const [want] = oracle.call(c.op, data.map((d, i) => oracleTensor(c.inShapes[i], Float64Array.from(d))), c.attrs);
  const a = await prepare(off, c, data);
  const b = await prepare(on, c, data);
  // Alternated, so that the load others put on the machine weighs on both alike.
  const ta: number[] = [];
  const tb: number[] = [];
  for (let r = 0; r < reps; r++) {
    ta.push(await a.run());
    tb.push(await b.run());
  }
  a.free();
  b.free();
  const [ma, mb] = [median(ta), median(tb)];
  console.log(`| ${c.name} | ${fmtShape(c.inShapes[0])} | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(ma / mb).toFixed(2)}× | ${relErr(a.out, want.data).toExponential(1)} | ${relErr(b.out, want.data).toExponential(1)} |`);
}
console.log(`load average after: ${await load()}`);
on.destroy();
off.destroy();
