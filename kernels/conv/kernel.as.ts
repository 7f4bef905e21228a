// AssemblyScript kernels of the conv family: implicit GEMMs on the SIMD GEMM core of
// kernels/matmul/kernel.as.ts. im2col is never materialised. Where the grid's rows are long
// (the plan decides: directFloats and gradWeightDirect in wasm.ts), the image rows a block of
// the GEMM reads are staged once with their padding (stage_row) and the micro-kernel reads im2col
// in place from them through per-k offset tables (gemm_macro_direct, gemm_macro_direct_a);
// elsewhere the operand is packed into the GEMM's panel layout one block at a time, from a
// zero-padded copy of the call's images where the plan gave one (stage_padded; pack_padded,
// pack_padded_t), else straight from the image with each tap bounds-tested (pack_im2col,
// pack_im2col_t). All give the same products in the same order: the same bits.
//
// One geometry covers all three ops. An "image" (the big tensor: conv's x, conv_transpose's y)
// and a "grid" (conv's y, conv_transpose's x) are related by
//   image index = grid index · stride + kernel offset − pad      (per spatial dim, 3 dims)
// conv_geom() stores it in module globals before each conv call. Nothing allocates: besides the
// plan's scratch, small static tables (memory.data, ≈18 KiB) hold per-panel and per-tap offsets.
//   conv:             y (Co×B·G) = w (Co×Ci·kvol) · im2col(x) (Ci·kvol×B·G), the batch in the columns
//   conv_grad_weight: dw (Co×Ci·kvol) = dy (Co×B·G) · im2col(x)ᵀ (B·G×Ci·kvol), the batch in K
//   conv_transpose:   one stride-1 conv per output phase (residue mod stride), see conv_transpose,
//                     or col = wᵀ · x[b] then col2im (conv_transpose_col2im) when Co ≤ Ci/4

import { gemm_acc, gemm_macro, gemm_macro_direct, gemm_macro_direct_a, gemm_pack_a } from '../matmul/kernel.as';
import { copy_floats, fill_floats, madd, transpose4_store } from '../simd.as';

// Must match kernels/matmul/kernel.as.ts (and GEMM in kernels/matmul/wasm.ts).
const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256;
const MC: i32 = 120;
const NC: i32 = 1024;

let ID: i32 = 1, IH: i32 = 1, IW: i32 = 1; // image spatial size
let GD: i32 = 1, GH: i32 = 1, GW: i32 = 1; // grid spatial size
let KD: i32 = 1, KH: i32 = 1, KW: i32 = 1; // kernel
let SD: i32 = 1, SH: i32 = 1, SW: i32 = 1; // stride
let PD: i32 = 0, PH: i32 = 0, PW: i32 = 0; // pad

export function conv_geom(
  id: i32, ih: i32, iw: i32, gd: i32, gh: i32, gw: i32, kd: i32, kh: i32, kw: i32,
  sd: i32, sh: i32, sw: i32, pd: i32, ph: i32, pw: i32,
): void {
  ID = id; IH = ih; IW = iw; GD = gd; GH = gh; GW = gw; KD = kd; KH = kh; KW = kw;
  SD = sd; SH = sh; SW = sw; PD = pd; PH = ph; PW = pw;
}

@inline function ptr(base: usize, elems: i32): usize {
  return base + (<usize>elems << 2);
}

/** Byte offset in a packed B block of element (k, j): panel j/NR, row k, lane j%NR. */
@inline function packedB(dst: usize, kc: i32, k: i32, j: i32): usize {
  return ptr(dst, ((j >> 3) * kc + k) * NR + (j & 7));
}

/** conv_transpose's phases: their taps' offsets, concatenated (phase_weights); MAX_PHASE_TAPS in wasm.ts. */
const MAX_PHASE_TAPS: i32 = 4096;
/** conv_transpose's phases with taps: (first tap, taps) i32 pairs; MAX_PHASES in wasm.ts. */
const MAX_PHASES: i32 = 64;
// Mutable so each thread's instance of the module (one shared memory) can point the tables at its
// own region with conv_tables; otherwise threads would race on the static ones.
let TAPS: usize = memory.data(MAX_PHASE_TAPS * 4, 16);
let PHASES: usize = memory.data(MAX_PHASES * 8, 16);

/** Per-column origins of a panel in pack_im2col: 8 × (batch offset, z, y, x) i32, static data. */
let COLS: usize = memory.data(NR * 16, 16);
/** pack_padded's offset of each reduction row of a block: KC i32. */
let ROW_TAPS: usize = memory.data(KC * 4, 16);

/** Bytes a thread's own tables take (conv_tables). */
export const CONV_TABLE_BYTES: i32 = MAX_PHASE_TAPS * 4 + MAX_PHASES * 8 + NR * 16 + KC * 4;
/** Points TAPS, PHASES, COLS and ROW_TAPS at `base` (CONV_TABLE_BYTES, 16-byte aligned): a worker thread's own. */
export function conv_tables(base: usize): void {
  TAPS = base;
  PHASES = base + <usize>(MAX_PHASE_TAPS * 4);
  COLS = PHASES + <usize>(MAX_PHASES * 8);
  ROW_TAPS = COLS + <usize>(NR * 16);
}

// The packed path's zero-padded copy of the call's images (stage_padded), where the plan gave one:
// pack_padded then reads every tap without a bounds test. PADDED = 0: none (pack_im2col).
let PADDED: usize = 0;
let QD: i32 = 0, QH: i32 = 0, QW: i32 = 0; // low padding of the copy, per dim
let RQD: i32 = 0, RQH: i32 = 0, RQW: i32 = 0; // high padding
let ED: i32 = 1, EH: i32 = 1, EW: i32 = 1; // the copy's spatial size

/** Widens the copy's padding (none after drop_padded) to what the current geometry (a conv, or one transpose phase) reads. */
function need_padding(): void {
  QD = max(QD, PD); QH = max(QH, PH); QW = max(QW, PW);
  RQD = max(RQD, (GD - 1) * SD + KD - PD - ID);
  RQH = max(RQH, (GH - 1) * SH + KH - PH - IH);
  RQW = max(RQW, (GW - 1) * SW + KW - PW - IW);
}

/**
 * Copies the B images of x (Ci channels, the current image size) into dst with the padding
 * need_padding gathered, zeros around: `floats` (the plan's paddedFloats in wasm.ts) must hold
 * them. Without padding the copy is x itself, and dst is not used.
 */
function stage_padded(B: i32, Ci: i32, x: usize, dst: usize, floats: i32): void {
  ED = ID + QD + RQD; EH = IH + QH + RQH; EW = IW + QW + RQW;
  if (ED * EH * EW == ID * IH * IW) {
    PADDED = x;
    return;
  }
  if (B * Ci * ED * EH * EW > floats) unreachable();
  let d = dst;
  for (let c = 0; c < B * Ci; c++) {
    for (let ez = 0; ez < ED; ez++) {
      const iz = ez - QD;
      for (let ey = 0; ey < EH; ey++, d = ptr(d, EW)) {
        const iy = ey - QH;
        if (<u32>iz >= <u32>ID || <u32>iy >= <u32>IH) {
          fill_floats(d, 0, EW);
          continue;
        }
        fill_floats(d, 0, QW);
        copy_floats(ptr(d, QW), ptr(x, ((c * ID + iz) * IH + iy) * IW), IW);
        fill_floats(ptr(d, QW + IW), 0, RQW);
      }
    }
  }
  PADDED = dst;
}

/** Forgets any padded copy: the first thing of every call that may stage one (a call that trapped may have left one). */
function drop_padded(): void {
  PADDED = 0;
  QD = 0; QH = 0; QW = 0; RQD = 0; RQH = 0; RQW = 0;
}

/**
 * pack_im2col from the padded copy: the same panel values (the padding's zeros are copied zeros),
 * each panel row a vector load (a half's 4 positions in one grid row, stride 1), a shuffle of two
 * (stride 2) or 4 lane loads, none bounds-tested; the rows' tap offsets are tabled once per block.
 */
function pack_padded(kc: i32, k0: i32, nc: i32, n0: i32, Ci: i32, dst: usize): void {
  const kvol = KD * KH * KW;
  const evol = ED * EH * EW;
  const G = GD * GH * GW;
  let ci = k0 / kvol;
  const r = k0 - ci * kvol;
  let kd = r / (KH * KW);
  let kh = (r / KW) % KH;
  let kw = r % KW;
  for (let k = 0; k < kc; k++) {
    store<i32>(ROW_TAPS + (<usize>k << 2), (ci * evol + (kd * EH + kh) * EW + kw) << 2);
    if (++kw == KW) {
      kw = 0;
      if (++kh == KH) {
        kh = 0;
        if (++kd == KD) { kd = 0; ci++; }
      }
    }
  }
  const end = ROW_TAPS + (<usize>kc << 2);
  for (let j = 0; j < nc; j += NR) {
    for (let h = 0; h < NR; h += 4) {
      // The half's 4 columns at tap 0 (byte addresses); columns past the block repeat the block's
      // first, whose products land in the edge tile's dropped columns.
      const a0 = padded_origin(n0, j + h, nc, G, Ci, evol), a1 = padded_origin(n0, j + h + 1, nc, G, Ci, evol);
      const a2 = padded_origin(n0, j + h + 2, nc, G, Ci, evol), a3 = padded_origin(n0, j + h + 3, nc, G, Ci, evol);
      const oneRow = j + h + 4 <= nc && (n0 + j + h) % G % GW + 4 <= GW;
      let d = ptr(dst, j * kc + h);
      if (oneRow && SW == 1) {
        for (let t = ROW_TAPS; t < end; t += 4, d += NR << 2) v128.store(d, v128.load(a0 + <usize>load<i32>(t)));
      } else if (oneRow && SW == 2) {
        // Elements 0, 2, 4, 6 of the row from a0: the second load ends at element 6.
        for (let t = ROW_TAPS; t < end; t += 4, d += NR << 2) {
          const s = a0 + <usize>load<i32>(t);
          v128.store(d, v128.shuffle<f32>(v128.load(s), v128.load(s, 12), 0, 2, 5, 7));
        }
      } else {
        for (let t = ROW_TAPS; t < end; t += 4, d += NR << 2) {
          const o = <usize>load<i32>(t);
          let v = v128.load32_zero(a0 + o);
          v = v128.load32_lane(a1 + o, v, 1);
          v = v128.load32_lane(a2 + o, v, 2);
          v = v128.load32_lane(a3 + o, v, 3);
          v128.store(d, v);
        }
      }
    }
  }
}

