import type { OpDef } from '../types.ts';
import { binaryOps } from './binary.ts';
import { reluGrad, softplusGrad } from './pointwise_grad.ts';
import { reshape } from './reshape.ts';
import { unaryOps } from './unary.ts';

export const elementwiseOps: OpDef<any>[] = [...unaryOps, reluGrad, softplusGrad, ...binaryOps, reshape];
export { broadcastShapes, broadcastStrides, collapse, contiguousStrides } from './broadcast.ts';
