// The pointwise ops' formulas on the Wasm side, each written once (as the table in pointwise.ts
// writes its float64 and WGSL forms): a 4-lane form (`vop`) where there is one, and a one-lane
// form (`sop`). The single-op kernels (ew_map, ew_binary in kernel.as.ts) and the fused
// interpreter (kernels/fused/kernel.as.ts) all run them through these. `op` is a literal
// wherever they are inlined, so the branches fold away.
// Operands a and b (a unary op gets its operand as both) and parameters p, q (scale: y = p·a + q).

import {
  OPCODE_add, OPCODE_sub, OPCODE_mul, OPCODE_div, OPCODE_relu, OPCODE_exp, OPCODE_softplus, OPCODE_scale,
  OPCODE_relu_grad, OPCODE_softplus_grad, OPCODE_rsqrt, OPCODE_round_f16,
} from './opcodes.as';

/** log(1 + u) without losing u when it is below f32 epsilon (Goldberg's trick). */
// @ts-ignore: decorator
@inline function log1pf(u: f32): f32 {
  const w: f32 = 1 + u;
  return w == 1 ? u : Mathf.log(w) * (u / (w - 1));
}

/**
 * x rounded to the nearest binary16 value, kept in f32 (as roundToF16 in pointwise.ts): ties to
 * even, ±Inf from 65520 on, subnormals kept. In binary16's normal range the f32 bits lose 13
 * mantissa bits, to nearest even (a carry steps the exponent); below 2^-14 its values are the
 * multiples of 2^-24: |x|·2^24 (exact) rounded to an integer, ties to even, and scaled back.
 */
// @ts-ignore: decorator
@inline function roundF16(x: f32): f32 {
  const b = reinterpret<u32>(x);
  const s = b & 0x80000000;
  const a = b & 0x7fffffff;
  if (a >= 0x7f800000) return x; // ±Inf, NaN
  if (a >= 0x477ff000) return reinterpret<f32>(s | 0x7f800000); // |x| ≥ 65520: ±Inf
  if (a >= 0x38800000) return reinterpret<f32>(s | ((a + 0xfff + ((a >> 13) & 1)) & 0xffffe000));
  return reinterpret<f32>(s | reinterpret<u32>(nearest<f32>(reinterpret<f32>(a) * 16777216) * 5.9604644775390625e-8));
}

/** roundF16 on four lanes: each case computed, then selected by the magnitude's bits. */
// @ts-ignore: decorator
@inline function roundF16x4(x: v128): v128 {
  const s = v128.and(x, i32x4.splat(0x80000000));
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  const normal = v128.and(i32x4.add(i32x4.add(a, i32x4.splat(0xfff)), v128.and(i32x4.shr_u(a, 13), i32x4.splat(1))), i32x4.splat(0xffffe000));
  const subnormal = f32x4.mul(f32x4.nearest(f32x4.mul(a, f32x4.splat(16777216))), f32x4.splat(5.9604644775390625e-8));
  let r = v128.bitselect(subnormal, normal, i32x4.lt_u(a, i32x4.splat(0x38800000)));
  r = v128.bitselect(i32x4.splat(0x7f800000), r, i32x4.ge_u(a, i32x4.splat(0x477ff000)));
  r = v128.bitselect(a, r, i32x4.ge_u(a, i32x4.splat(0x7f800000)));
  return v128.or(r, s);
}

/** Whether `op` has a 4-lane form (the others run one lane at a time). */
// @ts-ignore: decorator
@inline export function vectorised(op: i32): bool {
  return op == OPCODE_add || op == OPCODE_sub || op == OPCODE_mul || op == OPCODE_div || op == OPCODE_relu || op == OPCODE_scale || op == OPCODE_relu_grad || op == OPCODE_rsqrt || op == OPCODE_round_f16;
}