/** Byte address in the padded copy of block column j's tap 0 (column 0's where j ≥ nc). */
// @ts-ignore: decorator
@inline function padded_origin(n0: i32, j: i32, nc: i32, G: i32, Ci: i32, evol: i32): usize {
  const n = n0 + (j < nc ? j : 0);
  const b = n / G;
  const g = n - b * G;
  const z = (g / (GH * GW)) * SD - PD + QD;
  const y = ((g / GW) % GH) * SH - PH + QH;
  const x = (g % GW) * SW - PW + QW;
  return ptr(PADDED, b * Ci * evol + (z * EH + y) * EW + x);
}

/**
 * Packs B(k, n) = x[b, ci, image(g, kernel offset)] for k in [k0, k0+kc) (k = ci·kvol + offset)
 * and n = b·G + g in [n0, n0+nc): conv's im2col, one block, the batch folded into the columns
 * (so the deep layers, with few grid positions per image, still get wide GEMMs).
 * Panel by panel (8 grid positions) so the writes stay in one 8·kc-float panel at a time, each
 * panel as two halves of 4 lanes: where a half's 4 positions lie in one grid row, its part of a
 * panel row is one vector load (stride 1) or a shuffle of two (stride 2), with the lanes that fall
 * in the padding zeroed; a half that wraps a row (the deep layers' grid widths 12, 6, 3) is packed
 * lane by lane.
 */
function pack_im2col(kc: i32, k0: i32, nc: i32, n0: i32, Ci: i32, x: usize, dst: usize): void {
  const kvol = KD * KH * KW;
  const ivol = ID * IH * IW;
  const G = GD * GH * GW;
  for (let j = 0; j < nc; j += NR) {
    const panel = ptr(dst, j * kc);
    // Origin of each of the panel's columns: batch offset, then image index minus kernel offset.
    for (let q = 0; q < NR; q++) {
      const o = COLS + (<usize>q << 4);
      if (j + q < nc) {
        const nq = n0 + j + q;
        const bq = nq / G;
        const gq = nq - bq * G;
        store<i32>(o, bq * Ci * ivol);
        store<i32>(o, (gq / (GH * GW)) * SD - PD, 4);
        store<i32>(o, ((gq / GW) % GH) * SH - PH, 8);
        store<i32>(o, (gq % GW) * SW - PW, 12);
      } else {
        // Padding column: an origin outside every image reads as zero.
        store<i32>(o, 0);
        store<i32>(o, -0x40000000, 4);
        store<i32>(o, 0, 8);
        store<i32>(o, 0, 12);
      }
    }
    // A half lies in one grid row when its last position is in the block and in its first's row.
    const g0 = (n0 + j) % G, g1 = (n0 + j + 4) % G;
    const one0 = j + 4 <= nc && g0 % GW + 4 <= GW;
    const one1 = j + NR <= nc && g1 % GW + 4 <= GW;
    let ci = k0 / kvol;
    const r = k0 - ci * kvol;
    let kd = r / (KH * KW);
    let kh = (r / KW) % KH;
    let kw = r % KW;
    // One run of taps along kw at a time: within it only the column moves, by one.
    for (let kk = 0; kk < kc; ) {
      const run = min(KW - kw, kc - kk);
      const d = ptr(panel, kk * NR);
      const xc = ptr(x, ci * ivol);
      pack_half(one0, 0, d, run, xc, kd, kh, kw);
      pack_half(one1, 4, d, run, xc, kd, kh, kw);
      // Next row of taps (kh, then kd), then the next input channel.
      kk += run;
      kw = 0;
      if (++kh == KH) {
        kh = 0;
        if (++kd == KD) { kd = 0; ci++; }
      }
    }
  }
}

/**
 * Lanes q0 … q0+3 of `run` panel rows from d (taps kw … kw+run−1 of row (kd, kh) of the channel
 * at xc), the columns' origins in COLS; oneRow: the 4 positions lie in one grid row.
 */
// @ts-ignore: decorator
@inline function pack_half(oneRow: bool, q0: i32, d: usize, run: i32, xc: usize, kd: i32, kh: i32, kw: i32): void {
  d += <usize>q0 << 2;
  if (oneRow) {
    const o = COLS + (<usize>q0 << 4);
    const iz = load<i32>(o, 4) + kd;
    const iy = load<i32>(o, 8) + kh;
    if (<u32>iz >= <u32>ID || <u32>iy >= <u32>IH) {
      for (let t = 0; t < run; t++, d += NR << 2) v128.store(d, f32x4.splat(0));
      return;
    }
    const row = ptr(xc, load<i32>(o) + (iz * IH + iy) * IW);
    const memEnd = <usize>memory.size() << 16;
    // Lane q of the half reads image column ix0 + q·SW.
    const lanes = i32x4(0, SW, 2 * SW, 3 * SW);
    let ix0 = load<i32>(o, 12) + kw;
    for (let t = 0; t < run; t++, d += NR << 2, ix0++) {
      const src = ptr(row, ix0);
      const inside = ix0 >= 0 && ix0 + 3 * SW < IW;
      // At a row's ends (padding) the same vector loads run, reading a few floats beyond the row
      // but inside memory, and the lanes outside the row are zeroed: the scalar path's values
      // without its per-element branches. A src below 0 wraps to a u32 above memEnd − 32, so the
      // bounds test sends it to the scalar path.
      if ((SW == 1 || SW == 2) && (inside || src <= memEnd - 32)) {
        // Stride 2: elements 0, 2, 4, 6 of src; the second load ends at element 6.
        let v = SW == 1 ? v128.load(src) : v128.shuffle<f32>(v128.load(src), v128.load(src, 12), 0, 2, 5, 7);
        if (!inside) {
          const l = i32x4.add(i32x4.splat(ix0), lanes);
          v = v128.and(v, v128.and(i32x4.ge_s(l, i32x4.splat(0)), i32x4.lt_s(l, i32x4.splat(IW))));
        }
        v128.store(d, v);
      } else {
        for (let q = 0; q < 4; q++) {
          const ix = ix0 + q * SW;
          store<f32>(ptr(d, q), <u32>ix < <u32>IW ? load<f32>(ptr(row, ix)) : 0);
        }
      }
    }
  } else {
    // Positions that wrap rows or images: each lane from its own origin.
    for (let t = 0; t < run; t++, d += NR << 2) {
      for (let q = 0; q < 4; q++) {
        const o = COLS + (<usize>(q0 + q) << 4);
        const iz = load<i32>(o, 4) + kd;
        const iy = load<i32>(o, 8) + kh;
        const ix = load<i32>(o, 12) + kw + t;
        // Unsigned compares fold the < 0 tests in.
        const inside = <u32>iz < <u32>ID && <u32>iy < <u32>IH && <u32>ix < <u32>IW;
        store<f32>(ptr(d, q), inside ? load<f32>(ptr(xc, load<i32>(o) + (iz * IH + iy) * IW + ix)) : 0);
      }
    }
  }
}

// conv_transpose phase state (see conv_transpose): the op's own kernel size, stride, pad, output
// (y) and input (x) sizes, and the current phase's first tap and output residue per dim.
let WKD: i32 = 1, WKH: i32 = 1, WKW: i32 = 1;
let WSD: i32 = 1, WSH: i32 = 1, WSW: i32 = 1;
let WPD: i32 = 0, WPH: i32 = 0, WPW: i32 = 0;
let XD: i32 = 1, XH: i32 = 1, XW: i32 = 1;
let T0D: i32 = 0, T0H: i32 = 0, T0W: i32 = 0;
let RD: i32 = 0, RH: i32 = 0, RW: i32 = 0;
let OD: i32 = 1, OH: i32 = 1, OW: i32 = 1;

/**
 * Sets the geometry to output phase (rz, ry, rx) of the conv_transpose whose own geometry
 * conv_transpose saved (O*, WK*, WS*, WP*, X*): a stride-1 conv with image x, grid the phase's
 * outputs, kernel its taps. False where the output has no such residue.
 */
function set_phase(rz: i32, ry: i32, rx: i32): bool {
  if (rz >= OD || ry >= OH || rx >= OW) return false;
  RD = rz; RH = ry; RW = rx;
  T0D = (rz + WPD) % WSD; T0H = (ry + WPH) % WSH; T0W = (rx + WPW) % WSW;
  KD = T0D < WKD ? (WKD - T0D + WSD - 1) / WSD : 0;
  KH = T0H < WKH ? (WKH - T0H + WSH - 1) / WSH : 0;
  KW = T0W < WKW ? (WKW - T0W + WSW - 1) / WSW : 0;
  ID = XD; IH = XH; IW = XW;
  GD = (OD - rz + WSD - 1) / WSD; GH = (OH - ry + WSH - 1) / WSH; GW = (OW - rx + WSW - 1) / WSW;
  SD = 1; SH = 1; SW = 1;
  PD = KD - 1 - (rz + WPD - T0D) / WSD;
  PH = KH - 1 - (ry + WPH - T0H) / WSH;
  PW = KW - 1 - (rx + WPW - T0W) / WSW;
  return true;
}

/**
 * The tap tables of conv_transpose's phases (PHASES: first tap and taps of each phase with taps;
 * TAPS: the byte offset of each of its taps in a w row, flipped: tap v ↦ weight index
 * t0 + s·(n − 1 − v) per dim, as the phase is a correlation). Returns the number of phases.
 */
function phase_taps(): i32 {
  let phases = 0, taps = 0;
  for (let rz = 0; rz < WSD; rz++) {
    for (let ry = 0; ry < WSH; ry++) {
      for (let rx = 0; rx < WSW; rx++) {
        if (!set_phase(rz, ry, rx)) continue;
        const n = KD * KH * KW;
        if (n == 0) continue;
        // wasm.ts sends kernels of more than MAX_PHASE_TAPS taps, or more than MAX_PHASES phases, to col2im.
        if (phases == MAX_PHASES || taps + n > MAX_PHASE_TAPS) unreachable();
        store<i32>(PHASES + (<usize>phases << 3), taps);
        store<i32>(PHASES + (<usize>phases << 3), n, 4);
        phases++;
        for (let vz = 0; vz < KD; vz++) {
          const tz = T0D + WSD * (KD - 1 - vz);
          for (let vy = 0; vy < KH; vy++) {
            const ty = T0H + WSH * (KH - 1 - vy);
            for (let vx = 0; vx < KW; vx++) {
              store<i32>(TAPS + (<usize>taps << 2), ((tz * WKH + ty) * WKW + T0W + WSW * (KW - 1 - vx)) << 2);
              taps++;
            }
          }
        }
      }
    }
  }
  return phases;
}

