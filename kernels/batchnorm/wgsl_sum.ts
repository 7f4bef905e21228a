// A workgroup tree reduction shared by the batchnorm, spectral and loss WGSL emitters: each of
// WG threads contributes a partial, every thread gets the total back. Call it from uniform
// control flow only (it holds barriers).

export const WG_SUM = (wg = 256): string => `var<workgroup> red: array<f32, ${wg}>;
fn wg_sum(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;
