// The `fused` op's interpreter: a tiny register machine over chunks of CHUNK elements. An
// instruction runs over a whole chunk with f32x4 lanes, so dispatch costs one branch per
// instruction per CHUNK elements. A register is a pointer to its chunk: contiguous inputs are
// read where they lie and values that are outputs are computed straight into the output, so only
// intermediates (and broadcast inputs, gathered) use the scratch slots, which stay in cache.
// The descriptor (see kernels/fused/index.ts, wasm()) is written by the host with fused_poke.
// Opcodes are those of kernels/elementwise/opcodes.as.ts (checked against the table in
// kernels/elementwise/pointwise.ts when the module is instantiated); every pointwise op runs
// through pointwise() of kernels/elementwise/pointwise.as.ts, as the single-op kernels do.
// Nothing here allocates.

import { OPCODE_input, OPCODE_const, OPCODE_store } from '../elementwise/opcodes.as';
import { pointwise } from '../elementwise/pointwise.as';
import { copy_floats, fill_floats } from '../simd.as';

const CHUNK: i32 = 1024;
const REG_BYTES: usize = <usize>CHUNK << 2;
const IN: usize = 16 << 2; // byte offsets of the descriptor's sections
const DIMS: usize = 8 << 2;
const INSTR_BYTES: usize = 8 << 2; // an instruction: [op, reg, a, b, p, q, output + 1, -]

/** Host → memory: one 32-bit word of a descriptor. */
export function fused_poke(ptr: usize, v: i32): void {
  store<i32>(ptr, v);
}

/**
 * Loads elements [start, start+len) of the iteration space of input `inp` (descriptor entry:
 * ptr, contiguous flag, 6 strides) into register `dst`. Contiguous inputs are one copy; others
 * walk the 6-axis space in runs along the innermost axis, where the stride is 1 (a copy) or 0
 * (a broadcast value: a fill).
 */
function gather(d: usize, inp: usize, start: i32, len: i32, dst: usize): void {
  const base = <usize>load<i32>(inp);
  if (load<i32>(inp, 4)) {
    copy_floats(dst, base + (<usize>start << 2), len);
    return;
  }
  const st = inp + 8;
  const d5 = load<i32>(d + DIMS, 20);
  // Multi-index of `start`, innermost axis first.
  let r = start;
  let i5 = r % d5; r /= d5;
  const d4 = load<i32>(d + DIMS, 16);
  let i4 = r % d4; r /= d4;
  const d3 = load<i32>(d + DIMS, 12);
  let i3 = r % d3; r /= d3;
  const d2 = load<i32>(d + DIMS, 8);
  let i2 = r % d2; r /= d2;
  const d1 = load<i32>(d + DIMS, 4);
  let i1 = r % d1; r /= d1;
  let i0 = r;
  const s0 = load<i32>(st), s1 = load<i32>(st, 4), s2 = load<i32>(st, 8), s3 = load<i32>(st, 12), s4 = load<i32>(st, 16), s5 = load<i32>(st, 20);
  let k = 0;
  while (k < len) {
    const off = i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4 + i5 * s5;
    const run = min(d5 - i5, len - k);
    const src = base + (<usize>off << 2);
    if (s5 == 0) fill_floats(dst + (<usize>k << 2), load<f32>(src), run);
    else copy_floats(dst + (<usize>k << 2), src, run);
    k += run;
    // Next row: carry through the outer axes.
    i5 = 0;
    if (++i4 == d4) {
      i4 = 0;
      if (++i3 == d3) {
        i3 = 0;
        if (++i2 == d2) {
          i2 = 0;
          if (++i1 == d1) {
            i1 = 0;
            i0++;
          }
        }
      }
    }
  }
}

/** Runs the program of descriptor `d` over the whole output. */
export function fused_run(d: usize): void {
  const nInstr = load<i32>(d);
  const n = load<i32>(d, 4);
  const regs = <usize>load<i32>(d, 8);
  const nIn = load<i32>(d, 12);
  const nOut = load<i32>(d, 16);
  // Where each register's chunk lives: its own slot, an input (a contiguous load is not
  // copied) or an output (a value written out is computed straight into it).
  const ptrs = regs + <usize>load<i32>(d, 20) * REG_BYTES;
  const outs = d + IN + (<usize>(8 * nIn) << 2);
  const code = outs + (<usize>nOut << 2);
  for (let start = 0; start < n; start += CHUNK) {
    const len = min(CHUNK, n - start);
    for (let p = 0; p < nInstr; p++) {
      const w = code + <usize>p * INSTR_BYTES;
      const op = load<i32>(w);
      const reg = <usize>load<i32>(w, 4);
      const a = load<i32>(w, 8);
      if (op == OPCODE_store) {
        // output (word 1) ← value in register a (an input passed through, or a second copy)
        copy_floats(<usize>load<i32>(outs + (reg << 2)) + (<usize>start << 2), load<usize>(ptrs + (<usize>a << 2)), len);
        continue;
      }
      const out = load<i32>(w, 24);
      const dst = out ? <usize>load<i32>(outs + (<usize>(out - 1) << 2)) + (<usize>start << 2) : regs + reg * REG_BYTES;
      if (op == OPCODE_input) {
        // input a: a contiguous input is read in place
        const inp = d + IN + (<usize>(8 * a) << 2);
        if (load<i32>(inp, 4)) store<usize>(ptrs + (reg << 2), <usize>load<i32>(inp) + (<usize>start << 2));
        else {
          store<usize>(ptrs + (reg << 2), dst);
          gather(d, inp, start, len, dst);
        }
      } else if (op == OPCODE_const) {
        // bits in a
        store<usize>(ptrs + (reg << 2), dst);
        fill_floats(dst, reinterpret<f32>(a), len);
      } else {
        // A pointwise op on registers a and b (a unary op names its operand twice), parameters
        // as f32 bits in words 4 and 5. Operands first: the destination may reuse their register.
        const ra = load<usize>(ptrs + (<usize>a << 2));
        const rb = load<usize>(ptrs + (<usize>load<i32>(w, 12) << 2));
        store<usize>(ptrs + (reg << 2), dst);
        pointwise(op, dst, ra, rb, reinterpret<f32>(load<i32>(w, 16)), reinterpret<f32>(load<i32>(w, 20)), len);
      }
    }
  }
}
