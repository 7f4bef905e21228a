// avgpool, upsample, subsample and the gradient ops they need on odd sizes (avgpool_grad,
// subsample_grad take the exact input shape as an attr, since floor/ceil lose it).
//
// Every image is handled as [B·C, D, H, W]: 1-D and 2-D images get leading extent-1 spatial
// axes with factor 1, so one kernel per op covers 1–3 spatial dims. WGSL: one thread per
// output element, extents baked in.

import type { Attrs, OpDef, Shape, WgslPlan } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { f32lit, mapPlan } from '../wgsl.ts';

type V3 = [number, number, number];

interface Geo {
  nbc: number;
  /** Input (fine) spatial extents, padded to 3. */
  S: V3;
  /** Factor per padded axis (1 on padding). */
  K: V3;
  /** Output (coarse for avgpool/subsample, fine for upsample) extents, padded to 3. */
  O: V3;
}

function factor(op: string, name: string, v: unknown, s: Shape[]): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new OpError(op, `attr ${name} must be an integer ≥ 1, got ${JSON.stringify(v)}`, s);
  return v as number;
}

/** Padded geometry of an image `x` [B, C, ...spatial] with factor k on every spatial axis. */
function geometry(op: string, x: Shape, k: number, out: (n: number, k: number) => number, all: Shape[]): Geo {
  if (x.length < 3 || x.length > 5) throw new OpError(op, `expects an image [B, C, ...spatial] with 1–3 spatial dims, got rank ${x.length}`, all);
  const sp = x.slice(2);
  const pad = 3 - sp.length;
  const S = [...Array(pad).fill(1), ...sp] as V3;
  const K = S.map((_, i) => (i < pad ? 1 : k)) as V3;
  const O = S.map((n, i) => (i < pad ? 1 : out(n, k))) as V3;
  if (O.some((n) => n < 1)) throw new OpError(op, `factor ${k} is larger than the spatial size ${fmtShape(sp)}`, all, 'Use a smaller factor or a larger image');
  return { nbc: x[0] * x[1], S, K, O };
}

const floorDiv = (n: number, k: number) => Math.floor(n / k);
const ceilDiv = (n: number, k: number) => Math.ceil(n / k);
const times = (n: number, k: number) => n * k;
const outShape = (x: Shape, g: Geo): number[] => [x[0], x[1], ...g.O.slice(3 - (x.length - 2))];

/** A WGSL kernel over `n` elements of a [nbc, E0, E1, E2] space with (bc, d, h, w) in scope. */
function gatherPass(n: number, E: V3, body: string): WgslPlan {
  const coords = `let w = i % ${E[2]}u;
  let h = (i / ${E[2]}u) % ${E[1]}u;
  let d = (i / ${E[1] * E[2]}u) % ${E[0]}u;
  let bc = i / ${E[0] * E[1] * E[2]}u;`;
  return mapPlan(n, ['X'], 'Y', `${coords}\n  ${body}`);
}

/** WGSL flat index of (bc, a, b, c) in a [nbc, E0, E1, E2] tensor. */
const at = (E: V3, a: string, b: string, c: string) => `((bc * ${E[0]}u + ${a}) * ${E[1]}u + ${b}) * ${E[2]}u + ${c}`;

/** Float64 loop over a [nbc, E0, E1, E2] space in row-major order. */
function each(nbc: number, E: V3, f: (bc: number, d: number, h: number, w: number, i: number) => void): void {
  let i = 0;
  for (let bc = 0; bc < nbc; bc++) for (let d = 0; d < E[0]; d++) for (let h = 0; h < E[1]; h++) for (let w = 0; w < E[2]; w++) f(bc, d, h, w, i++);
}
const idx = (E: V3, bc: number, d: number, h: number, w: number) => ((bc * E[0] + d) * E[1] + h) * E[2] + w;

export interface PoolAttrs extends Attrs {
  k: number;
}
export interface ShapeAttrs extends Attrs {
  /** The forward input's shape: the gradient's output shape. */
  shape: number[];
}

const poolGeo = (op: string, x: Shape, k: unknown, all: Shape[]) => geometry(op, x, factor(op, 'k', k, all), floorDiv, all);

