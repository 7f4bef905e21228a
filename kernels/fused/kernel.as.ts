// The `fused` op's interpreter: a tiny register machine over chunks of CHUNK elements. Each
// register holds one chunk (CHUNK f32 in scratch memory); an instruction runs over the whole
// chunk with f32x4 lanes, so dispatch costs one branch per instruction per CHUNK elements and
// intermediate values stay in cache instead of going through whole tensors.
// The descriptor (see kernels/fused/index.ts, wasm()) is written by the host with fused_poke.
// Nothing here allocates.

const CHUNK: i32 = 64;
const REG_BYTES: usize = <usize>CHUNK << 2;
const IN: usize = 16 << 2; // byte offsets of the descriptor's sections
const DIMS: usize = 8 << 2;

/** Host → memory: one 32-bit word of a descriptor. */
export function fused_poke(ptr: usize, v: i32): void {
  store<i32>(ptr, v);
}

/** log(1 + u) without losing u when it is below f32 epsilon (as ew_softplus). */
// @ts-ignore: decorator
@inline function log1pf(u: f32): f32 {
  const w: f32 = 1 + u;
  return w == 1 ? u : Mathf.log(w) * (u / (w - 1));
}

// @ts-ignore: decorator
@inline function copyRun(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

// @ts-ignore: decorator
@inline function fillRun(dst: usize, x: f32, n: i32): void {
  const v = f32x4.splat(x);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v);
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), x);
}

/**
 * Loads elements [start, start+len) of the iteration space of input `inp` (descriptor entry:
 * ptr, contiguous flag, 6 strides) into register `dst`. Contiguous inputs are one copy; others
 * walk the 6-axis space in runs along the innermost axis, where the stride is 1 (a copy) or 0
 * (a broadcast value: a fill).
 */
function gather(d: usize, inp: usize, start: i32, len: i32, dst: usize): void {
  const base = <usize>load<i32>(inp);
  if (load<i32>(inp, 4)) {
    copyRun(dst, base + (<usize>start << 2), len);
    return;
  }
  const st = inp + 8;
  const d5 = load<i32>(d + DIMS, 20);
  // Multi-index of `start`, innermost axis first.
  let r = start;
  let i5 = r % d5; r /= d5;
  const d4 = load<i32>(d + DIMS, 16);
  let i4 = r % d4; r /= d4;
  const d3 = load<i32>(d + DIMS, 12);
  let i3 = r % d3; r /= d3;
  const d2 = load<i32>(d + DIMS, 8);
  let i2 = r % d2; r /= d2;
  const d1 = load<i32>(d + DIMS, 4);
  let i1 = r % d1; r /= d1;
  let i0 = r;
  const s0 = load<i32>(st), s1 = load<i32>(st, 4), s2 = load<i32>(st, 8), s3 = load<i32>(st, 12), s4 = load<i32>(st, 16), s5 = load<i32>(st, 20);
  let k = 0;
  while (k < len) {
    const off = i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4 + i5 * s5;
    const run = min(d5 - i5, len - k);
    const src = base + (<usize>off << 2);
    if (s5 == 0) fillRun(dst + (<usize>k << 2), load<f32>(src), run);
    else copyRun(dst + (<usize>k << 2), src, run);
    k += run;
    // Next row: carry through the outer axes.
    i5 = 0;
    if (++i4 == d4) {
      i4 = 0;
      if (++i3 == d3) {
        i3 = 0;
        if (++i2 == d2) {
          i2 = 0;
          if (++i1 == d1) {
            i1 = 0;
            i0++;
          }
        }
      }
    }
  }
}

