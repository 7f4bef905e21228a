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

const all: OpDef<any>[] = [...elementwiseOps, ...convOps, ...matmulOps, ...reduceOps, ...resampleOps, ...batchnormOps, ...spectralOps, ...randomOps, ...lossOps, ...adamOps, ...fillOps, ...fusedOps];

export const OPS: ReadonlyMap<string, OpDef<any>> = new Map(all.map((op) => [op.name, op]));

export function getOp(name: string): OpDef<any> {
  const op = OPS.get(name);
  if (!op) throw new Error(`unknown op '${name}'; known ops: ${[...OPS.keys()].sort().join(', ')}`);
  return op;
}