export const avgpool: OpDef<PoolAttrs> = {
  name: 'avgpool',
  shape: ([x], { k }) => [outShape(x, poolGeo('avgpool', x, k, [x]))],
  float64: ([x], [s], { k }) => {
    const { nbc, S, K, O } = poolGeo('avgpool', s, k, [s]);
    const y = new Float64Array(nbc * numel(O));
    const inv = 1 / numel(K);
    each(nbc, S, (bc, d, h, w, i) => {
      const [od, oh, ow] = [Math.floor(d / K[0]), Math.floor(h / K[1]), Math.floor(w / K[2])];
      if (od < O[0] && oh < O[1] && ow < O[2]) y[idx(O, bc, od, oh, ow)] += x[i] * inv;
    });
    return [y];
  },
  grad: (em, { inputs: [x], dOutputs: [dy], attrs: { k } }) => [dy && em.call('avgpool_grad', [dy], { k, shape: [...em.shape(x)] })[0]],
  wgsl: ([s], { k }) => {
    const { nbc, S, K, O } = poolGeo('avgpool', s, k, [s]);
    return gatherPass(
      nbc * numel(O),
      O,
      `var acc = 0.0;
  for (var a = 0u; a < ${K[0]}u; a++) {
    for (var b = 0u; b < ${K[1]}u; b++) {
      let row = ${at(S, `d * ${K[0]}u + a`, `h * ${K[1]}u + b`, `w * ${K[2]}u`)};
      for (var c = 0u; c < ${K[2]}u; c++) { acc += X[row + c]; }
    }
  }
  Y[i] = acc * ${f32lit(1 / numel(K))};`,
    );
  },
  wasm: ([s], { k }) => {
    const { nbc, S, K, O } = poolGeo('avgpool', s, k, [s]);
    return { run: (m, [x, y]) => void m.rs_avgpool(x, y, nbc, ...S, ...K, ...O, 1 / numel(K)) };
  },
};

/** The exact input geometry of a gradient op, checked against dy. */
function gradGeo(op: string, dy: Shape, shape: unknown, f: number, out: (n: number, k: number) => number): Geo {
  if (!Array.isArray(shape)) throw new OpError(op, `attr shape (the forward input's shape) is required`, [dy]);
  const g = geometry(op, shape, f, out, [dy, shape]);
  if (fmtShape(outShape(shape, g)) !== fmtShape(dy)) throw new OpError(op, `dy ${fmtShape(dy)} is not the forward output for input ${fmtShape(shape)}`, [dy, shape]);
  return g;
}

export const avgpoolGrad: OpDef<PoolAttrs & ShapeAttrs> = {
  name: 'avgpool_grad',
  shape: ([dy], { k, shape }) => (gradGeo('avgpool_grad', dy, shape, factor('avgpool_grad', 'k', k, [dy]), floorDiv), [[...shape]]),
  float64: ([dy], [s], { k, shape }) => {
    const { nbc, S, K, O } = gradGeo('avgpool_grad', s, shape, k, floorDiv);
    const dx = new Float64Array(nbc * numel(S));
    const inv = 1 / numel(K);
    each(nbc, S, (bc, d, h, w, i) => {
      const [od, oh, ow] = [Math.floor(d / K[0]), Math.floor(h / K[1]), Math.floor(w / K[2])];
      if (od < O[0] && oh < O[1] && ow < O[2]) dx[i] = dy[idx(O, bc, od, oh, ow)] * inv;
    });
    return [dx];
  },
  // Linear in dy, and its adjoint is avgpool itself.
  grad: (em, { dOutputs: [ddx], attrs: { k } }) => [ddx && em.call('avgpool', [ddx], { k })[0]],
  wgsl: ([s], { k, shape }) => {
    const { nbc, S, K, O } = gradGeo('avgpool_grad', s, shape, k, floorDiv);
    return gatherPass(
      nbc * numel(S),
      S,
      `let od = d / ${K[0]}u;
  let oh = h / ${K[1]}u;
  let ow = w / ${K[2]}u;
  var v = 0.0;
  if (od < ${O[0]}u && oh < ${O[1]}u && ow < ${O[2]}u) { v = X[${at(O, 'od', 'oh', 'ow')}] * ${f32lit(1 / numel(K))}; }
  Y[i] = v;`,
    );
  },
  wasm: ([s], { k, shape }) => {
    const { nbc, S, K, O } = gradGeo('avgpool_grad', s, shape, k, floorDiv);
    return { run: (m, [dy, dx]) => void m.rs_avgpool_grad(dy, dx, nbc, ...S, ...K, ...O, 1 / numel(K)) };
  },
};

const upGeo = (x: Shape, k: unknown) => geometry('upsample', x, factor('upsample', 'k', k, [x]), times, [x]);

