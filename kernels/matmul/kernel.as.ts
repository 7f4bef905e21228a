// AssemblyScript kernels of the matmul family, and the packed GEMM core that the conv kernels
// reuse (exported with a `gemm_` prefix so kernels/conv/kernel.as.ts can import it).
//
// The GEMM is the classic Goto/BLIS scheme written with explicit f32x4 code (nothing
// auto-vectorises in AssemblyScript):
//   for each block of NC columns, for each block of KC of the reduction:
//     pack B[KC, NC] into panels of NR columns (k-major inside a panel),
//     for each block of MC rows: pack A[MC, KC] into panels of MR rows,
//       run the MR×NR register-blocked micro-kernel over every (row panel, column panel).
// Packing pads partial panels with zeros, so the micro-kernel always runs full tiles; partial
// tiles are written to a small scratch tile first and then copied (the only scalar path).
// All pointers are byte offsets into the imported memory; nothing here allocates.
//
// Block sizes (kernels/matmul/wasm.ts sizes the scratch with the same numbers: keep in sync).
// MR×NR = 4×8: 8 f32x4 accumulators + 2 B vectors + 1 broadcast A. Measured on this machine
// (Zen 4, Node 20, 1024³): 4×8 ≈ 36 GFLOP/s; 5×8, 6×8 (12 accumulators), 7×8 and a 2× k-unrolled
// 4×8 all ≈ 22–26, as V8's register allocator starts spilling; with FMA (relaxed SIMD) 5×8 and 6×8
// ran at 19 and 23 against 44 for 4×8 (2026-12-03). KC×NR×4 = 8 KiB of B stays in L1 while the
// MC×KC A block (≈120 KiB) streams from L2; the KC×NC B block (≈1 MiB) sits in L2/L3.
import { madd, transpose4_store } from '../simd.as';

const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256;
const MC: i32 = 120;
const NC: i32 = 1024;

@inline function ptr(base: usize, elems: i32): usize {
  return base + (<usize>elems << 2);
}

/** C[MR×NR] (row stride ldcBytes) += Apanel[kc×MR]ᵀ · Bpanel[kc×NR]. */
@inline function micro(kc: i32, pa: usize, pb: usize, c: usize, ldcBytes: usize, init: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a: v128;
    a = v128.load32_splat(pa, 0);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    pa += 16;
    pb += 32;
  }
  add_tile(c, ldcBytes, init, 0, c00, c01, c10, c11, c20, c21, c30, c31);
}

/**
 * micro with B read in place: row k of the B panel is the 8 floats at base + tab[k] (byte
 * offsets, i32), not a packed panel (conv's direct path: an 8-position run of a staged image
 * row). The same multiply-adds in the same order as micro, so the same values give the same bits.
 */
@inline function micro_direct(kc: i32, pa: usize, tab: usize, base: usize, c: usize, ldcBytes: usize, init: bool, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = tab + (<usize>kc << 2);
  for (; tab < end; tab += 4) {
    const pb = base + <usize>load<i32>(tab);
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a: v128;
    a = v128.load32_splat(pa, 0);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    pa += 16;
  }
  add_tile(c, ldcBytes, init, bias, c00, c01, c10, c11, c20, c21, c30, c31);
}

/**
 * micro with A read in place: A(r, k) is the float at a_r + tab[k] (byte offsets, i32) instead of
 * a packed panel (conv_grad_weight's direct path: a_r is a (channel, tap)'s staged image rows).
 * The same multiply-adds in the same order as micro.
 */
@inline function micro_direct_a(kc: i32, a0: usize, a1: usize, a2: usize, a3: usize, tab: usize, pb: usize, c: usize, ldcBytes: usize, init: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = tab + (<usize>kc << 2);
  for (; tab < end; tab += 4) {
    const o = <usize>load<i32>(tab);
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a: v128;
    a = v128.load32_splat(a0 + o);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(a1 + o);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(a2 + o);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(a3 + o);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    pb += 32;
  }
  add_tile(c, ldcBytes, init, 0, c00, c01, c10, c11, c20, c21, c30, c31);
}

/**
 * The top-left mr×nr of C (row stride ldc) += the MR×NR `tile` (an edge tile's sums); init: C is
 * not set yet, and gets 0 + the sums (the bits of adding them to zeros); bias (0: none): then
 * row r gets bias[r] added, as add_tile.
 */
