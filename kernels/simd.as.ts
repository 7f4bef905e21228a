// SIMD helpers shared by the kernel families (imported, not exported from the module).

/** Stores the transpose of the 4×4 block with rows v0…v3: its column c at dst + c·stride bytes. */
// @ts-ignore: decorator
@inline export function transpose4_store(v0: v128, v1: v128, v2: v128, v3: v128, dst: usize, stride: usize): void {
  const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(dst + stride, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/**
 * a·b + c. The relaxed-SIMD build (build/kernels-fma.wasm, kernels-mt-fma.wasm) fuses it into one
 * FMA per lane where the CPU has one: one rounding instead of two, so its bits differ from the
 * exact build's, and may differ between machines (relaxed SIMD lets the engine choose), never
 * between runs or thread counts on one machine. runtime/wasm.ts picks that build where the
 * engine has relaxed SIMD (`fma`).
 */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// Short runs (the conv kernels' staged image rows, the fused interpreter's chunks: a few to a
// thousand floats) copied and filled with vector stores: memory.copy and memory.fill leave Wasm
// for the engine's runtime on every call, which costs more than such a run.

/** n floats from src to dst, in ascending order (dst may equal src, not overlap it otherwise). */
// @ts-ignore: decorator
@inline export function copy_floats(dst: usize, src: usize, n: i32): void {
  const end = dst + (<usize>n << 2);
  for (; dst + 16 <= end; dst += 16, src += 16) v128.store(dst, v128.load(src));
  for (; dst < end; dst += 4, src += 4) store<f32>(dst, load<f32>(src));
}

/** n copies of x at dst. */
// @ts-ignore: decorator
@inline export function fill_floats(dst: usize, x: f32, n: i32): void {
  const end = dst + (<usize>n << 2);
  const v = f32x4.splat(x);
  for (; dst + 16 <= end; dst += 16) v128.store(dst, v);
  for (; dst < end; dst += 4) store<f32>(dst, x);
}
