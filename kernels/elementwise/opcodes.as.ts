// The Wasm opcodes of the pointwise ops and of the fused interpreter's own instructions. They
// must equal the `opcode`s of kernels/elementwise/pointwise.ts (the table) and its
// FUSED_SPECIAL: the module exports each as OPCODE_<name> and runtime/wasm.ts, when it
// instantiates the module, refuses one whose OPCODE_* exports differ from the table.
// Adding an op: its number here and in the table, its formula in pointwise.as.ts.

export const OPCODE_input: i32 = 0;
export const OPCODE_const: i32 = 1;
export const OPCODE_add: i32 = 2;
export const OPCODE_sub: i32 = 3;
export const OPCODE_mul: i32 = 4;
export const OPCODE_div: i32 = 5;
export const OPCODE_relu: i32 = 6;
export const OPCODE_exp: i32 = 7;
export const OPCODE_softplus: i32 = 8;
export const OPCODE_scale: i32 = 9;
export const OPCODE_relu_grad: i32 = 10;
export const OPCODE_softplus_grad: i32 = 11;
export const OPCODE_store: i32 = 12;
export const OPCODE_rsqrt: i32 = 13;
export const OPCODE_round_f16: i32 = 14;
