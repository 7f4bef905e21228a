import type { OpDef } from '../types.ts';
import { broadcastTo, reduceMean, reduceSum } from './reduce.ts';

export const reduceOps: OpDef<any>[] = [reduceSum, reduceMean, broadcastTo];
export { normalizeAxes, sumToShape } from './reduce.ts';
export type { BroadcastAttrs, ReduceAttrs } from './reduce.ts';