function add_partial_tile(c: usize, ldc: i32, tile: usize, mr: i32, nr: i32, init: bool, bias: usize): void {
  for (let r = 0; r < mr; r++) {
    const bs = bias ? load<f32>(ptr(bias, r)) : f32(0);
    for (let q = 0; q < nr; q++) {
      const d = ptr(c, r * ldc + q);
      const sum = (init ? f32(0) : load<f32>(d)) + load<f32>(ptr(tile, r * NR + q));
      store<f32>(d, bias ? sum + bs : sum);
    }
  }
}

/**
 * C[MR×NR] (row stride ldcBytes) += the accumulators, row by row; init: C = 0 + them. bias (0:
 * none): the block is the reduction's last, and row r then gets bias[r] added to its sums (a
 * conv's epilogue, the bits of adding it to them afterwards).
 */
// @ts-ignore: decorator
@inline function add_tile(c: usize, ldcBytes: usize, init: bool, bias: usize, c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128): void {
  if (bias) {
    add_bias_row(c, init, bias, c00, c01);
    add_bias_row(c + ldcBytes, init, bias + 4, c10, c11);
    add_bias_row(c + 2 * ldcBytes, init, bias + 8, c20, c21);
    add_bias_row(c + 3 * ldcBytes, init, bias + 12, c30, c31);
    return;
  }
  if (init) {
    const z = f32x4.splat(0);
    let p = c;
    v128.store(p, f32x4.add(z, c00));
    v128.store(p, f32x4.add(z, c01), 16);
    p += ldcBytes;
    v128.store(p, f32x4.add(z, c10));
    v128.store(p, f32x4.add(z, c11), 16);
    p += ldcBytes;
    v128.store(p, f32x4.add(z, c20));
    v128.store(p, f32x4.add(z, c21), 16);
    p += ldcBytes;
    v128.store(p, f32x4.add(z, c30));
    v128.store(p, f32x4.add(z, c31), 16);
    return;
  }
  let p = c;
  v128.store(p, f32x4.add(v128.load(p), c00));
  v128.store(p, f32x4.add(v128.load(p, 16), c01), 16);
  p += ldcBytes;
  v128.store(p, f32x4.add(v128.load(p), c10));
  v128.store(p, f32x4.add(v128.load(p, 16), c11), 16);
  p += ldcBytes;
  v128.store(p, f32x4.add(v128.load(p), c20));
  v128.store(p, f32x4.add(v128.load(p, 16), c21), 16);
  p += ldcBytes;
  v128.store(p, f32x4.add(v128.load(p), c30));
  v128.store(p, f32x4.add(v128.load(p, 16), c31), 16);
}

/** add_tile's row at p with its bias: (C or 0) + its two vectors of sums, then + the float at bias. */
// @ts-ignore: decorator
@inline function add_bias_row(p: usize, init: bool, bias: usize, lo: v128, hi: v128): void {
  const z = f32x4.splat(0);
  const b = v128.load32_splat(bias);
  v128.store(p, f32x4.add(f32x4.add(init ? z : v128.load(p), lo), b));
  v128.store(p, f32x4.add(f32x4.add(init ? z : v128.load(p, 16), hi), b), 16);
}

/**
 * C[mc×nc] (row stride ldc elements) += packed A block · packed B block. `tile` is MR×NR floats
 * of scratch for the partial tiles at the right and bottom edges.
 */
export function gemm_macro(mc: i32, nc: i32, kc: i32, pa: usize, pb: usize, c: usize, ldc: i32, tile: usize, init: bool): void {
  const ldcBytes = <usize>ldc << 2;
  for (let j = 0; j < nc; j += NR) {
    const nr = min(NR, nc - j);
    const pbj = ptr(pb, j * kc);
    for (let i = 0; i < mc; i += MR) {
      const mr = min(MR, mc - i);
      const pai = ptr(pa, i * kc);
      const cij = ptr(c, i * ldc + j);
      if (mr == MR && nr == NR) {
        micro(kc, pai, pbj, cij, ldcBytes, init);
      } else {
        micro(kc, pai, pbj, tile, <usize>NR << 2, true);
        add_partial_tile(cij, ldc, tile, mr, nr, init, 0);
      }
    }
  }
}