/**
 * The one phase of a stride-1 conv_transpose as a conv's weights, row-major: wp[co, ci·kvol + v]
 * = w[ci, co, tap v] (conv_transpose_small_co).
 */
function phase_weights(Ci: i32, Co: i32, w: usize, wp: usize): void {
  if (phase_taps() != 1) unreachable();
  const wvol = WKD * WKH * WKW;
  for (let co = 0; co < Co; co++) {
    for (let ci = 0; ci < Ci; ci++) {
      const src = ptr(w, (ci * Co + co) * wvol);
      const d = ptr(wp, (co * Ci + ci) * wvol);
      for (let t = 0; t < wvol; t++) store<f32>(ptr(d, t), load<f32>(src + <usize>load<i32>(TAPS + (<usize>t << 2))));
    }
  }
}

/** Co rounded up to whole MR-row panels. */
// @ts-ignore: decorator
@inline function panelRows(Co: i32): i32 {
  return (Co + MR - 1) / MR * MR;
}

/**
 * The weights of conv_transpose's phases, packed as gemm_pack_a packs a GEMM's A, so that the
 * phases' GEMMs read them in place, whatever their number of blocks: phase p's A [Co, Ci·n]
 * (element (co, ci·n + v) = w[ci, co, tap v]) starts at wp + panelRows(Co)·Ci·s (s its first
 * tap); its reduction block pc (KC rows, kc in the last) at + panelRows(Co)·pc; the panel of rows
 * i … i+MR−1 at + i·kc, element (k, r) at + k·MR + r; rows past Co are zero. (Packing in
 * gemm_block instead read a row-major copy of these values once per column block.)
 */
function phase_panels(Ci: i32, Co: i32, w: usize, wp: usize): void {
  const phases = phase_taps();
  const wvol = WKD * WKH * WKW;
  const rowsP = panelRows(Co);
  const r1 = <usize>wvol << 2, r2 = r1 * 2, r3 = r1 * 3; // bytes from w[ci, co] to w[ci, co + 1 … 3]
  const wrow = <usize>(Co * wvol) << 2; // bytes from w[ci, co] to w[ci + 1, co]
  for (let p = 0; p < phases; p++) {
    const s = load<i32>(PHASES + (<usize>p << 3));
    const n = load<i32>(PHASES + (<usize>p << 3), 4);
    const tab = TAPS + (<usize>s << 2);
    const K = Ci * n;
    const base = ptr(wp, rowsP * Ci * s);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      for (let i = 0; i < Co; i += MR) {
        const panel = ptr(base, rowsP * pc + i * kc);
        const mr = min(MR, Co - i);
        const ci = pc / n;
        let v = pc - ci * n;
        let src = ptr(w, (ci * Co + i) * wvol);
        let k = 0;
        while (k < kc) {
          if (v == 0 && k + n <= kc && mr == MR) {
            // A whole channel: four taps of the four rows at a time (lane loads along one w row,
            // one cache line), a 4×4 transpose into four panel rows; the last n % 4 taps by row.
            let t = 0;
            for (; t + 4 <= n; t += 4) {
              const tt = tab + (<usize>t << 2);
              const o0 = <usize>load<i32>(tt), o1 = <usize>load<i32>(tt, 4), o2 = <usize>load<i32>(tt, 8), o3 = <usize>load<i32>(tt, 12);
              transpose4_store(taps4(src, o0, o1, o2, o3), taps4(src + r1, o0, o1, o2, o3), taps4(src + r2, o0, o1, o2, o3),
                taps4(src + r3, o0, o1, o2, o3), ptr(panel, (k + t) * MR), 16);
            }
            for (; t < n; t++) v128.store(ptr(panel, (k + t) * MR), tap_rows(src + <usize>load<i32>(tab + (<usize>t << 2)), r1, mr));
            k += n;
            src += wrow;
            continue;
          }
          // Panel row k alone (a channel across two blocks, or an edge panel): tap v, one lane a row.
          v128.store(ptr(panel, k * MR), tap_rows(src + <usize>load<i32>(tab + (<usize>v << 2)), r1, mr));
          k++;
          if (++v == n) { v = 0; src += wrow; }
        }
      }
    }
  }
}

/** The floats at q, q + r1, … of mr rows (≤ MR), zeros past them. */
function tap_rows(q: usize, r1: usize, mr: i32): v128 {
  let a = v128.load32_zero(q);
  if (mr > 1) a = v128.load32_lane(q + r1, a, 1);
  if (mr > 2) a = v128.load32_lane(q + r1 * 2, a, 2);
  if (mr > 3) a = v128.load32_lane(q + r1 * 3, a, 3);
  return a;
}

/** The four floats at row + o0 … row + o3. */
// @ts-ignore: decorator
@inline function taps4(row: usize, o0: usize, o1: usize, o2: usize, o3: usize): v128 {
  let v = v128.load32_zero(row + o0);
  v = v128.load32_lane(row + o1, v, 1);
  v = v128.load32_lane(row + o2, v, 2);
  return v128.load32_lane(row + o3, v, 3);
}

/**
 * The implicit GEMM of conv and of each conv_transpose phase: out[b, co, g] = w · im2col(x),
 * w row-major [Co, Ci·kvol] with row stride lda (a transpose phase's: its panels, phase_panels). The GEMM's columns are
 * n = b·G + g; each block of them accumulates in `cbuf` [Co × nc] and is then written to y with
 * the bias: at grid position g (conv), or at output R + S·g (a transpose phase).
 *
 * Two ways to feed B, the same values in the same order (so the same bits):
 * - direct, where the plan gives rb (the grid's rows are whole panels, GW a multiple of NR, and a
 *   block of rows is wide enough: directFloats in wasm.ts): a block is a run of grid rows of one image, the image rows it reads are staged
 *   once with their padding (stage_rows), and the micro-kernel reads each panel row in place,
 *   8 contiguous floats of a staged row. Packing im2col wrote every input value kvol times
 *   (and for small Co cost more than the multiply-adds); staging copies it about once.
 * - packed (pack_im2col), otherwise: blocks of NC columns with the batch folded in, so the deep
 *   layers with few grid positions per image still get wide GEMMs.
 * `rb` (rbFloats floats; 0: packed) holds the direct path's offset table, panel bases and rows.
 */
function implicit_gemm(B: i32, Ci: i32, Co: i32, x: usize, w: usize, lda: i32, transposePhase: bool, hasBias: i32, bias: usize, y: usize, scratch: usize, cbuf: usize, rb: usize, rbFloats: i32): void {
  const G = GD * GH * GW;
  if (rb != 0 && KD * KH * KW > 0) {
    // The plan chose the direct path (directFloats in wasm.ts) and sized rb for it. (A
    // conv_transpose phase without taps only writes the bias.)
    const rows = min(NC / GW, GH); // grid rows per block
    if (rows == 0) unreachable();
    for (let b = 0; b < B; b++) {
      for (let z = 0; z < GD; z++) {
        for (let y0 = 0; y0 < GH; y0 += rows) direct_block(b, z, y0, min(rows, GH - y0), Ci, Co, x, w, lda, transposePhase, hasBias, bias, y, scratch, cbuf, rb, rbFloats);
      }
    }
  } else {
    for (let jc = 0; jc < B * G; jc += NC) gemm_block(jc, min(NC, B * G - jc), Ci, Co, x, w, lda, transposePhase, hasBias, bias, y, scratch, cbuf, 0, 0);
  }
}

/** One block of implicit_gemm's direct path: grid rows y0 … y0+rows−1 of slice z of image b. */
function direct_block(b: i32, z: i32, y0: i32, rows: i32, Ci: i32, Co: i32, x: usize, w: usize, lda: i32, transposePhase: bool, hasBias: i32, bias: usize, y: usize, scratch: usize, cbuf: usize, rb: usize, rbFloats: i32): void {
  if (GW % NR != 0 || rows * GW > NC || stagedFloats(Ci, rows) > rbFloats - DIRECT_TABLE_FLOATS) unreachable();
  stage_rows(Ci, ptr(x, b * Ci * ID * IH * IW), z, y0, rows, ptr(rb, DIRECT_TABLE_FLOATS), (rows - 1) * SH + KH, 0);
  gemm_block((b * GD + z) * GH * GW + y0 * GW, rows * GW, Ci, Co, x, w, lda, transposePhase, hasBias, bias, y, scratch, cbuf, rb, rows);
}

/** The direct path's offset table (KC i32) and panel bases (NC/NR i32) at the start of rb. */
const DIRECT_TABLE_FLOATS: i32 = KC + NC / NR;

/** Floats of a staged row: SW phases of GW + ⌊(KW−1)/SW⌋ columns (column c at phase c % SW, c / SW). */
// @ts-ignore: decorator
@inline function stagedRow(): i32 {
  return SW * (GW + (KW - 1) / SW);
}

/** Floats stage_rows writes for `rows` grid rows: Ci · KD · ((rows−1)·SH + KH) staged rows. */
function stagedFloats(Ci: i32, rows: i32): i32 {
  return Ci * KD * ((rows - 1) * SH + KH) * stagedRow();
}

/**
 * Stages the (rows − 1)·SH + KH image rows that grid rows y0 … y0+rows−1 of slice z read, padding
 * included, into `dst`, groups of `ny` staged rows per (ci, kd) from row `at` of each group: staged
 * row ((ci·KD + kd)·ny + at + iy') holds image row (z·SD + kd − PD, y0·SH + iy' − PH) of
 * channel ci, its column c (padded: image column c − PW) at phase c % SW, index c / SW. Tap
 * (kd, kh, kw) of grid position (y, gx) then reads staged row (ci·KD + kd)·ny + (y−y0)·SH + kh at
 * (kw % SW)·Q + gx + kw / SW: for 8 consecutive gx, 8 consecutive floats.
 */
