// Wasm plans of the conv family (AssemblyScript kernels in kernel.as.ts).

import type { Attrs, Shape, WasmPlan } from '../types.ts';
import { OpError } from '../types.ts';

const todo = (op: string) => (_s: Shape[], _a: Attrs): WasmPlan => {
  throw new OpError(op, 'no Wasm kernel yet');
};

export const convWasm = todo('conv');
export const convTransposeWasm = todo('conv_transpose');
export const convGradWeightWasm = todo('conv_grad_weight');
