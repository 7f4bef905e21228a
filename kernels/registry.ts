// Every op by name. Each family folder exports its ops; nothing else registers them.

import { elementwiseOps } from './elementwise/index.ts';
import type { OpDef } from './types.ts';

const all: OpDef<any>[] = [...elementwiseOps];

export const OPS: ReadonlyMap<string, OpDef<any>> = new Map(all.map((op) => [op.name, op]));

export function getOp(name: string): OpDef<any> {
  const op = OPS.get(name);
  if (!op) throw new Error(`unknown op '${name}'; known ops: ${[...OPS.keys()].sort().join(', ')}`);
  return op;
}