function stage_rows(Ci: i32, xb: usize, z: i32, y0: i32, rows: i32, dst: usize, ny: i32, at: i32): void {
  const n = (rows - 1) * SH + KH;
  const row = stagedRow();
  for (let ci = 0; ci < Ci; ci++) {
    for (let kd = 0; kd < KD; kd++) {
      const iz = z * SD + kd - PD;
      for (let r = 0; r < n; r++) {
        const iy = y0 * SH + r - PH;
        const inside = <u32>iz < <u32>ID && <u32>iy < <u32>IH;
        stage_row(ptr(dst, ((ci * KD + kd) * ny + at + r) * row), inside ? ptr(xb, ((ci * ID + iz) * IH + iy) * IW) : 0, row);
      }
    }
  }
}

/**
 * One staged row (stagedRow() floats at d) of image row `src` (0: a row of padding): padded column
 * c (image column c − PW) at phase c % SW, index c / SW.
 */
function stage_row(d: usize, src: usize, row: i32): void {
  if (!src) {
    fill_floats(d, 0, row);
  } else if (SW == 1 && PW >= 0 && PW < row) {
    // Columns [0, PW) and past the image are padding; the image row sits at PW. (A phase of
    // conv_transpose may have PW < 0: it skips image columns; the loop below does that.)
    const n = min(IW, row - PW);
    fill_floats(d, 0, PW);
    copy_floats(ptr(d, PW), src, n);
    fill_floats(ptr(d, PW + n), 0, row - PW - n);
  } else {
    const q = row / SW;
    let i0 = 0;
    if (SW == 2) {
      // Where the image holds all 8 columns 2i − PW … 2i − PW + 7: two loads, evens to phase 0 and
      // odds to phase 1, four indices i at a time. Elsewhere, one value at a time.
      for (; i0 < q && 2 * i0 - PW < 0; i0++) stage_pair(d, src, q, i0);
      for (; i0 + 4 <= q && 2 * i0 - PW + 8 <= IW; i0 += 4) {
        const s = ptr(src, 2 * i0 - PW);
        const a = v128.load(s), b = v128.load(s, 16);
        v128.store(ptr(d, i0), v128.shuffle<f32>(a, b, 0, 2, 4, 6));
        v128.store(ptr(d, q + i0), v128.shuffle<f32>(a, b, 1, 3, 5, 7));
      }
      for (; i0 < q; i0++) stage_pair(d, src, q, i0);
      return;
    }
    for (let p = 0; p < SW; p++) {
      for (let c = p, i = 0; i < q; c += SW, i++) {
        const ix = c - PW;
        store<f32>(ptr(d, p * q + i), <u32>ix < <u32>IW ? load<f32>(ptr(src, ix)) : 0);
      }
    }
  }
}

/** Index i of both phases of a stride-2 staged row: image columns 2i − PW and 2i − PW + 1. */
// @ts-ignore: decorator
@inline function stage_pair(d: usize, src: usize, q: i32, i: i32): void {
  const ix = 2 * i - PW;
  store<f32>(ptr(d, i), <u32>ix < <u32>IW ? load<f32>(ptr(src, ix)) : 0);
  store<f32>(ptr(d, q + i), <u32>(ix + 1) < <u32>IW ? load<f32>(ptr(src, ix + 1)) : 0);
}

/**
 * One block of columns [jc, jc+nc) of implicit_gemm. rows = 0: B packed from the image;
 * else B read in place from the rows stage_rows staged in rb for this block of `rows` grid rows.
 */
function gemm_block(jc: i32, nc: i32, Ci: i32, Co: i32, x: usize, w: usize, lda: i32, transposePhase: bool, hasBias: i32, bias: usize, y: usize, scratch: usize, cbuf: usize, rb: usize, rows: i32): void {
  const G = GD * GH * GW;
  const K = Ci * KD * KH * KW;
  const kcMax = max(1, min(K, KC));
  // A transpose phase reads its weights packed once per call (phase_panels): no pack-A region.
  const pa = scratch;
  const pb = transposePhase ? pa : ptr(pa, ((min(Co, MC) + MR - 1) / MR) * MR * kcMax);
  const tile = ptr(pb, kcMax * ((nc + NR - 1) / NR) * NR); // within gemmScratch's: nc ≤ min(B·G, NC)
  const tab = rb;
  const bases = ptr(rb, KC);
  if (rows) {
    // Panel j's first float: staged row (y − y0)·SH of the block, column gx (tap (0, 0, 0)).
    const staged = ptr(rb, DIRECT_TABLE_FLOATS);
    const row = stagedRow();
    for (let j = 0; j < nc; j += NR) store<i32>(bases + (<usize>(j / NR) << 2), <i32>ptr(staged, ((j / GW) * SH) * row + j % GW));
  }
  // The first block of the reduction writes cbuf (init); without one (a phase with no taps) the
  // outputs are the bias alone.
  if (K == 0) memory.fill(cbuf, 0, <usize>(Co * nc) << 2);
  // Where the block's columns are a run of y's rows (the direct path, unless the outputs are
  // strided: a transpose phase of stride > 1), the micro-kernels write y itself, and add the bias
  // in the last block's epilogue: no cbuf and no copy out of it.
  const inPlace = rows != 0 && (!transposePhase || WSD * WSH * WSW == 1);
  const b0 = jc / G;
  const c = inPlace ? ptr(y, b0 * Co * G + jc - b0 * G) : cbuf;
  const ldc = inPlace ? G : nc;
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    if (rows) direct_taps(kc, pc, (rows - 1) * SH + KH, tab);
    else if (PADDED) pack_padded(kc, pc, nc, jc, Ci, pb);
    else pack_im2col(kc, pc, nc, jc, Ci, x, pb);
    for (let ic = 0; ic < Co; ic += MC) {
      const mc = min(MC, Co - ic);
      let a = pa;
      if (transposePhase) a = ptr(w, panelRows(Co) * pc + ic * kc);
      else gemm_pack_a(mc, kc, ptr(w, ic * lda + pc), lda, 1, pa);
      const last = pc + KC >= K;
      if (rows) gemm_macro_direct(mc, nc, kc, a, tab, bases, ptr(c, ic * ldc), ldc, tile, pc == 0, inPlace && last && hasBias ? ptr(bias, ic) : 0);
      else gemm_macro(mc, nc, kc, a, pb, ptr(cbuf, ic * nc), nc, tile, pc == 0);
    }
  }
  if (inPlace) return;
  // Write the block's columns (runs along the innermost grid dim) into y, adding the bias.
  for (let co = 0; co < Co; co++) {
    const bs = hasBias ? load<f32>(ptr(bias, co)) : f32(0);
    const bv = f32x4.splat(bs);
    const src = ptr(cbuf, co * nc);
    let j = 0;
    while (j < nc) {
      const n = jc + j;
      const b = n / G;
      const g = n - b * G;
      const s = ptr(src, j);
      let d: usize, run: i32;
      if (!transposePhase) {
        run = min(G - g, nc - j);
        d = ptr(y, (b * Co + co) * G + g);
      } else {
        const gx = g % GW;
        const gy = (g / GW) % GH;
        const gz = g / (GH * GW);
        run = min(GW - gx, nc - j);
        d = ptr(y, ((b * Co + co) * OD + RD + WSD * gz) * OH * OW + (RH + WSH * gy) * OW + RW + WSW * gx);
      }
      j += run;
      if (!transposePhase || WSW == 1) {
        let t = 0;
        for (; t + 4 <= run; t += 4) v128.store(ptr(d, t), f32x4.add(v128.load(ptr(s, t)), bv));
        for (; t < run; t++) store<f32>(ptr(d, t), load<f32>(ptr(s, t)) + bs);
      } else {
        const step = <usize>WSW << 2;
        for (let t = 0; t < run; t++) { store<f32>(d, load<f32>(ptr(s, t)) + bs); d += step; }
      }
    }
  }
}

/**
 * The direct path's offset table for reduction rows [k0, k0+kc) (k = ci·kvol + tap): tab[k − k0]
 * = byte offset, from a panel's first float, of tap (kd, kh, kw) of channel ci in the staged rows
 * (stage_rows, `ny` staged rows per (ci, kd)).
 */
function direct_taps(kc: i32, k0: i32, ny: i32, tab: usize): void {
  const kvol = KD * KH * KW;
  const row = stagedRow();
  const q = row / SW;
  let ci = k0 / kvol;
  const r = k0 - ci * kvol;
  let kd = r / (KH * KW);
  let kh = (r / KW) % KH;
  let kw = r % KW;
  for (let k = 0; k < kc; k++) {
    store<i32>(tab + (<usize>k << 2), ((((ci * KD + kd) * ny + kh) * row + (kw % SW) * q + kw / SW) << 2));
    if (++kw == KW) {
      kw = 0;
      if (++kh == KH) {
        kh = 0;
        if (++kd == KD) { kd = 0; ci++; }
      }
    }
  }
}

/**
 * conv: y[B, Co, G] = w[Co, Ci·kvol] · im2col(x) (+ bias[Co]); hasBias = 0: no bias.
 * Scratch: gemmScratch(Co, B·G, Ci·kvol) floats, then cbuf (Co · min(B·G, NC) floats), then rb
 * (rbFloats floats; 0: B always packed), see implicit_gemm; then, for the packed path, `padded`
 * (paddedFloats floats: stage_padded; −1: no copy, taps bounds-tested).
 */
export function conv_fwd(B: i32, Ci: i32, Co: i32, x: usize, w: usize, hasBias: i32, bias: usize, y: usize, scratch: usize, cbuf: usize, rb: usize, rbFloats: i32, padded: usize, paddedFloats: i32): void {
  drop_padded();
  if (paddedFloats >= 0) {
    need_padding();
    stage_padded(B, Ci, x, padded, paddedFloats);
  }
  implicit_gemm(B, Ci, Co, x, w, Ci * KD * KH * KW, false, hasBias, bias, y, scratch, cbuf, rb, rbFloats);
}

// Few output channels (Co ≤ SMALL_CO in wasm.ts; x stride 1): the paper's output conv has Co = 2,
// where the GEMM's 4-row tiles (conv) or 8-column panels (conv_grad_weight) run mostly empty and
// im2col is packed or staged for 2 rows of outputs. These kernels take the channels two at a
// time and run along image rows: 4 grid positions per vector, each of up to 3 taps along kw one
// unaligned load of the image row. Positions whose taps reach into the padding go one at a time.

