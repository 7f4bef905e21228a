// AssemblyScript kernels of the loss family. Byte offsets in, nothing allocated.

// Σ (xhat − x)²: f32x4 partials over blocks of 1024, each block flushed into an f64 total so
// that millions of terms do not lose precision.
export function sse(xh: usize, x: usize, out: usize, n: i32): void {
  let total: f64 = 0;
  let i = 0;
  while (i + 4 <= n) {
    let acc = f32x4.splat(0);
    const end = min(n & ~3, i + 1024);
    for (; i < end; i += 4) {
      const o = <usize>i << 2;
      const d = f32x4.sub(v128.load(xh + o), v128.load(x + o));
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    total += <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  }
  for (; i < n; i++) {
    const d = <f64>load<f32>(xh + (<usize>i << 2)) - <f64>load<f32>(x + (<usize>i << 2));
    total += d * d;
  }
  store<f32>(out, <f32>total);
}

export function sse_grad(xh: usize, x: usize, ds: usize, dxh: usize, dx: usize, n: i32): void {
  const s = load<f32>(ds) * 2;
  const sv = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const d = f32x4.mul(sv, f32x4.sub(v128.load(xh + o), v128.load(x + o)));
    v128.store(dxh + o, d);
    v128.store(dx + o, f32x4.neg(d));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const d = s * (load<f32>(xh + o) - load<f32>(x + o));
    store<f32>(dxh + o, d);
    store<f32>(dx + o, -d);
  }
}

// The exp-based kernels are scalar: wasm SIMD has no exp, and Mathf.exp is accurate to < 1 ulp.
export function kld(mu: usize, lv: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const m = load<f32>(mu + o);
    const l = load<f32>(lv + o);
    store<f32>(y + o, -0.5 * (1 + l - m * m - Mathf.exp(l)));
  }
}

export function kld_grad(mu: usize, lv: usize, dy: usize, dmu: usize, dlv: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(dy + o);
    store<f32>(dmu + o, g * load<f32>(mu + o));
    store<f32>(dlv + o, 0.5 * g * (Mathf.exp(load<f32>(lv + o)) - 1));
  }
}

export function reparam(mu: usize, lv: usize, e: usize, z: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(z + o, load<f32>(mu + o) + load<f32>(e + o) * Mathf.exp(0.5 * load<f32>(lv + o)));
  }
}

export function reparam_grad(lv: usize, e: usize, dz: usize, dlv: usize, de: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const d = load<f32>(dz + o) * Mathf.exp(0.5 * load<f32>(lv + o));
    store<f32>(dlv + o, 0.5 * d * load<f32>(e + o));
    store<f32>(de + o, d);
  }
}
