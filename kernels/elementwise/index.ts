import type { OpDef } from '../types.ts';
import { reluGrad } from './relu_grad.ts';
import { unaryOps } from './unary.ts';

export const elementwiseOps: OpDef<any>[] = [...unaryOps, reluGrad];