/** Grid columns [lo, hi) whose taps kw … kw+n−1 all lie inside the image row (x stride 1). */
// @ts-ignore: decorator
@inline function inside_lo(kw: i32): i32 { return max(0, PW - kw); }
// @ts-ignore: decorator
@inline function inside_hi(kw: i32, n: i32): i32 { return max(0, min(GW, IW + PW - kw - n + 1)); }

/** x[row, gx + kw − PW], or 0 in the padding. */
// @ts-ignore: decorator
@inline function row_or(row: usize, gx: i32, kw: i32): f32 {
  const ix = gx + kw - PW;
  return <u32>ix < <u32>IW ? load<f32>(ptr(row, ix)) : 0;
}

/**
 * conv for Co ≤ SMALL_CO: y[b, co, g] = bias + Σ w · x, the rows of a pair of channels (c0,
 * c1 = c0 + 1; an odd last channel by pairs of rows, conv_small_single) accumulated in place,
 * tap row (ci, kd, kh) by tap row.
 */
export function conv_small_co(B: i32, Ci: i32, Co: i32, x: usize, w: usize, hasBias: i32, bias: usize, y: usize): void {
  const G = GD * GH * GW;
  const K = Ci * KD * KH * KW;
  const ivol = ID * IH * IW;
  for (let b = 0; b < B; b++) {
    for (let c0 = 0; c0 < Co; c0 += 2) {
      const c1 = min(c0 + 1, Co - 1);
      if (c1 == c0) {
        conv_small_single(b, Ci, Co, c0, x, w, hasBias, bias, y);
        continue;
      }
      for (let gz = 0; gz < GD; gz++) {
        for (let gy = 0; gy < GH; gy++) {
          const y0 = ptr(y, (b * Co + c0) * G + (gz * GH + gy) * GW);
          const y1 = ptr(y, (b * Co + c1) * G + (gz * GH + gy) * GW);
          const s0 = hasBias ? load<f32>(ptr(bias, c0)) : f32(0), s1 = hasBias ? load<f32>(ptr(bias, c1)) : f32(0);
          for (let gx = 0; gx < GW; gx++) { store<f32>(ptr(y1, gx), s1); store<f32>(ptr(y0, gx), s0); }
          for (let ci = 0; ci < Ci; ci++) {
            for (let kd = 0; kd < KD; kd++) {
              const iz = gz * SD + kd - PD;
              if (<u32>iz >= <u32>ID) continue;
              for (let kh = 0; kh < KH; kh++) {
                const iy = gy * SH + kh - PH;
                if (<u32>iy >= <u32>IH) continue;
                const row = ptr(x, (b * Ci + ci) * ivol + (iz * IH + iy) * IW);
                const t = ((ci * KD + kd) * KH + kh) * KW;
                conv_small_row(row, ptr(w, c0 * K + t), ptr(w, c1 * K + t), y0, y1, c1 != c0);
              }
            }
          }
        }
      }
    }
  }
}

/**
 * conv_small_co's odd channel c of image b, two output rows at a time: an image row feeds grid row
 * gy through tap kh and gy + 1 through kh − SH, so one pass over it serves both (as a channel
 * pair shares it), where one row at a time left half the multiply-adds per load. Each row gets
 * its tap rows in the same order as one at a time (ci, kd, then kh up), so the same bits.
 */
function conv_small_single(b: i32, Ci: i32, Co: i32, c: i32, x: usize, w: usize, hasBias: i32, bias: usize, y: usize): void {
  const G = GD * GH * GW;
  const K = Ci * KD * KH * KW;
  const ivol = ID * IH * IW;
  const s = hasBias ? load<f32>(ptr(bias, c)) : f32(0);
  for (let gz = 0; gz < GD; gz++) {
    for (let gy = 0; gy < GH; gy += 2) {
      const two = gy + 1 < GH;
      const y0 = ptr(y, (b * Co + c) * G + (gz * GH + gy) * GW);
      const y1 = two ? ptr(y0, GW) : y0;
      for (let gx = 0; gx < GW; gx++) { store<f32>(ptr(y0, gx), s); store<f32>(ptr(y1, gx), s); }
      for (let ci = 0; ci < Ci; ci++) {
        for (let kd = 0; kd < KD; kd++) {
          const iz = gz * SD + kd - PD;
          if (<u32>iz >= <u32>ID) continue;
          const iy0 = gy * SH - PH;
          for (let iy = max(iy0, 0); iy < min(iy0 + (two ? SH : 0) + KH, IH); iy++) {
            const kh0 = iy - iy0, kh1 = kh0 - SH; // the taps for grid rows gy and gy + 1
            const in0 = kh0 < KH, in1 = two && kh1 >= 0;
            if (!in0 && !in1) continue; // stride > kernel: a row between the two rows' taps
            const row = ptr(x, (b * Ci + ci) * ivol + (iz * IH + iy) * IW);
            const t0 = ptr(w, c * K + ((ci * KD + kd) * KH + kh0) * KW);
            const t1 = ptr(w, c * K + ((ci * KD + kd) * KH + kh1) * KW);
            if (in0 && in1) conv_small_row(row, t0, t1, y0, y1, true);
            else if (in0) conv_small_row(row, t0, t0, y0, y0, false);
            else conv_small_row(row, t1, t1, y1, y1, false);
          }
        }
      }
    }
  }
}

/** Adds one tap row's KW taps (weights at w0, w1) of image row `row` into output rows y0, y1. */
function conv_small_row(row: usize, w0: usize, w1: usize, y0: usize, y1: usize, two: bool): void {
  for (let kw = 0; kw < KW; kw += 3) {
    const n = min(3, KW - kw);
    // Missing taps (n < 3) get weight 0 and their image values are not loaded.
    const u0 = load<f32>(ptr(w0, kw)), u1 = n > 1 ? load<f32>(ptr(w0, kw + 1)) : f32(0), u2 = n > 2 ? load<f32>(ptr(w0, kw + 2)) : f32(0);
    const v0 = load<f32>(ptr(w1, kw)), v1 = n > 1 ? load<f32>(ptr(w1, kw + 1)) : f32(0), v2 = n > 2 ? load<f32>(ptr(w1, kw + 2)) : f32(0);
    const lo = inside_lo(kw), hi = inside_hi(kw, n);
    let gx = 0;
    for (; gx < min(lo, GW); gx++) conv_small_point(row, gx, kw, n, u0, u1, u2, v0, v1, v2, y0, y1, two);
    const a0 = f32x4.splat(u0), a1 = f32x4.splat(u1), a2 = f32x4.splat(u2);
    const b0 = f32x4.splat(v0), b1 = f32x4.splat(v1), b2 = f32x4.splat(v2);
    const zero = f32x4.splat(0);
    for (; gx + 4 <= hi; gx += 4) {
      const src = ptr(row, gx + kw - PW);
      const x0 = v128.load(src), x1 = n > 1 ? v128.load(src, 4) : zero, x2 = n > 2 ? v128.load(src, 8) : zero;
      const d0 = ptr(y0, gx), d1 = ptr(y1, gx);
      v128.store(d0, madd(a2, x2, madd(a1, x1, madd(a0, x0, v128.load(d0)))));
      if (two) v128.store(d1, madd(b2, x2, madd(b1, x1, madd(b0, x0, v128.load(d1)))));
    }
    for (; gx < GW; gx++) conv_small_point(row, gx, kw, n, u0, u1, u2, v0, v1, v2, y0, y1, two);
  }
}

/** conv_small_row at one grid column, its taps bounds-checked. */
// @ts-ignore: decorator
@inline function conv_small_point(row: usize, gx: i32, kw: i32, n: i32, u0: f32, u1: f32, u2: f32, v0: f32, v1: f32, v2: f32, y0: usize, y1: usize, two: bool): void {
  const x0 = row_or(row, gx, kw), x1 = n > 1 ? row_or(row, gx, kw + 1) : f32(0), x2 = n > 2 ? row_or(row, gx, kw + 2) : f32(0);
  const d0 = ptr(y0, gx), d1 = ptr(y1, gx);
  store<f32>(d0, load<f32>(d0) + u0 * x0 + u1 * x1 + u2 * x2);
  if (two) store<f32>(d1, load<f32>(d1) + v0 * x0 + v1 * x1 + v2 * x2);
}

/**
 * conv_grad_weight for Co ≤ SMALL_CO (x stride 1): dw[co, ci, kd, kh, kw] = Σ_b Σ_g dy[b, co, g] ·
 * x[b, ci, tap of g], each weight's sum over all the call's positions in 4 lanes, then the lanes
 * added (then the positions near the padding, one at a time). Output channels two at a time (an
 * odd last one with input channels two at a time), taps three at a time along kw: 6 accumulators.
 */
export function conv_grad_weight_small(B: i32, Ci: i32, Co: i32, x: usize, dy: usize, dw: usize): void {
  const K = Ci * KD * KH * KW;
  for (let c0 = 0; c0 < Co; c0 += 2) {
    const c1 = min(c0 + 1, Co - 1);
    // An odd last channel takes the input channels two at a time instead (ci, ci + 1 share its
    // dy): six accumulator chains either way, where three left the multiply-adds waiting on
    // their latency.
    const single = c1 == c0;
    for (let ci = 0; ci < Ci; ci += single ? 2 : 1) {
      const cj = single ? min(ci + 1, Ci - 1) : ci;
      for (let kd = 0; kd < KD; kd++) {
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw += 3) {
            const n = min(3, KW - kw);
            if (single) grad_weight_small_taps(B, Ci, Co, x, dy, c0, c0, ci, cj, kd, kh, kw, n, ptr(dw, c0 * K), ptr(dw, c0 * K), cj != ci);
            else grad_weight_small_taps(B, Ci, Co, x, dy, c0, c1, ci, ci, kd, kh, kw, n, ptr(dw, c0 * K), ptr(dw, c1 * K), true);
          }
        }
      }
    }
  }
}

/**
 * conv_grad_weight_small's sums for taps (kd, kh, kw … kw+n−1): of (input channel ci, output c0)
 * into dw0 and, if `two`, of (cj, c1) into dw1, where cj = ci (a pair of output channels) or
 * c1 = c0 (a pair of input channels).
 */
