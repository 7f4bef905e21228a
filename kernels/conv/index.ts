import type { OpDef } from '../types.ts';

export const convOps: OpDef<any>[] = [];