/**
 * gemm_macro with B in place (micro_direct): column panel j/NR's rows at bases[j/NR] + tab[k]
 * (byte addresses and offsets, i32). nc is a multiple of NR. bias (0: none): this is the
 * reduction's last block, and row i of C then gets bias[i] added (add_tile).
 */
export function gemm_macro_direct(mc: i32, nc: i32, kc: i32, pa: usize, tab: usize, bases: usize, c: usize, ldc: i32, tile: usize, init: bool, bias: usize): void {
  const ldcBytes = <usize>ldc << 2;
  for (let j = 0; j < nc; j += NR) {
    const base = <usize>load<i32>(bases + (<usize>(j / NR) << 2));
    for (let i = 0; i < mc; i += MR) {
      const mr = min(MR, mc - i);
      const pai = ptr(pa, i * kc);
      const cij = ptr(c, i * ldc + j);
      const bi = bias ? ptr(bias, i) : 0;
      if (mr == MR) {
        micro_direct(kc, pai, tab, base, cij, ldcBytes, init, bi);
      } else {
        micro_direct(kc, pai, tab, base, tile, <usize>NR << 2, true, 0);
        add_partial_tile(cij, ldc, tile, mr, NR, init, bi);
      }
    }
  }
}

/**
 * gemm_macro with A in place (micro_direct_a): row i's element k at base + rows[i] + tab[k] (byte
 * offsets, i32); B packed.
 */
export function gemm_macro_direct_a(mc: i32, nc: i32, kc: i32, rows: usize, base: usize, tab: usize, pb: usize, c: usize, ldc: i32, tile: usize, init: bool): void {
  const ldcBytes = <usize>ldc << 2;
  for (let j = 0; j < nc; j += NR) {
    const nr = min(NR, nc - j);
    const pbj = ptr(pb, j * kc);
    for (let i = 0; i < mc; i += MR) {
      const mr = min(MR, mc - i);
      // Rows past mc read row i again; their sums land in the tile and are dropped.
      const ri = rows + (<usize>i << 2);
      const a0 = base + <usize>load<i32>(ri);
      const a1 = mr > 1 ? base + <usize>load<i32>(ri, 4) : a0;
      const a2 = mr > 2 ? base + <usize>load<i32>(ri, 8) : a0;
      const a3 = mr > 3 ? base + <usize>load<i32>(ri, 12) : a0;
      const cij = ptr(c, i * ldc + j);
      if (mr == MR && nr == NR) {
        micro_direct_a(kc, a0, a1, a2, a3, tab, pbj, cij, ldcBytes, init);
      } else {
        micro_direct_a(kc, a0, a1, a2, a3, tab, pbj, tile, <usize>NR << 2, true);
        add_partial_tile(cij, ldc, tile, mr, nr, init, 0);
      }
    }
  }
}

/** Packs A[mc×kc] (element (i,k) at a + (i·rs + k·cs)·4) into MR-row panels, zero-padded. */
export function gemm_pack_a(mc: i32, kc: i32, a: usize, rs: i32, cs: i32, dst: usize): void {
  for (let i = 0; i < mc; i += MR) {
    const mr = min(MR, mc - i);
    const panel = ptr(dst, i * kc);
    if (mr == MR && cs != 1) {
      // Column-major A (transA): the MR values of one k are adjacent in memory; walk k outside.
      for (let k = 0; k < kc; k++) {
        const src = ptr(a, i * rs + k * cs);
        const d = ptr(panel, k * MR);
        if (rs == 1) v128.store(d, v128.load(src));
        else for (let r = 0; r < MR; r++) store<f32>(ptr(d, r), load<f32>(ptr(src, r * rs)));
      }
      continue;
    }
    let k0 = 0;
    if (mr == MR && cs == 1) {
      // Row-major A: four k of each row, a 4×4 transpose, four panel rows.
      const s0 = ptr(a, i * rs), s1 = ptr(s0, rs), s2 = ptr(s1, rs), s3 = ptr(s2, rs);
      for (; k0 + 4 <= kc; k0 += 4) {
        const o = <usize>k0 << 2;
        transpose4_store(v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o), ptr(panel, k0 * MR), 16);
      }
    }
    // Row-major A's last k (or an edge panel, or a strided A): read each row along k.
    for (let r = 0; r < MR; r++) {
      if (r < mr) {
        const step = <usize>cs << 2;
        let src = ptr(a, (i + r) * rs + k0 * cs);
        for (let k = k0; k < kc; k++) {
          store<f32>(ptr(panel, k * MR + r), load<f32>(src));
          src += step;
        }
      } else {
        for (let k = k0; k < kc; k++) store<f32>(ptr(panel, k * MR + r), 0);
      }
    }
  }
}

