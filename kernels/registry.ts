// Every op by name. Each family folder exports its ops; nothing else registers them.

import { elementwiseOps } from './elementwise/index.ts';
import { convOps } from './conv/index.ts';
import { matmulOps } from './matmul/index.ts';
import { reduceOps } from './reduce/index.ts';
import { resampleOps } from './resample/index.ts';
import { batchnormOps } from './batchnorm/index.ts';
import { spectralOps } from './spectral/index.ts';
import { randomOps } from './random/index.ts';
import { lossOps } from './loss/index.ts';
import { adamOps } from './adam/index.ts';
import { fillOps } from './fill/index.ts';
import { fusedOps } from './fused/index.ts';
import type { OpDef } from './types.ts';

/** Each family's ops by the folder they live in. */
const families: Record<string, OpDef<any>[]> = {
  elementwise: elementwiseOps,
  conv: convOps,
  matmul: matmulOps,
  reduce: reduceOps,
  resample: resampleOps,
  batchnorm: batchnormOps,
  spectral: spectralOps,
  random: randomOps,
  loss: lossOps,
  adam: adamOps,
  fill: fillOps,
  fused: fusedOps,
};
const all: OpDef<any>[] = Object.values(families).flat();

export const OPS: ReadonlyMap<string, OpDef<any>> = new Map(all.map((op) => [op.name, op]));

const sources = new Map<OpDef<any>, string>(Object.entries(families).flatMap(([family, ops]) => ops.map((op) => [op, `kernels/${family}/`] as const)));

/** The folder a registered op's kernels live in (`kernels/conv/`), for error messages; undefined for other ops. */
export const opSource = (op: OpDef<any>): string | undefined => sources.get(op);

export function getOp(name: string): OpDef<any> {
  const op = OPS.get(name);
  if (!op) throw new Error(`unknown op '${name}'; known ops: ${[...OPS.keys()].sort().join(', ')}`);
  return op;
}