export const upsample: OpDef<PoolAttrs> = {
  name: 'upsample',
  shape: ([x], { k }) => [outShape(x, upGeo(x, k))],
  float64: ([x], [s], { k }) => {
    const { nbc, K, O } = upGeo(s, k);
    const S = O.map((n, i) => n / K[i]) as V3;
    const y = new Float64Array(nbc * numel(O));
    each(nbc, O, (bc, d, h, w, i) => (y[i] = x[idx(S, bc, Math.floor(d / K[0]), Math.floor(h / K[1]), Math.floor(w / K[2]))]));
    return [y];
  },
  // Every input feeds exactly its k^n block, so dx = k^n · avgpool(dy) (exact: no floor margin).
  grad: (em, { inputs: [x], dOutputs: [dy], attrs: { k } }) => {
    if (!dy) return [null];
    const n = em.shape(x).length - 2;
    return [em.call('scale', [em.call('avgpool', [dy], { k })[0]], { a: k ** n, b: 0 })[0]];
  },
  wgsl: ([s], { k }) => {
    const { nbc, S, K, O } = upGeo(s, k);
    return gatherPass(nbc * numel(O), O, `Y[i] = X[${at(S, `d / ${K[0]}u`, `h / ${K[1]}u`, `w / ${K[2]}u`)}];`);
  },
  wasm: ([s], { k }) => {
    const { nbc, S, K } = upGeo(s, k);
    return { run: (m, [x, y]) => void m.rs_upsample(x, y, nbc, ...S, ...K) };
  },
};

export interface StrideAttrs extends Attrs {
  stride: number;
}

const subGeo = (x: Shape, s: unknown) => geometry('subsample', x, factor('subsample', 'stride', s, [x]), ceilDiv, [x]);

export const subsample: OpDef<StrideAttrs> = {
  name: 'subsample',
  shape: ([x], { stride }) => [outShape(x, subGeo(x, stride))],
  float64: ([x], [s], { stride }) => {
    const { nbc, S, K, O } = subGeo(s, stride);
    const y = new Float64Array(nbc * numel(O));
    each(nbc, O, (bc, d, h, w, i) => (y[i] = x[idx(S, bc, d * K[0], h * K[1], w * K[2])]));
    return [y];
  },
  grad: (em, { inputs: [x], dOutputs: [dy], attrs: { stride } }) => [dy && em.call('subsample_grad', [dy], { stride, shape: [...em.shape(x)] })[0]],
  wgsl: ([s], { stride }) => {
    const { nbc, S, K, O } = subGeo(s, stride);
    return gatherPass(nbc * numel(O), O, `Y[i] = X[${at(S, `d * ${K[0]}u`, `h * ${K[1]}u`, `w * ${K[2]}u`)}];`);
  },
  wasm: ([s], { stride }) => {
    const { nbc, S, K, O } = subGeo(s, stride);
    return { run: (m, [x, y]) => void m.rs_subsample(x, y, nbc, ...S, ...K, ...O) };
  },
};

export const subsampleGrad: OpDef<StrideAttrs & ShapeAttrs> = {
  name: 'subsample_grad',
  shape: ([dy], { stride, shape }) => (gradGeo('subsample_grad', dy, shape, factor('subsample_grad', 'stride', stride, [dy]), ceilDiv), [[...shape]]),
  float64: ([dy], [s], { stride, shape }) => {
    const { nbc, S, K, O } = gradGeo('subsample_grad', s, shape, stride, ceilDiv);
    const dx = new Float64Array(nbc * numel(S));
    each(nbc, O, (bc, d, h, w, i) => (dx[idx(S, bc, d * K[0], h * K[1], w * K[2])] = dy[i]));
    return [dx];
  },
  // Linear in dy; its adjoint is subsample.
  grad: (em, { dOutputs: [ddx], attrs: { stride } }) => [ddx && em.call('subsample', [ddx], { stride })[0]],
  wgsl: ([s], { stride, shape }) => {
    const { nbc, S, K, O } = gradGeo('subsample_grad', s, shape, stride, ceilDiv);
    return gatherPass(
      nbc * numel(S),
      S,
      `var v = 0.0;
  if (d % ${K[0]}u == 0u && h % ${K[1]}u == 0u && w % ${K[2]}u == 0u) { v = X[${at(O, `d / ${K[0]}u`, `h / ${K[1]}u`, `w / ${K[2]}u`)}]; }
  Y[i] = v;`,
    );
  },
  wasm: ([s], { stride, shape }) => {
    const { nbc, S, K, O } = gradGeo('subsample_grad', s, shape, stride, ceilDiv);
    return { run: (m, [dy, dx]) => void m.rs_subsample_grad(dy, dx, nbc, ...S, ...K, ...O) };
  },
};
