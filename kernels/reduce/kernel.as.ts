// AssemblyScript kernels of the reduce family over a collapsed 6-axis iteration space (axes
// outermost first; x contiguous, so its innermost stride is 1). Nothing here allocates.

/** Σ of n contiguous floats, 4 lanes at a time. */
// @ts-ignore: decorator
@inline function rowSum(x: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, v128.load(x + (<usize>i << 2)));
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; i < n; i++) s += load<f32>(x + (<usize>i << 2));
  return s;
}

/** y[0..n) += x[0..n). */
// @ts-ignore: decorator
@inline function rowAdd(y: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o));
  }
}

/**
 * y = scale · Σ over the axes where y's stride is 0. d*: extents; x*: strides of x; y*: strides
 * of y (0 on reduced axes). nOut: y's element count.
 */
export function rd_sum(
  x: usize, y: usize, nOut: i32, scale: f32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  x0: i32, x1: i32, x2: i32, x3: i32, x4: i32, x5: i32,
  y0: i32, y1: i32, y2: i32, y3: i32, y4: i32, y5: i32,
): void {
  memory.fill(y, 0, <usize>nOut << 2);
  for (let i0 = 0; i0 < d0; i0++)
    for (let i1 = 0; i1 < d1; i1++)
      for (let i2 = 0; i2 < d2; i2++)
        for (let i3 = 0; i3 < d3; i3++)
          for (let i4 = 0; i4 < d4; i4++) {
            const xo = x + (<usize>(i0 * x0 + i1 * x1 + i2 * x2 + i3 * x3 + i4 * x4) << 2);
            const yo = y + (<usize>(i0 * y0 + i1 * y1 + i2 * y2 + i3 * y3 + i4 * y4) << 2);
            if (y5 == 0) store<f32>(yo, load<f32>(yo) + rowSum(xo, d5));
            else rowAdd(yo, xo, d5);
          }
  if (scale != 1) {
    const vs = f32x4.splat(scale);
    let i = 0;
    for (; i + 4 <= nOut; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.mul(v128.load(y + o), vs));
    }
    for (; i < nOut; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, load<f32>(y + o) * scale);
    }
  }
}

/** y (contiguous) = x read with strides x* (0 on broadcast axes; the innermost is 0 or 1). */
export function rd_broadcast(
  x: usize, y: usize,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  x0: i32, x1: i32, x2: i32, x3: i32, x4: i32, x5: i32,
): void {
  let yo: usize = y;
  const rowBytes = <usize>d5 << 2;
  for (let i0 = 0; i0 < d0; i0++)
    for (let i1 = 0; i1 < d1; i1++)
      for (let i2 = 0; i2 < d2; i2++)
        for (let i3 = 0; i3 < d3; i3++)
          for (let i4 = 0; i4 < d4; i4++) {
            const xo = x + (<usize>(i0 * x0 + i1 * x1 + i2 * x2 + i3 * x3 + i4 * x4) << 2);
            if (x5 != 0) memory.copy(yo, xo, rowBytes);
            else {
              const s = load<f32>(xo);
              const vs = f32x4.splat(s);
              let i = 0;
              for (; i + 4 <= d5; i += 4) v128.store(yo + (<usize>i << 2), vs);
              for (; i < d5; i++) store<f32>(yo + (<usize>i << 2), s);
            }
            yo += rowBytes;
          }
}
