// The conv family: conv, conv_transpose (conv's data gradient) and conv_grad_weight (its weight
// gradient). Shape rules in geometry.ts, float64 implementations in float64.ts, WGSL in wgsl.ts
// (implicit GEMM), AssemblyScript plans in wasm.ts.

import type { Emitter, OpDef, Shape } from '../types.ts';
import type { ConvAttrs, ConvGeom, ConvGradWeightAttrs, ConvTransposeAttrs } from './geometry.ts';
import { convGeom, convGradWeightGeom, convTransposeGeom, spatial } from './geometry.ts';
import { convGradWeightRef, convRef, convTransposeRef } from './float64.ts';
import { convGradWeightWgsl, convTransposeWgsl, convWgsl } from './wgsl.ts';
import { convGradWeightWasm, convTransposeWasm, convWasm } from './wasm.ts';

const outShape = (g: ConvGeom): Shape => [g.B, g.Co, ...spatial(g, g.O)];

/**
 * conv_transpose's outputPadding that maps conv's output size back onto exactly x's size: with
 * stride > 1 several input sizes give the same output size (odd sizes with stride 2).
 */
function dataGradPadding(g: ConvGeom): number[] {
  return spatial(g, g.S).map((s, i) => {
    const d = 3 - g.rank + i;
    return s - ((g.O[d] - 1) * g.stride[d] - 2 * g.pad[d] + g.K[d]);
  });
}

/** The bias gradient: dy summed over every axis but the channel axis. */
function biasGrad<T>(em: Emitter<T>, dy: T): T {
  const rank = em.shape(dy).length;
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  return em.call('reduce_sum', [dy], { axes, keepdims: false })[0];
}

export const conv: OpDef<ConvAttrs> = {
  name: 'conv',
  shape: (s, attrs) => [outShape(convGeom(s, attrs))],
  float64: ([x, w, b], [sx, sw], attrs) => [convRef(x, w, b ?? null, sx, sw, attrs)],
  grad: (em, { inputs: [x, w, b], dOutputs: [dy], attrs }) => {
    if (!dy) return b ? [null, null, null] : [null, null];
    const g = convGeom(b ? [em.shape(x), em.shape(w), em.shape(b)] : [em.shape(x), em.shape(w)], attrs);
    const { stride, pad } = attrs;
    const outputPadding = dataGradPadding(g);
    const dx = em.call('conv_transpose', [dy, w], { stride, pad, outputPadding })[0];
    const dw = em.call('conv_grad_weight', [x, dy], { stride, pad, kernel: spatial(g, g.K) })[0];
    return b ? [dx, dw, biasGrad(em, dy)] : [dx, dw];
  },
  wgsl: (s, attrs) => convWgsl(convGeom(s, attrs), s.length === 3),
  wasm: (s, attrs) => convWasm(s, attrs),
};

export const convTranspose: OpDef<ConvTransposeAttrs> = {
  name: 'conv_transpose',
  shape: (s, attrs) => [outShape(convTransposeGeom(s, attrs))],
  float64: ([x, w, b], [sx, sw], attrs) => [convTransposeRef(x, w, b ?? null, sx, sw, attrs)],
  grad: (em, { inputs: [x, w, b], dOutputs: [dy], attrs }) => {
    if (!dy) return b ? [null, null, null] : [null, null];
    const g = convTransposeGeom(b ? [em.shape(x), em.shape(w), em.shape(b)] : [em.shape(x), em.shape(w)], attrs);
    const { stride, pad } = attrs;
    // outputPadding < stride, so conv of dy lands exactly on x's size.
    const dx = em.call('conv', [dy, w], { stride, pad })[0];
    const dw = em.call('conv_grad_weight', [dy, x], { stride, pad, kernel: spatial(g, g.K) })[0];
    return b ? [dx, dw, biasGrad(em, dy)] : [dx, dw];
  },
  wgsl: (s, attrs) => convTransposeWgsl(convTransposeGeom(s, attrs), s.length === 3),
  wasm: (s, attrs) => convTransposeWasm(s, attrs),
};

export const convGradWeight: OpDef<ConvGradWeightAttrs> = {
  name: 'conv_grad_weight',
  shape: (s, attrs) => {
    const g = convGradWeightGeom(s, attrs);
    return [[g.Co, g.Ci, ...spatial(g, g.K)]];
  },
  float64: ([x, dy], [sx, sdy], attrs) => [convGradWeightRef(x, dy, sx, sdy, attrs)],
  // Linear in each input: d/dx = conv_transpose(dy, dDW), d/ddy = conv(x, dDW).
  grad: (em, { inputs: [x, dy], dOutputs: [ddw], attrs }) => {
    if (!ddw) return [null, null];
    const g = convGradWeightGeom([em.shape(x), em.shape(dy)], attrs);
    const { stride, pad } = attrs;
    const outputPadding = dataGradPadding(g);
    return [em.call('conv_transpose', [dy, ddw], { stride, pad, outputPadding })[0], em.call('conv', [x, ddw], { stride, pad })[0]];
  },
  wgsl: (s, attrs) => convGradWeightWgsl(convGradWeightGeom(s, attrs)),
  wasm: (s, attrs) => convGradWeightWasm(s, attrs),
};

export const convOps: OpDef<any>[] = [conv, convTranspose, convGradWeight];
