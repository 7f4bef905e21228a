import type { OpDef } from '../types.ts';

export const batchnormOps: OpDef<any>[] = [];
