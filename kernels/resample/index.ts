import type { OpDef } from '../types.ts';
import { avgpool, avgpoolGrad, subsample, subsampleGrad, upsample } from './resample.ts';

export const resampleOps: OpDef<any>[] = [avgpool, avgpoolGrad, upsample, subsample, subsampleGrad];
export type { PoolAttrs, ShapeAttrs, StrideAttrs } from './resample.ts';
