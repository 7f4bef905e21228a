// Before timing anything: does every engine compute what its rows claim? Each engine runs
// each kind of task once at small, odd shapes (in our layouts, its own inside) and is compared
// with the float64 oracle of our op (relative error ‖a−b‖/‖b‖). This catches a wrong layout,
// attribute or peer formulation (e.g. the dilated-conv weight gradient) that timing never would.

import { getOp } from '../kernels/registry.ts';
import type { ConvLayer, Engine, Task } from './common.ts';
import { errMessage, fill, taskIO } from './common.ts';
import { opFor } from './ours.ts';

/** Small layers with odd sizes, one per kind of encoder layer (k4 s2 p1, k3 p1, 1×1). */
export const CHECK_LAYERS: ConvLayer[] = [
  { name: 'k4s2', B: 2, Ci: 3, H: 10, W: 6, Co: 5, K: 4, stride: 2, pad: 1 },
  { name: 'k3', B: 2, Ci: 5, H: 7, W: 5, Co: 3, K: 3, stride: 1, pad: 1 },
  { name: 'k1', B: 3, Ci: 4, H: 5, W: 3, Co: 6, K: 1, stride: 1, pad: 0 },
];

export const CHECK_TASKS: Task[] = [
  ...CHECK_LAYERS.flatMap((layer) => (['fwd', 'dx', 'dw'] as const).map((pass): Task => ({ kind: 'conv', pass, layer }))),
  { kind: 'matmul', M: 19, N: 13, K: 37 },
];

/** float32 results are expected within this of the float64 oracle at these sizes. */
export const CHECK_TOLERANCE = 1e-4;

export interface CheckResult {
  engine: string;
  /** The largest relative error over CHECK_TASKS, or null if one could not run. */
  maxRelErr: number | null;
  failures: string[];
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
};

export async function crossCheck(engine: Engine): Promise<CheckResult> {
  let maxRelErr = 0;
  const failures: string[] = [];
  for (const [i, task] of CHECK_TASKS.entries()) {
    const label = task.kind === 'matmul' ? 'matmul' : `${task.layer.name} ${task.pass}`;
    try {
      const { inputs } = taskIO(task);
      const data = inputs.map((s, k) => fill(s.reduce((a, b) => a * b, 1), 7 * i + k + 1));
      const { op, inShapes, attrs } = opFor(task);
      const want = getOp(op).float64(data.map((d) => Float64Array.from(d)), inShapes, attrs)[0];
      const got = await engine.compute(task, data);
      if (got.length !== want.length) throw new Error(`${got.length} values, expected ${want.length}`);
      const e = relErr(got, want);
      maxRelErr = Math.max(maxRelErr, e);
      if (!(e <= CHECK_TOLERANCE)) failures.push(`${label}: rel. error ${e.toExponential(1)}`);
    } catch (e) {
      failures.push(`${label}: ${errMessage(e)}`);
    }
  }
  return { engine: engine.name, maxRelErr: failures.some((f) => !f.includes('rel. error')) ? null : maxRelErr, failures };
}