function grad_weight_small_taps(B: i32, Ci: i32, Co: i32, x: usize, dy: usize, c0: i32, c1: i32, ci: i32, cj: i32, kd: i32, kh: i32, kw: i32, n: i32, dw0: usize, dw1: usize, two: bool): void {
  const G = GD * GH * GW;
  const ivol = ID * IH * IW;
  const lo = inside_lo(kw), hi = inside_hi(kw, n);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0);
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, t0: f32 = 0, t1: f32 = 0, t2: f32 = 0;
  for (let b = 0; b < B; b++) {
    for (let gz = 0; gz < GD; gz++) {
      const iz = gz * SD + kd - PD;
      if (<u32>iz >= <u32>ID) continue;
      for (let gy = 0; gy < GH; gy++) {
        const iy = gy * SH + kh - PH;
        if (<u32>iy >= <u32>IH) continue;
        const row = ptr(x, (b * Ci + ci) * ivol + (iz * IH + iy) * IW);
        const rowj = ptr(x, (b * Ci + cj) * ivol + (iz * IH + iy) * IW);
        const e0 = ptr(dy, (b * Co + c0) * G + (gz * GH + gy) * GW);
        const e1 = ptr(dy, (b * Co + c1) * G + (gz * GH + gy) * GW);
        let gx = lo;
        const zero = f32x4.splat(0);
        if (cj == ci) {
          for (; gx + 4 <= hi; gx += 4) {
            const src = ptr(row, gx + kw - PW);
            const x0 = v128.load(src), x1 = n > 1 ? v128.load(src, 4) : zero, x2 = n > 2 ? v128.load(src, 8) : zero;
            const d0 = v128.load(ptr(e0, gx)), d1 = v128.load(ptr(e1, gx));
            a0 = madd(d0, x0, a0); a1 = madd(d0, x1, a1); a2 = madd(d0, x2, a2);
            b0 = madd(d1, x0, b0); b1 = madd(d1, x1, b1); b2 = madd(d1, x2, b2);
          }
        } else {
          for (; gx + 4 <= hi; gx += 4) {
            const src = ptr(row, gx + kw - PW), srcj = ptr(rowj, gx + kw - PW);
            const x0 = v128.load(src), x1 = n > 1 ? v128.load(src, 4) : zero, x2 = n > 2 ? v128.load(src, 8) : zero;
            const u0 = v128.load(srcj), u1 = n > 1 ? v128.load(srcj, 4) : zero, u2 = n > 2 ? v128.load(srcj, 8) : zero;
            const d0 = v128.load(ptr(e0, gx));
            a0 = madd(d0, x0, a0); a1 = madd(d0, x1, a1); a2 = madd(d0, x2, a2);
            b0 = madd(d0, u0, b0); b1 = madd(d0, u1, b1); b2 = madd(d0, u2, b2);
          }
        }
        // The rest, one at a time: columns [0, lo) and [gx, GW).
        for (let part = 0; part < 2; part++) {
          for (let g = part ? gx : 0, end = part ? GW : min(lo, GW); g < end; g++) {
            const d0 = load<f32>(ptr(e0, g)), d1 = load<f32>(ptr(e1, g));
            const x0 = row_or(row, g, kw), x1 = n > 1 ? row_or(row, g, kw + 1) : f32(0), x2 = n > 2 ? row_or(row, g, kw + 2) : f32(0);
            const u0 = row_or(rowj, g, kw), u1 = n > 1 ? row_or(rowj, g, kw + 1) : f32(0), u2 = n > 2 ? row_or(rowj, g, kw + 2) : f32(0);
            s0 += d0 * x0; s1 += d0 * x1; s2 += d0 * x2;
            t0 += d1 * u0; t1 += d1 * u1; t2 += d1 * u2;
          }
        }
      }
    }
  }
  const o = ((ci * KD + kd) * KH + kh) * KW + kw;
  store<f32>(ptr(dw0, o), hsum(a0) + s0);
  if (n > 1) store<f32>(ptr(dw0, o + 1), hsum(a1) + s1);
  if (n > 2) store<f32>(ptr(dw0, o + 2), hsum(a2) + s2);
  if (two) {
    const oj = ((cj * KD + kd) * KH + kh) * KW + kw;
    store<f32>(ptr(dw1, oj), hsum(b0) + t0);
    if (n > 1) store<f32>(ptr(dw1, oj + 1), hsum(b1) + t1);
    if (n > 2) store<f32>(ptr(dw1, oj + 2), hsum(b2) + t2);
  }
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/**
 * Packs A(m, k) = dy[b, m, g] for rows m in [m0, m0+mc) and k = b·G + g in [k0, k0+kc), in
 * MR-row panels (conv_grad_weight's A: the batch folds into the reduction).
 */
function pack_dy(mc: i32, m0: i32, kc: i32, k0: i32, Co: i32, dy: usize, dst: usize): void {
  const G = GD * GH * GW;
  for (let i = 0; i < mc; i += MR) {
    const panel = ptr(dst, i * kc);
    for (let r = 0; r < MR; r++) {
      const m = m0 + i + r;
      if (i + r >= mc) {
        for (let k = 0; k < kc; k++) store<f32>(ptr(panel, k * MR + r), 0);
        continue;
      }
      let b = k0 / G;
      let g = k0 - b * G;
      let src = ptr(dy, (b * Co + m) * G + g);
      for (let k = 0; k < kc; k++) {
        store<f32>(ptr(panel, k * MR + r), load<f32>(src));
        src += 4;
        if (++g == G) { g = 0; b++; src = ptr(dy, (b * Co + m) * G); }
      }
    }
  }
}

/**
 * Packs B(k, n) = x[b, ci, image(g, offset)] for k = b·G + g in [k0, k0+kc) and
 * n = ci·kvol + offset in [n0, n0+nc): im2col transposed, conv_grad_weight's B. Four columns
 * (kernel offsets) at a time: along a run of the innermost grid dim each column reads x
 * contiguously (stride 1) or every other float (stride 2), so four vector loads and a 4×4
 * transpose fill four panel rows; the positions where a column reads padding go one by one.
 */
function pack_im2col_t(kc: i32, k0: i32, nc: i32, n0: i32, Ci: i32, x: usize, dst: usize): void {
  const G = GD * GH * GW;
  const kvol = KD * KH * KW;
  const ivol = ID * IH * IW;
  const b0 = k0 / G;
  const g0 = k0 - b0 * G;
  const vector = SW == 1 || SW == 2;
  const memEnd = <usize>memory.size() << 16;
  for (let j = 0; j < nc; j += 4) {
    const cols = min(4, nc - j);
    // Column c's kernel offset and channel.
    for (let c = 0; c < 4; c++) {
      const n = n0 + j + min(c, cols - 1);
      const ci = n / kvol;
      const r = n - ci * kvol;
      const o = COLS + (<usize>c << 4);
      store<i32>(o, ci * ivol);
      store<i32>(o, r / (KH * KW) - PD, 4);
      store<i32>(o, (r / KW) % KH - PH, 8);
      store<i32>(o, (r % KW) - PW, 12);
    }
    // Element k of column j + c at byte offset k·NR·4 + c·4 from `col`.
    const col = ptr(dst, (j >> 3) * kc * NR + (j & 7));
    let b = b0;
    let gz = g0 / (GH * GW);
    let gy = (g0 / GW) % GH;
    let gx = g0 % GW;
    let k = 0;
    while (k < kc) {
      // One run along the innermost grid dim: iz, iy fixed per column, ix steps by SW.
      const run = min(GW - gx, kc - k);
      // Per column: its row (0: all padding) and first ix; the run's positions every column reads
      // inside its row, [lo, hi).
      let lo = 0, hi = run;
      let r0: usize = 0, r1: usize = 0, r2: usize = 0, r3: usize = 0;
      let x0 = 0, x1 = 0, x2 = 0, x3 = 0;
      for (let c = 0; c < 4; c++) {
        const o = COLS + (<usize>c << 4);
        const iz = gz * SD + load<i32>(o, 4);
        const iy = gy * SH + load<i32>(o, 8);
        const ix = gx * SW + load<i32>(o, 12);
        let row: usize = 0;
        if (<u32>iz < <u32>ID && <u32>iy < <u32>IH) {
          row = ptr(x, b * Ci * ivol + load<i32>(o) + (iz * IH + iy) * IW);
          if (ix < 0) lo = max(lo, (-ix + SW - 1) / SW);
          hi = min(hi, ix < IW ? (IW - 1 - ix) / SW + 1 : 0);
        }
        if (c == 0) { r0 = row; x0 = ix; } else if (c == 1) { r1 = row; x1 = ix; } else if (c == 2) { r2 = row; x2 = ix; } else { r3 = row; x3 = ix; }
      }
      const d = ptr(col, k * NR);
      let t = 0;
      if (vector && cols == 4 && lo < hi) {
        for (; t < lo; t++) pack_t_scalar(d, t, r0, r1, r2, r3, x0, x1, x2, x3);
        // Four positions: the loads of stride 2 read one float past the last; keep it in memory.
        for (; t + 4 <= hi; t += 4) {
          const v0 = load_run(r0, x0 + t * SW, memEnd), v1 = load_run(r1, x1 + t * SW, memEnd);
          const v2 = load_run(r2, x2 + t * SW, memEnd), v3 = load_run(r3, x3 + t * SW, memEnd);
          transpose4_store(v0, v1, v2, v3, d + (<usize>t << 5), 32);
        }
      }
      for (; t < run; t++) pack_t_scalar(d, t, r0, r1, r2, r3, x0, x1, x2, x3);
      k += run;
      gx = 0;
      if (++gy == GH) {
        gy = 0;
        if (++gz == GD) { gz = 0; b++; }
      }
    }
  }
  zero_past(kc, nc, dst);
}

/** Columns nc … of the last panel of a packed B block (the panel's padding) read as zero. */
function zero_past(kc: i32, nc: i32, dst: usize): void {
  for (let j = nc; j < ((nc + NR - 1) & ~(NR - 1)); j++) {
    for (let k = 0; k < kc; k++) store<f32>(packedB(dst, kc, k, j), 0);
  }
}

