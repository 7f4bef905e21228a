import type { OpDef } from '../types.ts';

export const adamOps: OpDef<any>[] = [];
