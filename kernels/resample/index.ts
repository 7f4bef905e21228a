import type { OpDef } from '../types.ts';

export const resampleOps: OpDef<any>[] = [];
