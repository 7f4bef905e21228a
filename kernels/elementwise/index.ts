import type { OpDef } from '../types.ts';
import { pointwiseOps } from './pointwise.ts';
import { reshape } from './reshape.ts';

export const elementwiseOps: OpDef<any>[] = [...pointwiseOps, reshape];
export { broadcastShapes, broadcastStrides, collapse, contiguousStrides } from './broadcast.ts';
