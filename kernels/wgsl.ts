// Small helpers shared by the WGSL emitters.

import type { WgslPlan } from './types.ts';

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
