// AssemblyScript kernels of BatchNorm. A channel's values are B rows of S contiguous floats
// (row (b, c) starts at (b·C + c)·S): rows run 4 lanes at a time, and each row's f32x4 partial
// is added into an f64 total so that long channels keep their precision.

// @ts-ignore: decorator
@inline function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

// @ts-ignore: decorator
@inline function rowPtr(base: usize, b: i32, c: i32, C: i32, S: i32): usize {
  return base + ((<usize>(b * C + c) * <usize>S) << 2);
}

/** Σ over a row of (x − m) (square = 0) or (x − m)² (square = 1). */
function rowSum(p: usize, S: i32, m: f32, square: i32): f64 {
  const mv = f32x4.splat(m);
  let acc = f32x4.splat(0);
  let s = 0;
  let t: f64 = 0;
  if (square) {
    for (; s + 4 <= S; s += 4) {
      const d = f32x4.sub(v128.load(p + (<usize>s << 2)), mv);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    for (; s < S; s++) {
      const d = <f64>(load<f32>(p + (<usize>s << 2)) - m);
      t += d * d;
    }
  } else {
    for (; s + 4 <= S; s += 4) acc = f32x4.add(acc, f32x4.sub(v128.load(p + (<usize>s << 2)), mv));
    for (; s < S; s++) t += <f64>(load<f32>(p + (<usize>s << 2)) - m);
  }
  return t + hsum(acc);
}

/** Batch statistics per channel and the in-place running-statistics update (unbiased variance). */
export function bn_stats(x: usize, mean: usize, invstd: usize, rm: usize, rv: usize, B: i32, C: i32, S: i32, eps: f64, mom: f64): void {
  const N = <f64>B * <f64>S;
  for (let c = 0; c < C; c++) {
    let sum: f64 = 0;
    for (let b = 0; b < B; b++) sum += rowSum(rowPtr(x, b, c, C, S), S, 0, 0);
    const m = sum / N;
    let sq: f64 = 0;
    for (let b = 0; b < B; b++) sq += rowSum(rowPtr(x, b, c, C, S), S, <f32>m, 1);
    const o = <usize>c << 2;
    store<f32>(mean + o, <f32>m);
    store<f32>(invstd + o, <f32>(1 / Math.sqrt(sq / N + eps)));
    store<f32>(rm + o, <f32>((1 - mom) * <f64>load<f32>(rm + o) + mom * m));
    store<f32>(rv + o, <f32>((1 - mom) * <f64>load<f32>(rv + o) + (mom * sq) / (N - 1)));
  }
}

// @ts-ignore: decorator
@inline function invOf(st: usize, c: i32, evalMode: i32, eps: f64): f32 {
  const v = load<f32>(st + (<usize>c << 2));
  return evalMode ? <f32>(1 / Math.sqrt(<f64>v + eps)) : v;
}

/** y = (x − mean)·invstd·γ + β; in eval mode `st` holds running_var and invstd is derived. */
export function bn_apply(x: usize, g: usize, bt: usize, m: usize, st: usize, y: usize, B: i32, C: i32, S: i32, evalMode: i32, eps: f64): void {
  for (let c = 0; c < C; c++) {
    const o = <usize>c << 2;
    const mc = load<f32>(m + o);
    const sc = invOf(st, c, evalMode, eps) * load<f32>(g + o);
    const bc = load<f32>(bt + o);
    const M = f32x4.splat(mc), SC = f32x4.splat(sc), BC = f32x4.splat(bc);
    for (let b = 0; b < B; b++) {
      const px = rowPtr(x, b, c, C, S);
      const py = rowPtr(y, b, c, C, S);
      let s = 0;
      for (; s + 4 <= S; s += 4) {
        const q = <usize>s << 2;
        v128.store(py + q, f32x4.add(f32x4.mul(f32x4.sub(v128.load(px + q), M), SC), BC));
      }
      for (; s < S; s++) {
        const q = <usize>s << 2;
        store<f32>(py + q, (load<f32>(px + q) - mc) * sc + bc);
      }
    }
  }
}

// dy, or with `mask` (not 0) relu's gradient folded in: dy where mask > 0, else 0, the bits of
// relu_grad(mask, dy) (kernels/elementwise/pointwise.as.ts), so that it needs no launch of its own.
// @ts-ignore: decorator
@inline function dy4(pd: usize, pm: usize, q: usize): v128 {
  const d = v128.load(pd + q);
  return pm ? v128.and(d, f32x4.gt(v128.load(pm + q), f32x4.splat(0))) : d;
}

// @ts-ignore: decorator
@inline function dy1(pd: usize, pm: usize, q: usize): f32 {
  const d = load<f32>(pd + q);
  return pm && !(load<f32>(pm + q) > 0) ? 0 : d;
}

/** dβ = Σ dy, dγ = Σ dy·(x − mean)·invstd per channel (dy masked by `mask` when it is not 0). */
export function bn_grad_sums(x: usize, dy: usize, m: usize, st: usize, dg: usize, db: usize, B: i32, C: i32, S: i32, evalMode: i32, eps: f64, mask: usize): void {
  for (let c = 0; c < C; c++) {
    const mc = load<f32>(m + (<usize>c << 2));
    const M = f32x4.splat(mc);
    let tb: f64 = 0;
    let tg: f64 = 0;
    for (let b = 0; b < B; b++) {
      const px = rowPtr(x, b, c, C, S);
      const pd = rowPtr(dy, b, c, C, S);
      const pm = mask ? rowPtr(mask, b, c, C, S) : 0;
      let ab = f32x4.splat(0);
      let ag = f32x4.splat(0);
      let s = 0;
      for (; s + 4 <= S; s += 4) {
        const q = <usize>s << 2;
        const d = dy4(pd, pm, q);
        ab = f32x4.add(ab, d);
        ag = f32x4.add(ag, f32x4.mul(d, f32x4.sub(v128.load(px + q), M)));
      }
      for (; s < S; s++) {
        const q = <usize>s << 2;
        const d = dy1(pd, pm, q);
        tb += d;
        tg += <f64>(d * (load<f32>(px + q) - mc));
      }
      tb += hsum(ab);
      tg += hsum(ag);
    }
    store<f32>(db + (<usize>c << 2), <f32>tb);
    store<f32>(dg + (<usize>c << 2), <f32>(tg * <f64>invOf(st, c, evalMode, eps)));
  }
}

/** training: dx = γ·invstd·(dy − (dβ + x̂·dγ)/N); eval: dx = γ·invstd·dy (dy masked as in bn_grad_sums). */
export function bn_grad_dx(x: usize, dy: usize, m: usize, st: usize, g: usize, dg: usize, db: usize, dx: usize, B: i32, C: i32, S: i32, evalMode: i32, eps: f64, mask: usize): void {
  const invN = <f32>(1 / (<f64>B * <f64>S));
  for (let c = 0; c < C; c++) {
    const o = <usize>c << 2;
    const mc = load<f32>(m + o);
    const inv = invOf(st, c, evalMode, eps);
    const k = load<f32>(g + o) * inv;
    // Training: dx = k·dy − k·(dβ/N) − k·(dγ/N)·inv·(x − mean) = k·dy + a + b·x.
    const cb: f32 = evalMode ? 0 : load<f32>(db + o) * invN;
    const cg: f32 = evalMode ? 0 : load<f32>(dg + o) * invN * inv;
    const K = f32x4.splat(k), M = f32x4.splat(mc), CB = f32x4.splat(cb), CG = f32x4.splat(cg);
    for (let b = 0; b < B; b++) {
      const px = rowPtr(x, b, c, C, S);
      const pd = rowPtr(dy, b, c, C, S);
      const po = rowPtr(dx, b, c, C, S);
      const pm = mask ? rowPtr(mask, b, c, C, S) : 0;
      let s = 0;
      for (; s + 4 <= S; s += 4) {
        const q = <usize>s << 2;
        const t = f32x4.sub(f32x4.sub(dy4(pd, pm, q), CB), f32x4.mul(CG, f32x4.sub(v128.load(px + q), M)));
        v128.store(po + q, f32x4.mul(K, t));
      }
      for (; s < S; s++) {
        const q = <usize>s << 2;
        store<f32>(po + q, k * (dy1(pd, pm, q) - cb - cg * (load<f32>(px + q) - mc)));
      }
    }
  }
}
