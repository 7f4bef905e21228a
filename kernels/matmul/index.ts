import type { OpDef } from '../types.ts';

export const matmulOps: OpDef<any>[] = [];
