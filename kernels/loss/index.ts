import type { OpDef } from '../types.ts';

export const lossOps: OpDef<any>[] = [];