/** Four x values of a run from column ix of `row` (stride SW ≤ 2; 0: a row of padding). */
// @ts-ignore: decorator
@inline function load_run(row: usize, ix: i32, memEnd: usize): v128 {
  if (!row) return f32x4.splat(0);
  const p = ptr(row, ix);
  if (SW == 1) return v128.load(p);
  // Floats 0, 2, 4, 6; the second load ends at float 7, which lies in memory when p + 32 does.
  if (p <= memEnd - 32) return v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
  return f32x4(load<f32>(p), load<f32>(p, 8), load<f32>(p, 16), load<f32>(p, 24));
}

/**
 * pack_im2col_t from the padded copy (stage_padded): the same panel values, none bounds-tested.
 * Four columns (their tap offsets in registers) and four positions of a grid row at a time: four
 * vector loads (stride 1), shuffles of two (stride 2) or gathers, and a 4×4 transpose; the rest
 * of a row one position at a time.
 */
function pack_padded_t(kc: i32, k0: i32, nc: i32, n0: i32, Ci: i32, dst: usize): void {
  const G = GD * GH * GW;
  const kvol = KD * KH * KW;
  const evol = ED * EH * EW;
  const b0 = k0 / G;
  const g0 = k0 - b0 * G;
  const step = <usize>SW << 2; // bytes between a row's positions
  for (let j = 0; j < nc; j += 4) {
    const cols = min(4, nc - j);
    // Columns past nc repeat the last; zero_past zeroes them.
    const t0 = padded_tap(n0 + j, kvol, evol), t1 = padded_tap(n0 + j + min(1, cols - 1), kvol, evol);
    const t2 = padded_tap(n0 + j + min(2, cols - 1), kvol, evol), t3 = padded_tap(n0 + j + min(3, cols - 1), kvol, evol);
    const col = ptr(dst, (j >> 3) * kc * NR + (j & 7));
    let b = b0;
    let gz = g0 / (GH * GW);
    let gy = (g0 / GW) % GH;
    let gx = g0 % GW;
    let k = 0;
    while (k < kc) {
      const run = min(GW - gx, kc - k);
      // The run's first position at tap 0 (byte address), then SW floats a position.
      const p = ptr(PADDED, b * Ci * evol + ((gz * SD - PD + QD) * EH + gy * SH - PH + QH) * EW + gx * SW - PW + QW);
      const d = ptr(col, k * NR);
      let t = 0;
      for (; t + 4 <= run; t += 4) {
        const q = p + <usize>t * step;
        transpose4_store(load4(q + t0), load4(q + t1), load4(q + t2), load4(q + t3), d + (<usize>t << 5), 32);
      }
      for (; t < run; t++) {
        const q = p + <usize>t * step;
        const o = d + (<usize>t << 5);
        store<f32>(o, load<f32>(q + t0));
        store<f32>(o, load<f32>(q + t1), 4);
        store<f32>(o, load<f32>(q + t2), 8);
        store<f32>(o, load<f32>(q + t3), 12);
      }
      k += run;
      gx = 0;
      if (++gy == GH) {
        gy = 0;
        if (++gz == GD) { gz = 0; b++; }
      }
    }
  }
  zero_past(kc, nc, dst);
}

/** Byte offset in a padded image of reduction column n = ci·kvol + tap (pack_padded_t). */
// @ts-ignore: decorator
@inline function padded_tap(n: i32, kvol: i32, evol: i32): usize {
  const ci = n / kvol;
  const r = n - ci * kvol;
  return <usize>(ci * evol + ((r / (KH * KW)) * EH + (r / KW) % KH) * EW + r % KW) << 2;
}

/** Four positions of a padded row from q, SW floats apart (for stride 2 the second load ends at the fourth). */
// @ts-ignore: decorator
@inline function load4(q: usize): v128 {
  if (SW == 1) return v128.load(q);
  if (SW == 2) return v128.shuffle<f32>(v128.load(q), v128.load(q, 12), 0, 2, 5, 7);
  const step = <usize>SW << 2;
  let v = v128.load32_zero(q);
  v = v128.load32_lane(q + step, v, 1);
  v = v128.load32_lane(q + 2 * step, v, 2);
  return v128.load32_lane(q + 3 * step, v, 3);
}

/** Position t of a run for the four columns, one value each (zero in the padding). */
function pack_t_scalar(d: usize, t: i32, r0: usize, r1: usize, r2: usize, r3: usize, x0: i32, x1: i32, x2: i32, x3: i32): void {
  const p = d + (<usize>t << 5);
  store<f32>(p, pad_or(r0, x0 + t * SW));
  store<f32>(p, pad_or(r1, x1 + t * SW), 4);
  store<f32>(p, pad_or(r2, x2 + t * SW), 8);
  store<f32>(p, pad_or(r3, x3 + t * SW), 12);
}

// @ts-ignore: decorator
@inline function pad_or(row: usize, ix: i32): f32 {
  return row && <u32>ix < <u32>IW ? load<f32>(ptr(row, ix)) : 0;
}

/**
 * conv_grad_weight: dw[Co, Ci·kvol] = Σ_b dy[b] · im2col(x[b])ᵀ. The geometry's grid is dy's
 * spatial size. Scratch: gemmScratch(Co, Ci·kvol, B·G) floats and `padded` (paddedFloats, as for
 * conv_fwd); or, for the direct path, rb (rbFloats floats, `ny` staged rows per (ci, kd):
 * gradWeightDirect in wasm.ts) and scratch 0.
 */
export function conv_grad_weight(B: i32, Ci: i32, Co: i32, x: usize, dy: usize, dw: usize, scratch: usize, rb: usize, rbFloats: i32, ny: i32, padded: usize, paddedFloats: i32): void {
  if (rb != 0) {
    grad_weight_direct(B, Ci, Co, x, dy, dw, rb, rbFloats, ny);
    return;
  }
  drop_padded();
  if (paddedFloats >= 0) {
    need_padding();
    stage_padded(B, Ci, x, padded, paddedFloats);
  }
  const G = GD * GH * GW;
  const N = Ci * KD * KH * KW;
  const K = B * G;
  if (K == 0) memory.fill(dw, 0, <usize>(Co * N) << 2);
  const kcMax = min(K, KC);
  const pa = scratch;
  const pb = ptr(pa, ((min(Co, MC) + MR - 1) / MR) * MR * kcMax);
  const tile = ptr(pb, kcMax * ((min(N, NC) + NR - 1) / NR) * NR);
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      if (PADDED) pack_padded_t(kc, pc, nc, jc, Ci, pb);
      else pack_im2col_t(kc, pc, nc, jc, Ci, x, pb);
      for (let ic = 0; ic < Co; ic += MC) {
        const mc = min(MC, Co - ic);
        pack_dy(mc, ic, kc, pc, Co, dy, pa);
        gemm_macro(mc, nc, kc, pa, pb, ptr(dw, ic * N + jc), N, tile, pc == 0);
      }
    }
  }
}

/**
 * conv_grad_weight transposed, with im2col read in place: dwᵀ[Ci·kvol, Co] = im2col(x) · dyᵀ.
 * Per KC block of positions (the same blocks as the packed path, so each weight's sum runs in
 * the same order: the same bits), the image rows its grid rows read are staged once per (ci, kd)
 * (stage_row): for each run of the block's grid rows within one slice of one image, its
 * (rows − 1)·SH + KH image rows in order. Row (ci, kd, kh, kw) of im2col at a position is then
 * staged row (ci, kd)·ny + (its run's first staged row + (y − y_run)·SH) + kh, column kw's phase
 * and the position's column: a per-position offset (tab) plus a per-row one (rows). Only dyᵀ
 * (positions × Co) is packed; packing im2col wrote kvol values per input.
 * rb: tab [KC] i32, rows [Ci·kvol] i32, packed dyᵀ [KC × Co rounded up to NR], a tile,
 * dwᵀ [Ci·kvol × Co], staged rows [Ci·KD × ny × stagedRow()].
 */
function grad_weight_direct(B: i32, Ci: i32, Co: i32, x: usize, dy: usize, dw: usize, rb: usize, rbFloats: i32, ny: i32): void {
  const G = GD * GH * GW;
  const kvol = KD * KH * KW;
  const N = Ci * kvol;
  const K = B * G;
  const row = stagedRow();
  const q = row / SW;
  const cols = (Co + NR - 1) / NR * NR;
  const tab = rb;
  const rows = ptr(tab, KC);
  const pb = ptr(rows, (N + 3) & ~3);
  const tile = ptr(pb, KC * cols);
  const dwT = ptr(tile, MR * NR);
  const staged = ptr(dwT, N * Co);
  if (KC + ((N + 3) & ~3) + KC * cols + MR * NR + N * Co + Ci * KD * ny * row > rbFloats) unreachable();
  let i = 0;
  for (let ci = 0; ci < Ci; ci++) {
    for (let kd = 0; kd < KD; kd++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++, i++) store<i32>(rows + (<usize>i << 2), ((((ci * KD + kd) * ny + kh) * row + (kw % SW) * q + kw / SW) << 2));
      }
    }
  }
  if (K == 0) memory.fill(dwT, 0, <usize>(N * Co) << 2);
  const ivol = ID * IH * IW;
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    // The block's grid rows R = (b·GD + z)·GH + y, in runs of one (b, z); `at`: staged rows so far.
    const rEnd = (pc + kc - 1) / GW + 1;
    let at = 0;
    for (let R = pc / GW; R < rEnd; ) {
      const y0 = R % GH;
      const n = min(GH - y0, rEnd - R);
      const bz = R / GH;
      const b = bz / GD;
      const z = bz % GD;
      const nyRun = (n - 1) * SH + KH;
      if (at + nyRun > ny) unreachable();
      stage_rows(Ci, ptr(x, b * Ci * ivol), z, y0, n, staged, ny, at);
      // Positions of the run: staged row at + (y − y0)·SH, column gx.
      const k0 = max(R * GW, pc), k1 = min((R + n) * GW, pc + kc);
      for (let p = k0; p < k1; p++) store<i32>(tab + (<usize>(p - pc) << 2), ((at + (p / GW - R) * SH) * row + p % GW) << 2);
      at += nyRun;
      R += n;
    }
    pack_dy_t(kc, pc, Co, dy, pb);
    for (let ic = 0; ic < N; ic += MC) {
      gemm_macro_direct_a(min(MC, N - ic), Co, kc, rows + (<usize>ic << 2), staged, tab, pb, ptr(dwT, ic * Co), Co, tile, pc == 0);
    }
  }
  for (let co = 0; co < Co; co++) {
    for (let j = 0; j < N; j++) store<f32>(ptr(dw, co * N + j), load<f32>(ptr(dwT, j * Co + co)));
  }
}

