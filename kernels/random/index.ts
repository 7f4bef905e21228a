import type { OpDef } from '../types.ts';

export const randomOps: OpDef<any>[] = [];