/** Packs B[kc×nc] (element (k,j) at b + (k·rs + j·cs)·4) into NR-column panels, zero-padded. */
export function gemm_pack_b(kc: i32, nc: i32, b: usize, rs: i32, cs: i32, dst: usize): void {
  for (let j = 0; j < nc; j += NR) {
    const nr = min(NR, nc - j);
    const panel = ptr(dst, j * kc);
    if (nr == NR && cs == 1) {
      // Row-major B: each panel row is 8 contiguous floats.
      for (let k = 0; k < kc; k++) {
        const src = ptr(b, k * rs + j);
        const d = ptr(panel, k * NR);
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
      }
    } else {
      let k0 = 0;
      if (nr == NR && rs == 1) {
        // Column-major B (transB): four k of each of the eight columns, two 4×4 transposes.
        const c0 = ptr(b, j * cs), cb = <usize>cs << 2;
        for (; k0 + 4 <= kc; k0 += 4) {
          const o = c0 + (<usize>k0 << 2);
          const d = ptr(panel, k0 * NR);
          transpose4_store(v128.load(o), v128.load(o + cb), v128.load(o + 2 * cb), v128.load(o + 3 * cb), d, 32);
          transpose4_store(v128.load(o + 4 * cb), v128.load(o + 5 * cb), v128.load(o + 6 * cb), v128.load(o + 7 * cb), d + 16, 32);
        }
      }
      // Column-major B's last k (or an edge panel, or a strided B): walk each column along k,
      // zero-filling the missing columns.
      for (let q = 0; q < NR; q++) {
        if (q < nr) {
          const step = <usize>rs << 2;
          let src = ptr(b, (j + q) * cs + k0 * rs);
          for (let k = k0; k < kc; k++) {
            store<f32>(ptr(panel, k * NR + q), load<f32>(src));
            src += step;
          }
        } else {
          for (let k = k0; k < kc; k++) store<f32>(ptr(panel, k * NR + q), 0);
        }
      }
    }
  }
}

/**
 * C[M×N] (row-major, row stride ldc) += A·B with A(i,k) = a[i·rsA + k·csA] and
 * B(k,j) = b[k·rsB + j·csB] (strides in elements, so transposes are free); init: C is not set
 * yet, C = A·B (the bits of adding it to zeros: the first K block stores 0 + its sums, without
 * reading C, and a pass that zeroed C is saved).
 * Scratch: packA (min(M,MC) rounded up to MR) × min(K,KC), then packB min(K,KC) × (min(N,NC)
 * rounded up to NR), then an MR×NR tile, then KC + NC/NR i32 for gemm_acc_direct_b; see
 * gemmScratch in wasm.ts.
 */
export function gemm_acc(M: i32, N: i32, K: i32, a: usize, rsA: i32, csA: i32, b: usize, rsB: i32, csB: i32, c: usize, ldc: i32, scratch: usize, init: bool): void {
  if (init && K == 0) {
    for (let i = 0; i < M; i++) memory.fill(ptr(c, i * ldc), 0, <usize>N << 2);
    return;
  }
  const kcMax = min(K, KC);
  const mcMax = min(M, MC);
  const pa = scratch;
  const pb = ptr(pa, ((mcMax + MR - 1) / MR) * MR * kcMax);
  const tile = ptr(pb, kcMax * ((min(N, NC) + NR - 1) / NR) * NR);
  if (csB == 1 && M <= DIRECT_B_MAX_M && rsB < DIRECT_B_MAX_ROW) {
    gemm_acc_direct_b(M, N, K, a, rsA, csA, b, rsB, c, ldc, pa, pb, tile, init);
    return;
  }
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      gemm_pack_b(kc, nc, ptr(b, pc * rsB + jc * csB), rsB, csB, pb);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = min(MC, M - ic);
        gemm_pack_a(mc, kc, ptr(a, ic * rsA + pc * csA), rsA, csA, pa);
        gemm_macro(mc, nc, kc, pa, pb, ptr(c, ic * ldc + jc), ldc, tile, init && pc == 0);
      }
    }
  }
}

