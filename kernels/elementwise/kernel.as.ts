// AssemblyScript elementwise kernels: 4 lanes at a time with v128, then a scalar tail.
// Arguments are byte offsets into the one imported memory; nothing here allocates.

export function relu(x: usize, y: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + (<usize>i << 2), f32x4.max(v128.load(x + (<usize>i << 2)), zero));
  for (; i < n; i++) store<f32>(y + (<usize>i << 2), max(load<f32>(x + (<usize>i << 2)), 0));
}

export function relu_grad(x: usize, dy: usize, dx: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const mask = f32x4.gt(v128.load(x + o), zero);
    v128.store(dx + o, v128.and(v128.load(dy + o), mask));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(x + o) > 0 ? load<f32>(dy + o) : 0);
  }
}

/** log(1 + u) without losing u when it is below f32 epsilon (Goldberg's trick). */
// @ts-ignore: decorator
@inline function log1pf(u: f32): f32 {
  const w: f32 = 1 + u;
  return w == 1 ? u : Mathf.log(w) * (u / (w - 1));
}

export function ew_exp(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, Mathf.exp(load<f32>(x + o)));
  }
}

/** PyTorch's softplus with β = 1, threshold 20. */
export function ew_softplus(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(y + o, v > 20 ? v : log1pf(Mathf.exp(v)));
  }
}

/** dy·σ(x), and dy itself above the threshold. */
export function ew_softplus_grad(x: usize, dy: usize, dx: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    const g = load<f32>(dy + o);
    store<f32>(dx + o, v > 20 ? g : g / (1 + Mathf.exp(-v)));
  }
}

export function ew_scale(x: usize, y: usize, n: i32, a: f32, b: f32): void {
  const va = f32x4.splat(a);
  const vb = f32x4.splat(b);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(f32x4.mul(v128.load(x + o), va), vb));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(x + o) * a + b);
  }
}

// Binary ops: 0 add, 1 sub, 2 mul, 3 div. `op` is a literal wherever these are inlined, so the
// branches fold away and each loop below is specialised per op.
// @ts-ignore: decorator
@inline function vop(op: i32, a: v128, b: v128): v128 {
  if (op == 0) return f32x4.add(a, b);
  if (op == 1) return f32x4.sub(a, b);
  if (op == 2) return f32x4.mul(a, b);
  return f32x4.div(a, b);
}

// @ts-ignore: decorator
@inline function sop(op: i32, a: f32, b: f32): f32 {
  if (op == 0) return a + b;
  if (op == 1) return a - b;
  if (op == 2) return a * b;
  return a / b;
}

/**
 * One contiguous row of n outputs; each input either walks along (step 1) or stays on one
 * value (step 0: a scalar, or a per-channel value over a row of pixels).
 */
// @ts-ignore: decorator
@inline function row(op: i32, a: usize, sa: i32, b: usize, sb: i32, y: usize, n: i32): void {
  let i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, v128.load(a + o), v128.load(b + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, sop(op, load<f32>(a + o), load<f32>(b + o)));
    }
  } else if (sa == 1) {
    const s = load<f32>(b);
    const vs = f32x4.splat(s);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, v128.load(a + o), vs));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, sop(op, load<f32>(a + o), s));
    }
  } else if (sb == 1) {
    const s = load<f32>(a);
    const vs = f32x4.splat(s);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, vop(op, vs, v128.load(b + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, sop(op, s, load<f32>(b + o)));
    }
  } else {
    const s = sop(op, load<f32>(a), load<f32>(b));
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
 * y = a ∘ b over a collapsed, broadcast iteration space of 6 axes (d*, outermost first) with
 * element strides a*, b* (0 on broadcast axes); y is contiguous. The innermost stride of each
 * input is 0 or 1.
 */
export function ew_binary(
  op: i32, a: usize, b: usize, y: usize,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32,
  b0: i32, b1: i32, b2: i32, b3: i32, b4: i32, b5: i32,
): void {
  if (op == 0) rows(0, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else if (op == 1) rows(1, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else if (op == 2) rows(2, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
  else rows(3, a, b, y, d0, d1, d2, d3, d4, d5, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5);
}