/**
 * dyᵀ for positions [pc, pc+kc) in NR-column panels (grad_weight_direct's B): panel row k holds
 * dy[b, co, g] of position pc + k for the panel's co, zero past Co. Four positions of one image
 * and four channels at a time: four vector loads along g and a 4×4 transpose.
 */
function pack_dy_t(kc: i32, pc: i32, Co: i32, dy: usize, pb: usize): void {
  const G = GD * GH * GW;
  const cols = (Co + NR - 1) / NR * NR;
  const co4 = Co & ~3;
  for (let k = 0; k < kc; ) {
    const p = pc + k;
    const b = p / G;
    const g = p - b * G;
    const src = ptr(dy, b * Co * G + g);
    const run = min(G - g, kc - k); // positions of this image
    let t = 0;
    for (; t + 4 <= run; t += 4) {
      for (let co = 0; co < co4; co += 4) {
        const s = ptr(src, co * G + t);
        transpose4_store(v128.load(s), v128.load(ptr(s, G)), v128.load(ptr(s, 2 * G)), v128.load(ptr(s, 3 * G)),
          ptr(pb, ((co / NR) * kc + k + t) * NR + co % NR), NR << 2);
      }
      for (let u = t; u < t + 4; u++) pack_dy_t_tail(co4, cols, Co, G, kc, k + u, ptr(src, u), pb);
    }
    for (; t < run; t++) pack_dy_t_tail(0, cols, Co, G, kc, k + t, ptr(src, t), pb);
    k += run;
  }
}

/** Lanes co0 … cols−1 of dyᵀ's panel row k (src: dy at that position, channel 0). */
// @ts-ignore: decorator
@inline function pack_dy_t_tail(co0: i32, cols: i32, Co: i32, G: i32, kc: i32, k: i32, src: usize, pb: usize): void {
  for (let co = co0; co < cols; co++) store<f32>(ptr(pb, ((co / NR) * kc + k) * NR + co % NR), co < Co ? load<f32>(ptr(src, co * G)) : 0);
}

/**
 * conv_transpose, as s_z·s_y·s_x stride-1 convolutions ("phases", one per output residue) so that
 * no multiply touches a zero of the dilated input and no col2im is needed. Per dim, the outputs
 * o = ρ + s·u take the taps t ≡ ρ + p (mod s): t = t0 + s·v, v < n = ⌈(K − t0)/s⌉, reading
 * x[u + c − v], c = (ρ + p − t0)/s; with the taps flipped (v' = n − 1 − v) that is a correlation
 * of x with an n-tap kernel and pad n − 1 − c. Expects conv_geom(image = y, grid = x, …).
 * Scratch: gemmScratch(Co, B·maxPhaseGrid, Ci·maxPhaseTaps), then cbuf (Co · min(that N, NC)),
 * then wp (panelRows(Co) · Ci · kvol) for the phases' weights (phase_panels), then rb (rbFloats; see implicit_gemm), then
 * `padded` (paddedFloats, as for conv_fwd; one copy for all phases).
 */
export function conv_transpose(B: i32, Ci: i32, Co: i32, x: usize, w: usize, hasBias: i32, bias: usize, y: usize, scratch: usize, cbuf: usize, wp: usize, rb: usize, rbFloats: i32, padded: usize, paddedFloats: i32): void {
  save_transpose_geom();
  phase_panels(Ci, Co, w, wp);
  drop_padded();
  if (paddedFloats >= 0) {
    // One padded copy of x serves every phase: the widest padding any of them reads.
    for (let rz = 0; rz < WSD; rz++)
      for (let ry = 0; ry < WSH; ry++)
        for (let rx = 0; rx < WSW; rx++) if (set_phase(rz, ry, rx) && KD * KH * KW > 0) need_padding();
    stage_padded(B, Ci, x, padded, paddedFloats);
  }
  const rowsP = panelRows(Co);
  let taps = 0; // taps of the phases so far: phase p's panels start at wp + panelRows(Co)·Ci·taps
  for (let rz = 0; rz < WSD; rz++) {
    for (let ry = 0; ry < WSH; ry++) {
      if (rb == 0) {
        for (let rx = 0; rx < WSW; rx++) {
          if (!set_phase(rz, ry, rx)) continue;
          implicit_gemm(B, Ci, Co, x, ptr(wp, rowsP * Ci * taps), 0, true, hasBias, bias, y, scratch, cbuf, 0, 0);
          taps += KD * KH * KW;
        }
        continue;
      }
      // Direct path: block by block, each block's x-phases one after the other, so that the
      // interleaved columns they write (stride WSW) are still in cache for the next phase; phase
      // by phase, each output row was fetched from memory WSW times. The blocks are those of
      // implicit_gemm, sized by the widest phase (rx = 0); a block's size does not change its sums.
      if (!set_phase(rz, ry, 0)) continue;
      const rows = min(NC / GW, GH);
      if (rows == 0) unreachable();
      const t0 = taps;
      for (let b = 0; b < B; b++) {
        for (let z = 0; z < GD; z++) {
          for (let y0 = 0; y0 < GH; y0 += rows) {
            taps = t0;
            for (let rx = 0; rx < WSW; rx++) {
              if (!set_phase(rz, ry, rx)) continue;
              const n = KD * KH * KW;
              if (n > 0) direct_block(b, z, y0, min(rows, GH - y0), Ci, Co, x, ptr(wp, rowsP * Ci * taps), 0, true, hasBias, bias, y, scratch, cbuf, rb, rbFloats);
              else gemm_block((b * GD + z) * GH * GW + y0 * GW, min(rows, GH - y0) * GW, Ci, Co, x, 0, 0, true, hasBias, bias, y, scratch, cbuf, 0, 0);
              taps += n;
            }
          }
        }
      }
    }
  }
  restore_transpose_geom();
}

/**
 * conv_transpose of stride 1 for Co ≤ SMALL_CO: its one phase is a stride-1 conv with the
 * flipped, transposed weight (wp: Co · Ci · kvol floats), run by conv_small_co.
 */
export function conv_transpose_small_co(B: i32, Ci: i32, Co: i32, x: usize, w: usize, hasBias: i32, bias: usize, y: usize, wp: usize): void {
  if (SD != 1 || SH != 1 || SW != 1) unreachable();
  save_transpose_geom();
  phase_weights(Ci, Co, w, wp);
  set_phase(0, 0, 0);
  conv_small_co(B, Ci, Co, x, wp, hasBias, bias, y);
  restore_transpose_geom();
}

/** Keeps the geometry conv_geom set (image = y, grid = x) as conv_transpose's own, for set_phase. */
function save_transpose_geom(): void {
  OD = ID; OH = IH; OW = IW;
  WKD = KD; WKH = KH; WKW = KW;
  WSD = SD; WSH = SH; WSW = SW;
  WPD = PD; WPH = PH; WPW = PW;
  XD = GD; XH = GH; XW = GW;
}

/** Sets the geometry back to what conv_geom set. */
function restore_transpose_geom(): void {
  ID = OD; IH = OH; IW = OW; GD = XD; GH = XH; GW = XW;
  KD = WKD; KH = WKH; KW = WKW; SD = WSD; SH = WSH; SW = WSW; PD = WPD; PH = WPH; PW = WPW;
}

/**
 * conv_transpose the classic way: y[b] = col2im(wᵀ · x[b]) (+ bias). Cheaper than the phases
 * when Co is small next to Ci: it packs only x (Ci × G) and moves Co·kvol·G column values,
 * where the phases pack Ci·kvol·G im2col values. The geometry's image is y's spatial size,
 * its grid x's. Grid positions go in chunks of `chunk` columns so that the column buffer
 * (Co·kvol × chunk floats) stays small. Scratch: gemmScratch(Co·kvol, chunk, Ci), then the
 * column buffer; see convTransposeWasm.
 */
export function conv_transpose_col2im(B: i32, Ci: i32, Co: i32, x: usize, w: usize, hasBias: i32, bias: usize, y: usize, chunk: i32, scratch: usize, col: usize): void {
  const G = GD * GH * GW;
  const I = ID * IH * IW;
  const kvol = KD * KH * KW;
  const M = Co * kvol;
  for (let b = 0; b < B; b++) {
    for (let co = 0; co < Co; co++) {
      const v = hasBias ? load<f32>(ptr(bias, co)) : f32(0);
      const row = ptr(y, (b * Co + co) * I);
      for (let i = 0; i < I; i++) store<f32>(ptr(row, i), v);
    }
  }
  for (let b = 0; b < B; b++) {
    const yb = ptr(y, b * Co * I);
    for (let n0 = 0; n0 < G; n0 += chunk) {
      const nc = min(chunk, G - n0);
      // col[m, n] = Σ_ci w[ci, m] · x[b, ci, n0 + n]
      gemm_acc(M, nc, Ci, w, 1, M, ptr(x, b * Ci * G + n0), G, 1, col, nc, scratch, true);
      // col2im: scatter-add every (co, offset) row into the image.
      for (let m = 0; m < M; m++) {
        const co = m / kvol;
        const r = m - co * kvol;
        const kd = r / (KH * KW);
        const kh = (r / KW) % KH;
        const kw = r % KW;
        const yc = ptr(yb, co * I);
        const src = ptr(col, m * nc);
        let gz = n0 / (GH * GW);
        let gy = (n0 / GW) % GH;
        let gx = n0 % GW;
        let j = 0;
        while (j < nc) {
          const run = min(GW - gx, nc - j);
          const iz = gz * SD + kd - PD;
          const iy = gy * SH + kh - PH;
          if (iz >= 0 && iz < ID && iy >= 0 && iy < IH) {
            const row = ptr(yc, (iz * IH + iy) * IW);
            let ix = gx * SW + kw - PW;
            for (let t = 0; t < run; t++) {
              if (ix >= 0 && ix < IW) {
                const d = ptr(row, ix);
                store<f32>(d, load<f32>(d) + load<f32>(ptr(src, j + t)));
              }
              ix += SW;
            }
          }
          j += run;
          gx = 0;
          if (++gy == GH) { gy = 0; gz++; }
        }
      }
    }
  }
}
