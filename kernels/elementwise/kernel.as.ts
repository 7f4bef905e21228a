// AssemblyScript elementwise kernels over the pointwise ops of pointwise.as.ts, selected by
// opcode (opcodes.as.ts, exported as OPCODE_<name> for runtime/wasm.ts to check against the
// table in pointwise.ts): 4 lanes at a time with v128 where the op has that form, then a scalar
// tail. Arguments are byte offsets into the one imported memory; nothing here allocates.

import { OPCODE_add, OPCODE_sub, OPCODE_mul, OPCODE_div } from './opcodes.as';
import { pointwise, sop, vop } from './pointwise.as';

export * from './opcodes.as';

/**
 * y = op(a, b; p, q) over n elements of one shape: a unary op (a = b = x), or a same-shape
 * binary one (relu_grad, softplus_grad: a = x, b = dy).
 */
export function ew_map(op: i32, a: usize, b: usize, y: usize, n: i32, p: f32, q: f32): void {
  pointwise(op, y, a, b, p, q, n);
}

// The broadcasting binary ops: add, sub, mul, div. `op` is a literal wherever the helpers below
// are inlined, so each loop is specialised per op.

/**
 * One contiguous row of n outputs; each input either walks along (step 1) or stays on one
 * value (step 0: a scalar, or a per-channel value over a row of pixels).
 */
// @ts-ignore: decorator
@inline function row(op: i32, a: usize, sa: i32, b: usize, sb: i32, y: usize, n: i32): void {
  const Z = f32x4.splat(0); // no parameters
  let i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, v128.load(a + o), v128.load(b + o), Z, Z));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, sop(op, load<f32>(a + o), load<f32>(b + o), 0, 0));
    }
  } else if (sa == 1) {
    const s = load<f32>(b);
    const vs = f32x4.splat(s);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, v128.load(a + o), vs, Z, Z));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, sop(op, load<f32>(a + o), s, 0, 0));
    }
  } else if (sb == 1) {
    const s = load<f32>(a);
    const vs = f32x4.splat(s);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, vs, v128.load(b + o), Z, Z));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, sop(op, s, load<f32>(b + o), 0, 0));
    }
  } else {
    const s = sop(op, load<f32>(a), load<f32>(b), 0, 0);
    for (; i < n; i++) store<f32>(y + (<usize>i << 2), s);
  }
}

// @ts-ignore: decorator
@inline function rows(
  op: i32, a: usize, b: usize, y: usize,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32,
  b0: i32, b1: i32, b2: i32, b3: i32, b4: i32, b5: i32,
): void {
  let yo: usize = y;
  const rowBytes = <usize>d5 << 2;
  for (let i0 = 0; i0 < d0; i0++)
    for (let i1 = 0; i1 < d1; i1++)
      for (let i2 = 0; i2 < d2; i2++)
        for (let i3 = 0; i3 < d3; i3++)
          for (let i4 = 0; i4 < d4; i4++) {
            const ao = a + (<usize>(i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3 + i4 * a4) << 2);
            const bo = b + (<usize>(i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3 + i4 * b4) << 2);
            row(op, ao, a5, bo, b5, yo, d5);
            yo += rowBytes;
          }
}

/**
 * y = op(a, b), op the opcode of add, sub, mul or div, over a collapsed, broadcast iteration
 * space of 6 axes (d*, outermost first) with element strides a*, b* (0 on broadcast axes); y is
 * contiguous. The innermost stride of each input is 0 or 1.
 */
export function ew_binary(
  op: i32, a: usize, b: usize, y: usize,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32,
  b0: i32, b1: i32, b2: i32, b3: i32, b4: i32, b5: i32,
): void {
  if (op == OPCODE_add) rows(OPCODE_add, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else if (op == OPCODE_sub) rows(OPCODE_sub, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else if (op == OPCODE_mul) rows(OPCODE_mul, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else if (op == OPCODE_div) rows(OPCODE_div, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else unreachable();
}
