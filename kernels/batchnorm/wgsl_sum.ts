// The workgroup sum shared by the reduce, batchnorm, spectral and loss WGSL emitters: each of
// WG threads contributes a partial, every thread gets the total back. Call it from uniform
// control flow only (it holds barriers and, with subgroups, subgroup operations).
//
// Without subgroups: a tree over workgroup memory, log2(WG) + 2 barriers. With them: subgroupAdd
// within each subgroup, one partial per subgroup through workgroup memory, four barriers. The
// spec fixes neither the subgroup size (4…128, possibly above WG) nor how subgroups tile the
// workgroup, so nothing is derived from lid / size: a subgroup's partial sits at the slot of
// its first active invocation (the other slots hold 0), and every subgroup adds all WG slots,
// each invocation a block of WG / lanes of them by its rank among the active ones, then
// subgroupAdd. Blocks, not strides: where subgroups are runs of lid (the usual layout) strides
// would hand every partial to one lane, a chain of WG / size adds (64 on SwiftShader's size 4,
// measurably less accurate than the tree). Subgroups with different numbers of lanes would add
// in different orders, so the total of the subgroup holding lid 0 is broadcast through workgroup
// memory: every invocation gets the same value. The order of the adds depends on the device's
// subgroup size and layout only: the same bits run to run while the device keeps them.

import type { WgslTarget } from '../types.ts';

/** What a shader that uses WG_SUM(t) starts with (an `enable` must precede every declaration). */
export const WG_SUM_ENABLE = (t: WgslTarget): string => (t.subgroups ? 'enable subgroups;\n' : '');

export const WG_SUM = (t: WgslTarget, wg = 256): string =>
  t.subgroups
    ? `var<workgroup> red: array<f32, ${wg}>;
fn wg_sum(x: f32, lid: u32) -> f32 {
  let rank = subgroupExclusiveAdd(1u);
  let lanes = subgroupAdd(1u);
  let part = subgroupAdd(x);
  red[lid] = select(0.0, part, rank == 0u);
  workgroupBarrier();
  let block = (${wg}u + lanes - 1u) / lanes;
  let lo = rank * block;
  let hi = min(lo + block, ${wg}u);
  var acc = 0.0;
  for (var i = lo; i < hi; i++) { acc += red[i]; }
  let r = subgroupAdd(acc);
  workgroupBarrier();
  if (lid == 0u) { red[0] = r; }
  workgroupBarrier();
  let total = red[0];
  workgroupBarrier();
  return total;
}`
    : `var<workgroup> red: array<f32, ${wg}>;
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
