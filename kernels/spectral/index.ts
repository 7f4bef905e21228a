import type { OpDef } from '../types.ts';

export const spectralOps: OpDef<any>[] = [];
