// AssemblyScript kernel of Adam: four lanes at a time, p, m and v updated in place.
// The scalars arrive as f64 (JS numbers) and are rounded to f32 once, as the WGSL uniform is.

export function adam(p: usize, g: usize, m: usize, v: usize, n: i32, w1d: f64, beta2d: f64, w2d: f64, stepSized: f64, bc2Sqrtd: f64, epsd: f64): void {
  const w1 = <f32>w1d, beta2 = <f32>beta2d, w2 = <f32>w2d, stepSize = <f32>stepSized, bc2Sqrt = <f32>bc2Sqrtd, eps = <f32>epsd;
  const W1 = f32x4.splat(w1), B2 = f32x4.splat(beta2), W2 = f32x4.splat(w2), SS = f32x4.splat(stepSize), BC = f32x4.splat(bc2Sqrt), E = f32x4.splat(eps);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    const m0 = v128.load(m + o);
    const m1 = f32x4.add(m0, f32x4.mul(W1, f32x4.sub(gv, m0)));
    const v1 = f32x4.add(f32x4.mul(B2, v128.load(v + o)), f32x4.mul(f32x4.mul(W2, gv), gv));
    v128.store(m + o, m1);
    v128.store(v + o, v1);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(v1), BC), E);
    v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.div(f32x4.mul(SS, m1), denom)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const m0 = load<f32>(m + o);
    const m1 = m0 + w1 * (gi - m0);
    const v1 = beta2 * load<f32>(v + o) + w2 * gi * gi;
    store<f32>(m + o, m1);
    store<f32>(v + o, v1);
    store<f32>(p + o, load<f32>(p + o) - (stepSize * m1) / (Mathf.sqrt(v1) / bc2Sqrt + eps));
  }
}
