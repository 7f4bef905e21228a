// matmul: y = op(a)·op(b) + bias, on the shared tiled GEMM.

import type { OpDef, Shape } from '../types.ts';
import { matmulWasm } from './wasm.ts';
import { gemmPlan } from './gemm.ts';
import { type MatmulAttrs, matmulGeom, matmulRef } from './float64.ts';

export const matmul: OpDef<MatmulAttrs> = {
  name: 'matmul',
  shape: (s: Shape[], attrs) => {
    const { M, N } = matmulGeom(s, attrs);
    return [[M, N]];
  },
  float64: ([a, b, bias], [sa, sb], attrs) => [matmulRef(a, b, bias ?? null, sa, sb, attrs)],
  grad: (em, { inputs: [a, b, bias], dOutputs: [dy], attrs }) => {
    if (!dy) return bias ? [null, null, null] : [null, null];
    const tA = !!attrs.transA;
    const tB = !!attrs.transB;
    // d op(a) = dy·op(b)ᵀ and d op(b) = op(a)ᵀ·dy, written so that each result comes out in the
    // operand's own layout (transposed operands get the transposed product).
    const da = tA ? em.call('matmul', [b, dy], { transA: tB, transB: true })[0] : em.call('matmul', [dy, b], { transB: !tB })[0];
    const db = tB ? em.call('matmul', [dy, a], { transA: true, transB: tA })[0] : em.call('matmul', [a, dy], { transA: !tA })[0];
    if (!bias) return [da, db];
    return [da, db, em.call('reduce_sum', [dy], { axes: [0], keepdims: false })[0]];
  },
  wgsl: (s, attrs) => {
    const { M, N, K, transA, transB } = matmulGeom(s, attrs);
    const hasBias = s.length === 3;
    const out = s.length;
    // vec4 loads along each operand's contiguous axis when its length is a multiple of 4.
    const vecA = transA ? (M % 4 === 0 ? 'm' : null) : K % 4 === 0 ? 'k' : null;
    const vecB = transB ? (K % 4 === 0 ? 'k' : null) : N % 4 === 0 ? 'n' : null;
    const elem = (v: string | null) => (v ? 'vec4<f32>' : 'f32');
    return gemmPlan({
      op: 'matmul',
      M,
      N,
      K,
      decls: `@group(0) @binding(0) var<storage, read> A: array<${elem(vecA)}>;
@group(0) @binding(1) var<storage, read> B: array<${elem(vecB)}>;
${hasBias ? '@group(0) @binding(2) var<storage, read> BIAS: array<f32>;\n' : ''}@group(0) @binding(${out}) var<storage, read_write> Y: array<f32>;`,
      loadA: transA ? '  return A[k * M + m];' : '  return A[m * K + k];',
      loadB: transB ? '  return B[n * K + k];' : '  return B[k * N + n];',
      ...(vecA && { vecA, loadA4: transA ? '  return A[(k * M + m) / 4u];' : '  return A[(m * K + k) / 4u];' }),
      ...(vecB && { vecB, loadB4: transB ? '  return B[(n * K + k) / 4u];' : '  return B[(k * N + n) / 4u];' }),
      store: `  Y[m * N + n] = v${hasBias ? ' + BIAS[n]' : ''};`,
      bindings: [...s.keys(), out],
    });
  },
  wasm: (s, attrs) => matmulWasm(s, attrs),
};

export const matmulOps: OpDef<any>[] = [matmul];