/** Runs the program of descriptor `d` over the whole output. */
export function fused_run(d: usize): void {
  const nInstr = load<i32>(d);
  const n = load<i32>(d, 4);
  const regs = <usize>load<i32>(d, 8);
  const nIn = load<i32>(d, 12);
  const nOut = load<i32>(d, 16);
  const outs = d + IN + (<usize>(8 * nIn) << 2);
  const code = outs + (<usize>nOut << 2);
  for (let start = 0; start < n; start += CHUNK) {
    const len = min(CHUNK, n - start);
    const quads = (len + 3) >> 2;
    for (let p = 0; p < nInstr; p++) {
      const w = code + <usize>(p * 20);
      const op = load<i32>(w);
      const dst = regs + <usize>load<i32>(w, 4) * REG_BYTES;
      const a = load<i32>(w, 8);
      const ra = regs + <usize>a * REG_BYTES;
      const rb = regs + <usize>load<i32>(w, 12) * REG_BYTES;
      switch (op) {
        case 0: // load input a
          gather(d, d + IN + (<usize>(8 * a) << 2), start, len, dst);
          break;
        case 1: // const (bits in a)
          fillRun(dst, reinterpret<f32>(a), len);
          break;
        case 2:
          for (let q = 0; q < quads; q++) v128.store(dst + (<usize>q << 4), f32x4.add(v128.load(ra + (<usize>q << 4)), v128.load(rb + (<usize>q << 4))));
          break;
        case 3:
          for (let q = 0; q < quads; q++) v128.store(dst + (<usize>q << 4), f32x4.sub(v128.load(ra + (<usize>q << 4)), v128.load(rb + (<usize>q << 4))));
          break;
        case 4:
          for (let q = 0; q < quads; q++) v128.store(dst + (<usize>q << 4), f32x4.mul(v128.load(ra + (<usize>q << 4)), v128.load(rb + (<usize>q << 4))));
          break;
        case 5:
          for (let q = 0; q < quads; q++) v128.store(dst + (<usize>q << 4), f32x4.div(v128.load(ra + (<usize>q << 4)), v128.load(rb + (<usize>q << 4))));
          break;
        case 6: {
          const zero = f32x4.splat(0);
          for (let q = 0; q < quads; q++) v128.store(dst + (<usize>q << 4), f32x4.max(v128.load(ra + (<usize>q << 4)), zero));
          break;
        }
        case 7:
          for (let i = 0; i < len; i++) store<f32>(dst + (<usize>i << 2), Mathf.exp(load<f32>(ra + (<usize>i << 2))));
          break;
        case 8:
          for (let i = 0; i < len; i++) {
            const x = load<f32>(ra + (<usize>i << 2));
            store<f32>(dst + (<usize>i << 2), x > 20 ? x : log1pf(Mathf.exp(x)));
          }
          break;
        case 9: {
          // scale: α·x + β, α and β as bits in words 3 and 4 (as ew_scale: mul, then add)
          const va = f32x4.splat(reinterpret<f32>(load<i32>(w, 12)));
          const vb = f32x4.splat(reinterpret<f32>(load<i32>(w, 16)));
          for (let q = 0; q < quads; q++) v128.store(dst + (<usize>q << 4), f32x4.add(f32x4.mul(v128.load(ra + (<usize>q << 4)), va), vb));
          break;
        }
        case 10: {
          // relu_grad(x = a, dy = b)
          const zero = f32x4.splat(0);
          for (let q = 0; q < quads; q++) {
            const mask = f32x4.gt(v128.load(ra + (<usize>q << 4)), zero);
            v128.store(dst + (<usize>q << 4), v128.and(v128.load(rb + (<usize>q << 4)), mask));
          }
          break;
        }
        case 11:
          for (let i = 0; i < len; i++) {
            const x = load<f32>(ra + (<usize>i << 2));
            const g = load<f32>(rb + (<usize>i << 2));
            store<f32>(dst + (<usize>i << 2), x > 20 ? g : g / (1 + Mathf.exp(-x)));
          }
          break;
        default: {
          // 12 store: output (word 1) ← register a
          const out = <usize>load<i32>(outs + (<usize>load<i32>(w, 4) << 2));
          copyRun(out + (<usize>start << 2), ra, len);
        }
      }
    }
  }
}
