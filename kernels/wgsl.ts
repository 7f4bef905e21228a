// Small helpers shared by the WGSL emitters.

import type { WgslPlan, WgslTarget } from './types.ts';

const MAX_GROUPS = 65535;

/**
 * A 1-D launch over `n` invocations of `wg` threads each, folded into 2-D when it exceeds the
 * per-dimension workgroup limit. The shader computes its index with `LINEAR_INDEX`.
 */
export function grid1d(n: number, wg = 256): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  return groups <= MAX_GROUPS ? [groups, 1, 1] : [MAX_GROUPS, Math.ceil(groups / MAX_GROUPS), 1];
}

/** WGSL expression for the flat invocation index of a `grid1d` launch (needs `gid`, `nwg` builtins). */
export const LINEAR_INDEX = 'gid.x + gid.y * nwg.x * WG';

/** Header for an elementwise-style kernel of `wg` threads with `gid` and `nwg` in scope. */
export const linearMain = (wg = 256): string =>
  `const WG: u32 = ${wg}u;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)`;

/** A WGSL float literal that round-trips a JS number through f32. */
export const f32lit = (x: number): string => {
  if (!Number.isFinite(x)) throw new Error(`wgsl: cannot embed non-finite constant ${x}`);
  const s = Math.fround(x).toString();
  return /[.eE]/.test(s) ? s : `${s}.0`;
};

/**
 * A one-pass plan over `n` outputs: read-only inputs named `inputs` (bindings 0…k−1), the
 * read_write output `output` (binding k), and `body`, run for each index `i` < n.
 */
export function mapPlan(n: number, inputs: string[], output: string, body: string, helpers = ''): WgslPlan {
  const decls = [...inputs.map((name, b) => `@group(0) @binding(${b}) var<storage, read> ${name}: array<f32>;`), `@group(0) @binding(${inputs.length}) var<storage, read_write> ${output}: array<f32>;`];
  return {
    passes: [
      {
        bindings: [...inputs.keys(), inputs.length],
        workgroups: grid1d(n),
        code: `${decls.join('\n')}
${helpers}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  ${body}
}`,
      },
    ],
  };
}

// WG_SUM: the workgroup sum shared by the reduce, batchnorm, spectral and loss emitters: each of
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
// It starts with its `enable` directive (which must precede every declaration), so a shader puts
// WG_SUM(t) first; WGSL lets the bindings and functions that follow come in any order.
export const WG_SUM = (t: WgslTarget, wg = 256): string =>
  t.subgroups
    ? `enable subgroups;
var<workgroup> red: array<f32, ${wg}>;
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
