// Wasm plan of matmul (AssemblyScript kernel in kernel.as.ts).

import type { Attrs, Shape, WasmPlan } from '../types.ts';
import { OpError } from '../types.ts';

export const matmulWasm = (_s: Shape[], _a: Attrs): WasmPlan => {
  throw new OpError('matmul', 'no Wasm kernel yet');
};
