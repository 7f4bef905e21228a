// AssemblyScript kernels of the resample family. Images are [B·C, D, H, W] with absent spatial
// axes passed as extent 1 (and factor 1); outputs are written row by row, contiguously. The
// factor-2 width case, the one every model uses, gets a SIMD path (lane shuffles); the rest is
// scalar. Nothing here allocates.

/** y = mean over k-windows (stride k, floor): out extents OD, OH, OW; inv = 1/(kd·kh·kw). */
export function rs_avgpool(
  x: usize, y: usize, nbc: i32, D: i32, H: i32, W: i32,
  kd: i32, kh: i32, kw: i32, OD: i32, OH: i32, OW: i32, inv: f32,
): void {
  let yo: usize = y;
  const vinv = f32x4.splat(inv);
  for (let bc = 0; bc < nbc; bc++)
    for (let od = 0; od < OD; od++)
      for (let oh = 0; oh < OH; oh++) {
        let ow = 0;
        if (kw == 2) {
          for (; ow + 4 <= OW; ow += 4) {
            let acc = f32x4.splat(0);
            for (let a = 0; a < kd; a++)
              for (let b = 0; b < kh; b++) {
                const r = x + (<usize>(((bc * D + od * kd + a) * H + oh * kh + b) * W + ow * 2) << 2);
                const lo = v128.load(r);
                const hi = v128.load(r, 16);
                acc = f32x4.add(acc, f32x4.add(v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), v128.shuffle<f32>(lo, hi, 1, 3, 5, 7)));
              }
            v128.store(yo + (<usize>ow << 2), f32x4.mul(acc, vinv));
          }
        }
        for (; ow < OW; ow++) {
          let s: f32 = 0;
          for (let a = 0; a < kd; a++)
            for (let b = 0; b < kh; b++) {
              const r = x + (<usize>(((bc * D + od * kd + a) * H + oh * kh + b) * W + ow * kw) << 2);
              for (let c = 0; c < kw; c++) s += load<f32>(r + (<usize>c << 2));
            }
          store<f32>(yo + (<usize>ow << 2), s * inv);
        }
        yo += <usize>OW << 2;
      }
}

/** dx of avgpool: each input gets inv·dy of its window, 0 in the floor-dropped margin. */
export function rs_avgpool_grad(
  dy: usize, dx: usize, nbc: i32, D: i32, H: i32, W: i32,
  kd: i32, kh: i32, kw: i32, OD: i32, OH: i32, OW: i32, inv: f32,
): void {
  let o: usize = dx;
  for (let bc = 0; bc < nbc; bc++)
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++) {
        const od = d / kd;
        const oh = h / kh;
        const inside = od < OD && oh < OH;
        const src = dy + (<usize>((bc * OD + od) * OH + oh) * OW << 2);
        for (let w = 0; w < W; w++) {
          const ow = w / kw;
          store<f32>(o + (<usize>w << 2), inside && ow < OW ? load<f32>(src + (<usize>ow << 2)) * inv : 0);
        }
        o += <usize>W << 2;
      }
}

/** Nearest-neighbour ×(kd, kh, kw): out extents D·kd, H·kh, W·kw. */
export function rs_upsample(x: usize, y: usize, nbc: i32, D: i32, H: i32, W: i32, kd: i32, kh: i32, kw: i32): void {
  const OW = W * kw;
  const rowBytes = <usize>OW << 2;
  let yo: usize = y;
  for (let bc = 0; bc < nbc; bc++)
    for (let d = 0; d < D * kd; d++)
      for (let h = 0; h < H * kh; h++) {
        if (h % kh != 0) {
          // Same source row as the row above: copy it.
          memory.copy(yo, yo - rowBytes, rowBytes);
        } else {
          const src = x + (<usize>((bc * D + d / kd) * H + h / kh) * W << 2);
          let i = 0;
          if (kw == 2) {
            for (; i + 4 <= W; i += 4) {
              const v = v128.load(src + (<usize>i << 2));
              const dst = yo + (<usize>i << 3);
              v128.store(dst, v128.shuffle<f32>(v, v, 0, 0, 1, 1));
              v128.store(dst, v128.shuffle<f32>(v, v, 2, 2, 3, 3), 16);
            }
          }
          for (let ow = i * kw; ow < OW; ow++) store<f32>(yo + (<usize>ow << 2), load<f32>(src + (<usize>(ow / kw) << 2)));
        }
        yo += rowBytes;
      }
}

/** y = x[..., ::sd, ::sh, ::sw]: out extents ceil(D/sd), ceil(H/sh), ceil(W/sw). */
export function rs_subsample(
  x: usize, y: usize, nbc: i32, D: i32, H: i32, W: i32,
  sd: i32, sh: i32, sw: i32, OD: i32, OH: i32, OW: i32,
): void {
  let yo: usize = y;
  for (let bc = 0; bc < nbc; bc++)
    for (let od = 0; od < OD; od++)
      for (let oh = 0; oh < OH; oh++) {
        const src = x + (<usize>((bc * D + od * sd) * H + oh * sh) * W << 2);
        for (let ow = 0; ow < OW; ow++) store<f32>(yo + (<usize>ow << 2), load<f32>(src + (<usize>(ow * sw) << 2)));
        yo += <usize>OW << 2;
      }
}

/** dx of subsample: dy scattered onto every s-th position, 0 elsewhere. */
export function rs_subsample_grad(
  dy: usize, dx: usize, nbc: i32, D: i32, H: i32, W: i32,
  sd: i32, sh: i32, sw: i32, OD: i32, OH: i32, OW: i32,
): void {
  memory.fill(dx, 0, <usize>(nbc * D * H * W) << 2);
  let src: usize = dy;
  for (let bc = 0; bc < nbc; bc++)
    for (let od = 0; od < OD; od++)
      for (let oh = 0; oh < OH; oh++) {
        const dst = dx + (<usize>((bc * D + od * sd) * H + oh * sh) * W << 2);
        for (let ow = 0; ow < OW; ow++) store<f32>(dst + (<usize>(ow * sw) << 2), load<f32>(src + (<usize>ow << 2)));
        src += <usize>OW << 2;
      }
}