/** Four lanes of a vectorised op; p and q splatted. */
// @ts-ignore: decorator
@inline export function vop(op: i32, a: v128, b: v128, p: v128, q: v128): v128 {
  if (op == OPCODE_add) return f32x4.add(a, b);
  if (op == OPCODE_sub) return f32x4.sub(a, b);
  if (op == OPCODE_mul) return f32x4.mul(a, b);
  if (op == OPCODE_div) return f32x4.div(a, b);
  if (op == OPCODE_relu) return f32x4.max(a, f32x4.splat(0));
  if (op == OPCODE_scale) return f32x4.add(f32x4.mul(a, p), q); // a multiply, then an add
  if (op == OPCODE_relu_grad) return v128.and(b, f32x4.gt(a, f32x4.splat(0))); // (x = a, dy = b)
  if (op == OPCODE_rsqrt) return f32x4.div(f32x4.splat(1), f32x4.sqrt(a)); // correctly rounded sqrt, then divide
  if (op == OPCODE_round_f16) return roundF16x4(a);
  unreachable();
  return a;
}

/** One lane of any op. */
// @ts-ignore: decorator
@inline export function sop(op: i32, a: f32, b: f32, p: f32, q: f32): f32 {
  if (op == OPCODE_add) return a + b;
  if (op == OPCODE_sub) return a - b;
  if (op == OPCODE_mul) return a * b;
  if (op == OPCODE_div) return a / b;
  if (op == OPCODE_relu) return max(a, 0);
  if (op == OPCODE_exp) return Mathf.exp(a);
  if (op == OPCODE_softplus) return a > 20 ? a : log1pf(Mathf.exp(a)); // PyTorch: β = 1, threshold 20
  if (op == OPCODE_scale) return a * p + q;
  if (op == OPCODE_relu_grad) return a > 0 ? b : 0;
  if (op == OPCODE_softplus_grad) return a > 20 ? b : b / (1 + Mathf.exp(-a)); // dy·σ(x)
  if (op == OPCODE_rsqrt) return 1 / Mathf.sqrt(a);
  if (op == OPCODE_round_f16) return roundF16(a);
  unreachable();
  return a;
}

/** y[i] = op(a[i], b[i]; p, q) for i < n: 4 lanes at a time where the op has that form, then one. */
// @ts-ignore: decorator
@inline function mapRun(op: i32, y: usize, a: usize, b: usize, p: f32, q: f32, n: i32): void {
  let i = 0;
  if (vectorised(op)) {
    const vp = f32x4.splat(p);
    const vq = f32x4.splat(q);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, v128.load(a + o), v128.load(b + o), vp, vq));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, sop(op, load<f32>(a + o), load<f32>(b + o), p, q));
  }
}

/** y[i] = op(a[i], b[i]; p, q) for i < n, with one loop specialised per op; y may be a or b. */
export function pointwise(op: i32, y: usize, a: usize, b: usize, p: f32, q: f32, n: i32): void {
  switch (op) {
    case OPCODE_add: mapRun(OPCODE_add, y, a, b, p, q, n); break;
    case OPCODE_sub: mapRun(OPCODE_sub, y, a, b, p, q, n); break;
    case OPCODE_mul: mapRun(OPCODE_mul, y, a, b, p, q, n); break;
    case OPCODE_div: mapRun(OPCODE_div, y, a, b, p, q, n); break;
    case OPCODE_relu: mapRun(OPCODE_relu, y, a, b, p, q, n); break;
    case OPCODE_exp: mapRun(OPCODE_exp, y, a, b, p, q, n); break;
    case OPCODE_softplus: mapRun(OPCODE_softplus, y, a, b, p, q, n); break;
    case OPCODE_scale: mapRun(OPCODE_scale, y, a, b, p, q, n); break;
    case OPCODE_relu_grad: mapRun(OPCODE_relu_grad, y, a, b, p, q, n); break;
    case OPCODE_softplus_grad: mapRun(OPCODE_softplus_grad, y, a, b, p, q, n); break;
    case OPCODE_rsqrt: mapRun(OPCODE_rsqrt, y, a, b, p, q, n); break;
    case OPCODE_round_f16: mapRun(OPCODE_round_f16, y, a, b, p, q, n); break;
    default: unreachable();
  }
}
