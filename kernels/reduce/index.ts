import type { OpDef } from '../types.ts';

export const reduceOps: OpDef<any>[] = [];
