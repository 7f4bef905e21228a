// AssemblyScript Philox4x32-10, bit-identical to the float64 oracle and the WGSL shader (see
// random/index.ts for the layout). Scalar: the 32×32→64 products need u64 per lane, and the
// Box–Muller transform is computed in f64 (Math.log/cos/sin) and rounded once to f32.

// @ts-ignore: decorator
@inline function mulhi(a: u32, b: u32): u32 {
  return <u32>((<u64>a * <u64>b) >> 32);
}

export function philox_fill(y: usize, n: i32, key0: u32, key1: u32, offLo: u32, offHi: u32, mode: i32): void {
  const blocks = (n + 3) >> 2;
  const U24: f64 = 5.9604644775390625e-8;
  for (let b = 0; b < blocks; b++) {
    let c0: u32 = offLo + <u32>b;
    let c1: u32 = offHi + (c0 < <u32>b ? 1 : 0);
    let c2: u32 = 0, c3: u32 = 0;
    let k0 = key0, k1 = key1;
    for (let r = 0; r < 10; r++) {
      const hi0 = mulhi(0xd2511f53, c0), lo0 = 0xd2511f53 * c0;
      const hi1 = mulhi(0xcd9e8d57, c2), lo1 = 0xcd9e8d57 * c2;
      c0 = hi1 ^ c1 ^ k0;
      c1 = lo1;
      c2 = hi0 ^ c3 ^ k1;
      c3 = lo0;
      k0 += 0x9e3779b9;
      k1 += 0xbb67ae85;
    }
    const base = b << 2;
    if (mode == 0) {
      put(y, base, n, reinterpret<f32>(c0));
      put(y, base + 1, n, reinterpret<f32>(c1));
      put(y, base + 2, n, reinterpret<f32>(c2));
      put(y, base + 3, n, reinterpret<f32>(c3));
    } else if (mode == 1) {
      put(y, base, n, <f32>(<f64>(c0 >> 8) * U24));
      put(y, base + 1, n, <f32>(<f64>(c1 >> 8) * U24));
      put(y, base + 2, n, <f32>(<f64>(c2 >> 8) * U24));
      put(y, base + 3, n, <f32>(<f64>(c3 >> 8) * U24));
    } else {
      boxMuller(y, base, n, c0, c1);
      boxMuller(y, base + 2, n, c2, c3);
    }
  }
}

// @ts-ignore: decorator
@inline function put(y: usize, i: i32, n: i32, v: f32): void {
  if (i < n) store<f32>(y + (<usize>i << 2), v);
}

function boxMuller(y: usize, i: i32, n: i32, x0: u32, x1: u32): void {
  const U24: f64 = 5.9604644775390625e-8;
  const r = Math.sqrt(-2 * Math.log((<f64>(x0 >> 8) + 1) * U24));
  const th = 2 * Math.PI * (<f64>(x1 >> 8) * U24 - 0.5);
  put(y, i, n, <f32>(r * Math.cos(th)));
  put(y, i + 1, n, <f32>(r * Math.sin(th)));
}