/**
 * Up to this many rows of A, a row-major B is read in place (gemm_acc_direct_b): packing it
 * would cost about as much as the multiply-adds it feeds (each packed value serves M of them).
 */
const DIRECT_B_MAX_M: i32 = 16;
/** B's row stride (floats) must keep KC rows' byte offsets within an i32. */
const DIRECT_B_MAX_ROW: i32 = (1 << 29) / KC;

/**
 * gemm_acc for few rows and a row-major B (csB = 1): the micro-kernel reads each panel row of B
 * in place, 8 contiguous floats of a row of B (micro_direct), and only a last panel narrower than
 * NR is packed. The same blocks and the same multiply-adds in the same order as gemm_acc: the
 * same bits. Its offset table (KC i32) and panel bases (NC/NR i32) follow the tile in the scratch.
 */
function gemm_acc_direct_b(M: i32, N: i32, K: i32, a: usize, rsA: i32, csA: i32, b: usize, rsB: i32, c: usize, ldc: i32, pa: usize, pb: usize, tile: usize, init: bool): void {
  const tab = ptr(tile, MR * NR);
  const bases = ptr(tab, KC);
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min(NC, N - jc);
    const full = nc & ~(NR - 1);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      for (let k = 0; k < kc; k++) store<i32>(tab + (<usize>k << 2), (k * rsB) << 2);
      for (let j = 0; j < full; j += NR) store<i32>(bases + (<usize>(j / NR) << 2), <i32>ptr(b, pc * rsB + jc + j));
      if (full < nc) gemm_pack_b(kc, nc - full, ptr(b, pc * rsB + jc + full), rsB, 1, pb);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = min(MC, M - ic);
        gemm_pack_a(mc, kc, ptr(a, ic * rsA + pc * csA), rsA, csA, pa);
        const cij = ptr(c, ic * ldc + jc);
        if (full > 0) gemm_macro_direct(mc, full, kc, pa, tab, bases, cij, ldc, tile, init && pc == 0, 0);
        if (full < nc) gemm_macro(mc, nc - full, kc, pa, pb, ptr(cij, full), ldc, tile, init && pc == 0);
      }
    }
  }
}

/**
 * matmul: y[M×N] = A·B (+ bias[N] on every row). transA: a is [K,M]; transB: b is [N,K].
 * hasBias = 0: no bias (its pointer is ignored).
 */
export function matmul(M: i32, N: i32, K: i32, transA: i32, transB: i32, a: usize, b: usize, hasBias: i32, bias: usize, y: usize, scratch: usize): void {
  if (hasBias) for (let i = 0; i < M; i++) memory.copy(ptr(y, i * N), bias, <usize>N << 2);
  gemm_acc(M, N, K, a, transA ? 1 : K, transA ? M : 1, b, transB ? 1 : N, transB ? K : 1, y, N, scratch, !hasBias);
}

/**
 * Columns [j0, j0+nj) of matmul (same arguments): one thread's share. Each element's sum runs in
 * the same order as in matmul, so the split result is bitwise identical.
 */
export function matmul_cols(M: i32, N: i32, K: i32, transA: i32, transB: i32, a: usize, b: usize, hasBias: i32, bias: usize, y: usize, scratch: usize, j0: i32, nj: i32): void {
  if (hasBias) for (let i = 0; i < M; i++) memory.copy(ptr(y, i * N + j0), ptr(bias, j0), <usize>nj << 2);
  const csB = transB ? K : 1;
  gemm_acc(M, nj, K, a, transA ? 1 : K, transA ? M : 1, ptr(b, j0 * csB), transB ? 1 : N, csB, ptr(y, j0), N, scratch, !hasBias);
}

/** a[0..n) += b[0..n): sums threads' partial results (conv_grad_weight split over the batch). */
export function vec_add(a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(ptr(a, i), f32x4.add(v128.load(ptr(a, i)), v128.load(ptr(b, i))));
  for (; i < n; i++) store<f32>(ptr(a, i), load<f32>(ptr(a, i)) + load<f32>(ptr(b, i)));
}
