// AssemblyScript kernels of spectral normalisation: row-wise SIMD axpy and dot products over
// W [O, K]; norms accumulate in f64. `u` is read, then overwritten with u' (in place).

// @ts-ignore: decorator
@inline function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

function dot(a: usize, b: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let i = 0;
  let t: f64 = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  for (; i < n; i++) t += <f64>load<f32>(a + (<usize>i << 2)) * <f64>load<f32>(b + (<usize>i << 2));
  return t + hsum(acc);
}

/** x ← x / max(‖x‖, eps); returns the scale. */
function normalize(x: usize, n: i32, eps: f64): f64 {
  let ss: f64 = 0;
  for (let i = 0; i < n; i++) {
    const t = <f64>load<f32>(x + (<usize>i << 2));
    ss += t * t;
  }
  const scale = 1 / Math.max(Math.sqrt(ss), eps);
  for (let i = 0; i < n; i++) store<f32>(x + (<usize>i << 2), <f32>(<f64>load<f32>(x + (<usize>i << 2)) * scale));
  return scale;
}

export function sn_sigma(w: usize, u: usize, sigma: usize, v: usize, O: i32, K: i32, eps: f64): void {
  // v = Wᵀu as a sum of rows scaled by u[o] (row-major W: contiguous SIMD axpys).
  memory.fill(v, 0, <usize>K << 2);
  for (let o = 0; o < O; o++) {
    const uo = load<f32>(u + (<usize>o << 2));
    const U = f32x4.splat(uo);
    const row = w + ((<usize>o * <usize>K) << 2);
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const q = <usize>k << 2;
      v128.store(v + q, f32x4.add(v128.load(v + q), f32x4.mul(U, v128.load(row + q))));
    }
    for (; k < K; k++) {
      const q = <usize>k << 2;
      store<f32>(v + q, load<f32>(v + q) + uo * load<f32>(row + q));
    }
  }
  normalize(v, K, eps);
  // u is no longer needed: W v goes straight into it, then becomes u'.
  for (let o = 0; o < O; o++) store<f32>(u + (<usize>o << 2), <f32>dot(w + ((<usize>o * <usize>K) << 2), v, K));
  let ss: f64 = 0;
  for (let o = 0; o < O; o++) {
    const t = <f64>load<f32>(u + (<usize>o << 2));
    ss += t * t;
  }
  const scale = 1 / Math.max(Math.sqrt(ss), eps);
  store<f32>(sigma, <f32>(ss * scale));
  for (let o = 0; o < O; o++) store<f32>(u + (<usize>o << 2), <f32>(<f64>load<f32>(u + (<usize>o << 2)) * scale));
}

export function sn_sigma_grad(ds: usize, u: usize, v: usize, dw: usize, O: i32, K: i32): void {
  const d = load<f32>(ds);
  for (let o = 0; o < O; o++) {
    const a = d * load<f32>(u + (<usize>o << 2));
    const A = f32x4.splat(a);
    const row = dw + ((<usize>o * <usize>K) << 2);
    let k = 0;
    for (; k + 4 <= K; k += 4) v128.store(row + (<usize>k << 2), f32x4.mul(A, v128.load(v + (<usize>k << 2))));
    for (; k < K; k++) store<f32>(row + (<usize>k << 2), a * load<f32>(v + (<usize>k << 2)));
  }
}
