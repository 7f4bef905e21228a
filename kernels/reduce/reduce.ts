// reduce_sum, reduce_mean and broadcast_to, plus sumToShape for gradient rules.
//
// A reduction runs over the collapsed iteration space of x (kept and reduced axes merged into
// alternating runs; broadcast.ts). On WebGPU: up to 64 terms per output, one thread per output;
// longer, one workgroup per output summed by wg_sum (kernels/wgsl.ts WG_SUM: subgroupAdd where the
// device has subgroups, else a workgroup-memory tree); long reductions with few outputs (a
// per-channel sum over B·H·W) split each output over G workgroups and add the G partials in a
// second pass, so the GPU stays busy. On Wasm: SIMD row sums / row adds.

import type { Attrs, Emitter, OpDef, Shape, WgslPass, WgslTarget } from '../types.ts';
import { CORE_WGSL, OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, WG_SUM, f32lit, grid1d, linearMain, mapPlan } from '../wgsl.ts';
import { broadcastStrides, collapse, contiguousStrides, gather64, offsetExpr, padForWasm } from '../elementwise/broadcast.ts';

export interface ReduceAttrs extends Attrs {
  /** Axes to reduce (negative counts from the end); omitted: every axis; []: none. */
  axes?: number[];
  keepdims?: boolean;
}

export function normalizeAxes(op: string, x: Shape, axes: readonly number[] | undefined): number[] {
  if (axes === undefined) return x.map((_, i) => i);
  if (!Array.isArray(axes)) throw new OpError(op, `attr axes must be an array of integers, got ${JSON.stringify(axes)}`, [x]);
  const out = axes.map((a) => {
    if (!Number.isInteger(a) || a < -x.length || a >= x.length)
      throw new OpError(op, `axis ${a} is out of range for a tensor of rank ${x.length}`, [x], `Use axes in [${-x.length}, ${x.length - 1}]`);
    return a < 0 ? a + x.length : a;
  });
  if (new Set(out).size !== out.length) throw new OpError(op, `axes ${JSON.stringify(axes)} repeat an axis`, [x]);
  return out.sort((a, b) => a - b);
}

/** The output shape with reduced axes kept as 1 (keepdims = true). */
const keptShape = (x: Shape, axes: number[]): number[] => x.map((d, i) => (axes.includes(i) ? 1 : d));

interface ReducePlan {
  keepDims: number[];
  keepX: number[];
  redDims: number[];
  redX: number[];
  nOut: number;
  /** Terms per output. */
  R: number;
  /** The collapsed space for the Wasm kernel: strides of [x, y]. */
  dims: number[];
  strides: number[][];
}

function reducePlan(x: Shape, axes: number[]): ReducePlan {
  const ks = keptShape(x, axes);
  const ys = contiguousStrides(ks).map((s, i) => (axes.includes(i) ? 0 : s));
  const c = collapse(x, [contiguousStrides(x), ys]);
  const p: ReducePlan = { keepDims: [], keepX: [], redDims: [], redX: [], nOut: numel(ks), R: numel(x) / Math.max(1, numel(ks)), dims: c.dims, strides: c.strides };
  if (numel(x) === 0) p.R = 0;
  c.dims.forEach((d, i) => {
    if (c.strides[1][i] !== 0) {
      p.keepDims.push(d);
      p.keepX.push(c.strides[0][i]);
    } else if (c.strides[0][i] !== 0) {
      p.redDims.push(d);
      p.redX.push(c.strides[0][i]);
    }
  });
  return p;
}

/** The WGSL index of output `o`'s first term and of term `r` within it. */
function indexExprs(p: ReducePlan): { base: (o: string) => string; off: (r: string) => string } {
  return {
    base: (o) => (p.keepDims.length ? offsetExpr(p.keepDims, p.keepX, o) : '0u'),
    off: (r) => (p.redDims.length ? offsetExpr(p.redDims, p.redX, r) : '0u'),
  };
}

/**
 * One workgroup per (output, chunk): `total` = outputs × chunks; each sums terms
 * [g·chunk, min((g+1)·chunk, R)) of its output with wg_sum.
 */
function workgroupPass(bindings: number[], total: number, G: number, R: number, wg: number, base: (o: string) => string, off: (r: string) => string, scale: number, t: WgslTarget): WgslPass {
  const chunk = Math.ceil(R / G);
  return {
    bindings,
    workgroups: grid1d(total, 1),
    code: `${WG_SUM(t, wg)}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
const WG: u32 = ${wg}u;
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= ${total}u) { return; }
  let o = w / ${G}u;
  let lo = (w % ${G}u) * ${chunk}u;
  let hi = min(lo + ${chunk}u, ${R}u);
  let base = ${base('o')};
  var acc = 0.0;
  for (var r = lo + lid; r < hi; r += WG) { acc += X[base + ${off('r')}]; }
  let sum = wg_sum(acc, lid);
  if (lid == 0u) { Y[w] = sum * ${f32lit(scale)}; }
}`,
  };
}

function reduceOp(name: string, mean: boolean): OpDef<ReduceAttrs> {
  return {
    name,
    shape: ([x, ...rest], { axes, keepdims = false }) => {
      if (!x || rest.length) throw new OpError(name, `takes 1 input, got ${rest.length + (x ? 1 : 0)}`, [x, ...rest].filter(Boolean));
      const ax = normalizeAxes(name, x, axes);
      return [keepdims ? keptShape(x, ax) : x.filter((_, i) => !ax.includes(i))];
    },
    float64: ([x], [s], { axes }) => {
      const ax = normalizeAxes(name, s, axes);
      const ks = keptShape(s, ax);
      const ys = broadcastStrides(ks, s); // 0 on reduced axes
      const y = new Float64Array(numel(ks));
      const xs = contiguousStrides(s);
      for (let i = 0; i < x.length; i++) {
        let o = 0;
        for (let d = 0; d < s.length; d++) o += (Math.floor(i / xs[d]) % s[d]) * ys[d];
        y[o] += x[i];
      }
      const R = numel(s) / Math.max(1, y.length);
      return [mean ? y.map((v) => v / R) : y];
    },
    grad: (em, { inputs: [x], dOutputs: [dy], attrs: { axes } }) => {
      if (!dy) return [null];
      const xs = em.shape(x);
      const ax = normalizeAxes(name, xs, axes);
      let g = em.call('reshape', [dy], { shape: keptShape(xs, ax) })[0];
      if (mean) g = em.call('scale', [g], { a: numel(em.shape(g)) / numel(xs), b: 0 })[0];
      return [em.call('broadcast_to', [g], { shape: [...xs] })[0]];
    },
    wgsl: ([s], { axes }, t = CORE_WGSL) => {
      const p = reducePlan(s, normalizeAxes(name, s, axes));
      const scale = mean && p.R > 0 ? 1 / p.R : 1;
      const { base, off } = indexExprs(p);
      if (p.R <= 64) {
        return {
          passes: [
            {
              bindings: [0, 1],
              workgroups: grid1d(p.nOut),
              code: `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${linearMain()} {
  let o = ${LINEAR_INDEX};
  if (o >= ${p.nOut}u) { return; }
  let base = ${base('o')};
  var acc = 0.0;
  for (var r = 0u; r < ${p.R}u; r++) { acc += X[base + ${off('r')}]; }
  Y[o] = acc * ${f32lit(scale)};
}`,
            },
          ],
        };
      }
      const wg = p.R < 1024 ? 64 : 256;
      // Split long reductions so that about 2048 workgroups run, each over ≥ 4096 terms.
      const G = Math.max(1, Math.min(Math.ceil(p.R / 4096), Math.ceil(2048 / p.nOut), 1024));
      if (G === 1) return { passes: [workgroupPass([0, 1], p.nOut, 1, p.R, wg, base, off, scale, t)] };
      return {
        scratch: [p.nOut * G],
        passes: [
          workgroupPass([0, 2], p.nOut * G, G, p.R, wg, base, off, 1, t),
          workgroupPass([2, 1], p.nOut, 1, G, G < 512 ? 64 : 256, (o) => `${o} * ${G}u`, (r) => r, scale, t),
        ],
      };
    },
    wasm: ([s], { axes }) => {
      const p = reducePlan(s, normalizeAxes(name, s, axes));
      const c = padForWasm(name, { dims: p.dims, strides: p.strides }, [s]);
      const scale = mean && p.R > 0 ? 1 / p.R : 1;
      const args = [...c.dims, ...c.strides[0], ...c.strides[1]];
      return { run: (k, [x, y]) => void k.rd_sum(x, y, p.nOut, scale, ...args) };
    },
  };
}

export const reduceSum = reduceOp('reduce_sum', false);
export const reduceMean = reduceOp('reduce_mean', true);

export interface BroadcastAttrs extends Attrs {
  shape: number[];
}

function broadcastTarget(x: Shape, shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new OpError('broadcast_to', `attr shape must be an array of integers ≥ 0, got ${JSON.stringify(shape)}`, [x]);
  const ok = x.length <= shape.length && x.every((d, i) => d === 1 || d === shape[shape.length - x.length + i]);
  if (!ok)
    throw new OpError('broadcast_to', `cannot broadcast ${fmtShape(x)} to ${fmtShape(shape)}`, [x], 'Axes are matched from the right; each input axis must equal the target or be 1');
  return [...shape];
}

export const broadcastTo: OpDef<BroadcastAttrs> = {
  name: 'broadcast_to',
  shape: ([x], { shape }) => [broadcastTarget(x, shape)],
  float64: ([x], [s], { shape }) => {
    const c = collapse(shape, [broadcastStrides(s, shape)]);
    return [gather64(x, c.dims, c.strides[0])];
  },
  grad: (em, { inputs: [x], dOutputs: [dy] }) => [dy && sumToShape(em, dy, em.shape(x))],
  wgsl: ([s], { shape }) => {
    const c = collapse(shape, [broadcastStrides(s, shape)]);
    return mapPlan(numel(shape), ['X'], 'Y', `Y[i] = X[${offsetExpr(c.dims, c.strides[0], 'i')}];`);
  },
  wasm: ([s], { shape }) => {
    const c = padForWasm('broadcast_to', collapse(shape, [broadcastStrides(s, shape)]), [s]);
    const args = [...c.dims, ...c.strides[0]];
    return { run: (k, [x, y]) => void k.rd_broadcast(x, y, ...args) };
  },
};

/**
 * Reduces a gradient `dy` of a broadcast result back to an input's `shape`: sums the leading
 * axes `shape` lacks and the axes where `shape` has 1, then reshapes. Returns `dy` itself when
 * the shapes already agree.
 */
export function sumToShape<T>(em: Emitter<T>, dy: T, shape: Shape): T {
  const ds = em.shape(dy);
  if (fmtShape(ds) === fmtShape(shape)) return dy;
  const lead = ds.length - shape.length;
  if (lead < 0 || shape.some((d, i) => d !== 1 && d !== ds[lead + i]))
    throw new OpError('sumToShape', `a gradient of shape ${fmtShape(ds)} cannot come from broadcasting ${fmtShape(shape)}`, [ds, shape]);
  const axes = ds.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && ds[i] !== 1));
  const r = axes.length ? em.call('reduce_sum', [dy], { axes, keepdims: false })[0] : dy;
  return fmtShape(em.shape(r)) === fmtShape(shape) ? r : em.call('reshape', [r], { shape: [...shape] })[0];
}
