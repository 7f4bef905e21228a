// The Wasm SIMD GEMM and the implicit-GEMM convolutions at sizes that cross every blocking
// boundary of kernels/matmul/kernel.as.ts (MR = 4, NR = 8, KC = 256, MC = 120, NC = 1024) and,
// for conv_transpose, every kind of output phase. Compared with the float64 oracle.
// (test/conv.test.ts and test/matmul.test.ts cover the ops on every device at small sizes.)

import { describe, expect, test } from 'vitest';
import { onDevice, randn, relErr, type TestDevice } from './harness.ts';
import { oracle, type OracleTensor } from '../kernels/oracle.ts';
import { OpError, type Attrs } from '../kernels/types.ts';
import { convGradWeightWasm, convTransposeWasm, convWasm, gradWeightDirect, setConvDirect, setConvPadded, setConvTransposeForm } from '../kernels/conv/wasm.ts';
import { type ConvGradWeightAttrs, convGradWeightGeom } from '../kernels/conv/geometry.ts';
import { GEMM, matmulWasm } from '../kernels/matmul/wasm.ts';

/** The op's first output on the device. */
async function runOn(d: TestDevice, op: string, inputs: OracleTensor[], attrs: Attrs = {}): Promise<Float32Array> {
  const [out] = d.eager.call(op, inputs.map((t) => d.eager.upload(t.shape, t.data)), attrs);
  return d.eager.read(out);
}

async function check(d: TestDevice, op: string, inputs: OracleTensor[], attrs: Attrs = {}, tol = 2e-6): Promise<void> {
  const eager = d.eager;
  const [want] = oracle.call(op, inputs, attrs);
  const [out] = eager.call(op, inputs.map((t) => eager.upload(t.shape, t.data)), attrs);
  expect(out.shape).toEqual(want.shape);
  const got = await eager.read(out);
  expect(got.every(Number.isFinite)).toBe(true);
  expect(relErr(got, want.data)).toBeLessThan(tol);
}

const name = (inputs: OracleTensor[], attrs: Attrs) => `${inputs.map((t) => `[${t.shape.join(',')}]`).join(' ')} ${JSON.stringify(attrs)}`;

onDevice('wasm', (d) => {
  describe('wasm matmul across block edges', () => {
    const cases: [number, number, number, boolean, boolean, boolean][] = [
      // [M, N, K, transA, transB, bias]
      [1, 1, 1, false, false, false],
      [7, 9, 5, false, false, true], // one partial tile in both directions
      [GEMM.MR, GEMM.NR, GEMM.KC, false, false, false], // exactly one full tile and one K block
      [GEMM.MC + 11, 17, GEMM.KC + 5, false, false, true], // 2 M blocks, 2 K blocks
      [13, GEMM.NC + 13, 33, false, true, false], // 2 N blocks, transB
      [GEMM.MC + 1, 23, GEMM.KC * 2 + 1, true, false, true], // transA, 3 K blocks
      [31, 29, 300, true, true, false],
      // M ≤ 16 with a row-major B: B read in place (gemm_acc_direct_b), a last narrow panel packed
      [9, GEMM.NC + 20, GEMM.KC + 7, false, false, true], // 2 N blocks, 2 K blocks
      [5, 30, 300, true, false, false], // transA
      [16, 64, 40, false, false, false],
    ];
    for (const [M, N, K, transA, transB, bias] of cases) {
      const inputs = [randn(transA ? [K, M] : [M, K], M + N), randn(transB ? [N, K] : [K, N], K), ...(bias ? [randn([N], 3)] : [])];
      const attrs = { transA, transB };
      test(name(inputs, attrs), () => check(d, 'matmul', inputs, attrs));
    }
  });

  test('wasm matmul: B read in place (M ≤ 16) = B packed (M = 17), bit for bit', async () => {
    // The first 16 rows of a 17-row product take the packed path and must equal the 16-row
    // product, which reads B in place: the same multiply-adds in the same order.
    const [K, N] = [GEMM.KC + 9, 2 * GEMM.NR + 5];
    const a17 = randn([17, K], 81);
    const b = randn([K, N], 82);
    const a16 = { shape: [16, K], data: a17.data.slice(0, 16 * K) };
    const run = (a: OracleTensor) => runOn(d, 'matmul', [a, b]);
    const got16 = await run(a16);
    expect(Array.from(got16)).toEqual(Array.from((await run(a17)).slice(0, 16 * N)));
    await check(d, 'matmul', [a16, b]);
  });

  describe('wasm conv across block edges', () => {
    const cases: [number[], number[], Attrs, boolean][] = [
      // [x shape, w shape, attrs, bias]
      [[2, 3, 17], [5, 3, 4], { stride: 2, pad: 1 }, true], // 1D
      [[2, 30, 9, 11], [13, 30, 3, 3], { pad: 1 }, true], // K = 270 > KC
      [[1, 3, 40, 31], [GEMM.MC + 10, 3, 3, 3], { stride: 1, pad: 0 }, false], // G = 1102 > NC, Co > MC
      [[2, 5, 9, 8], [7, 5, 4, 4], { stride: 2, pad: 1 }, true], // the paper's down-sampling conv
      [[2, 4, 7, 6], [9, 4, 3, 1], { stride: [1, 2], pad: [1, 0] }, false], // per-dim attrs
      [[3, 10, 5, 3], [11, 10, 1, 1], {}, true], // 1×1 fast path
      [[1, 3, 5, 6, 7], [4, 3, 3, 3, 3], { stride: [1, 2, 2], pad: 1 }, true], // 3D
    ];
    for (const [xs, ws, attrs, bias] of cases) {
      const inputs = [randn(xs, xs.length + ws[0]), randn(ws, 7, 0.3), ...(bias ? [randn([ws[0]], 8)] : [])];
      test(name(inputs, attrs), () => check(d, 'conv', inputs, attrs));
    }
  });

  describe('wasm conv_transpose phases', () => {
    const cases: [number[], number[], Attrs, boolean][] = [
      [[2, 3, 9], [3, 4, 4], { stride: 2, pad: 1 }, true],
      [[2, 5, 6, 7], [5, 3, 4, 4], { stride: 2, pad: 1, outputPadding: 1 }, true],
      [[1, 4, 20, 15], [4, 32, 16, 16], { stride: 1, pad: 7 }, false], // one phase, 256 taps
      [[2, 3, 5], [3, 4, 1], { stride: 2, outputPadding: 1 }, true], // phase without taps: bias only
      [[1, 3, 6, 5], [3, 5, 3, 3], { stride: 2, pad: 2 }, true], // K not a multiple of s, pad > taps
      [[2, 3, 30, 20], [3, 6, 4, 4], { stride: 2, pad: 1 }, true], // phase columns B·G = 1200 > NC
      [[1, 70, 3, 2], [70, 9, 4, 4], { stride: 2, pad: 1 }, false], // phase K = 280 > KC
      [[1, 30, 5, 4], [30, 6, 3, 3], { pad: 1 }, true], // 3×3 taps, K = 270: a channel's taps across two blocks
      [[1, 2, 4, 4, 3], [2, 3, 3, 4, 2], { stride: [2, 3, 2], pad: [1, 1, 0], outputPadding: [1, 2, 1] }, true],
      [[1, 2, 3, 4, 5], [2, 3, 3, 2, 3], { stride: [2, 1, 2], pad: [1, 0, 1], outputPadding: [1, 0, 0] }, true],
      [[1, 2, 3], [2, 1, 4100], { pad: 2 }, true], // more taps than the phase form's table: col2im
    ];
    for (const form of ['phase', 'col2im'] as const) {
      for (const [xs, ws, attrs, bias] of cases) {
        const inputs = [randn(xs, 11 + xs.length), randn(ws, 12, 0.3), ...(bias ? [randn([ws[1]], 13)] : [])];
        test(`${form} ${name(inputs, attrs)}`, async () => {
          setConvTransposeForm(form);
          try {
            await check(d, 'conv_transpose', inputs, attrs);
          } finally {
            setConvTransposeForm('auto');
          }
        });
      }
    }
  });

  describe('wasm conv and conv_transpose: B read in place (the direct path) = B packed, bit for bit', () => {
    // Grids whose rows are whole 8-column panels, with blocks of ≥ 256 columns: the direct path
    // (directFloats in kernels/conv/wasm.ts). Each case is checked against float64, and the packed
    // path must give the same bits (same products, same order).
    const cases: [string, number[], number[], Attrs, boolean][] = [
      ['conv', [2, 3, 40, 16], [5, 3, 3, 3], { pad: 1 }, true], // Co = 5: a partial row tile
      ['conv', [1, 30, 70, 24], [9, 30, 3, 3], { pad: 1 }, false], // two blocks of rows (42 + 28), K = 270 > KC
      ['conv', [1, 30, 40, 16], [6, 30, 3, 3], { pad: 1 }, true], // K = 270 > KC: the bias in the last block's epilogue, Co = 6
      ['conv', [1, 4, 64, 32], [6, 4, 4, 4], { stride: 2, pad: 1 }, true], // stride 2: staged rows in two phases
      ['conv', [1, 3, 40, 10], [4, 3, 3, 3], {}, false], // no padding
      ['conv', [1, 3, 32, 16], [3, 3, 5, 5], { pad: 2 }, true], // Co = 3: a partial row tile, pad 2
      ['conv', [1, 2, 4, 20, 16], [3, 2, 3, 3, 3], { pad: 1 }, true], // 3D: blocks per slice
      ['conv', [1, 2, 6, 34, 32], [3, 2, 3, 4, 4], { stride: 2, pad: 1 }, false], // 3D, stride 2
      ['conv', [1, 3, 33, 32], [4, 3, 4, 5], { stride: [1, 2], pad: [0, 2] }, true], // per-dim stride and pad, K odd along a phase
      ['conv_transpose', [1, 3, 40, 8], [3, 5, 4, 4], { stride: 2, pad: 1 }, true], // phases of 40×8 grids
      ['conv_transpose', [2, 6, 24, 16], [6, 4, 3, 3], { pad: 1 }, false], // stride 1: one phase
      ['conv_transpose', [1, 30, 24, 16], [30, 30, 3, 3], { pad: 1 }, true], // stride 1, written in place: K = 270, Co = 30, a bias
      ['conv_transpose', [1, 2, 36, 17], [2, 3, 3, 3], { stride: 2, pad: 2, outputPadding: 1 }, true], // phases with negative padding
      ['conv_transpose', [1, 3, 64, 16], [3, 5, 1, 1], { stride: 2, outputPadding: 1 }, true], // three phases without taps (bias only) between blocks
      ['conv_transpose', [1, 2, 2, 16, 16], [2, 3, 4, 4, 4], { stride: 2, pad: 1 }, false], // 3D: 8 phases, x-phases block by block
    ];
    for (const [op, xs, ws, attrs, bias] of cases) {
      const co = op === 'conv' ? ws[0] : ws[1];
      const inputs = [randn(xs, 31 + xs.length), randn(ws, 32, 0.3), ...(bias ? [randn([co], 33)] : [])];
      test(`${op} ${name(inputs, attrs)}`, async () => {
        const plan = (op === 'conv' ? convWasm : convTransposeWasm)(inputs.map((t) => t.shape), attrs);
        expect(plan.scratch!.at(-2)).toBeGreaterThan(0); // the direct path's buffer: it is taken
        await check(d, op, inputs, attrs);
        const run = () => runOn(d, op, inputs, attrs);
        const direct = await run();
        setConvDirect(false);
        try {
          expect((op === 'conv' ? convWasm : convTransposeWasm)(inputs.map((t) => t.shape), attrs).scratch!.at(-2)).toBe(0);
          expect(await run()).toEqual(direct);
        } finally {
          setConvDirect(true);
        }
      });
    }
  });

  describe('wasm conv and conv_transpose: B packed from a padded copy = packed with bounds tests, bit for bit', () => {
    // Grids whose rows are not whole panels (the packed path), so that panels' halves wrap grid
    // rows and images, with taps in the padding on every side: packed from the zero-padded copy
    // (paddedFloats in kernels/conv/wasm.ts) and from the image with each tap bounds-tested.
    const cases: [string, number[], number[], Attrs, boolean, boolean][] = [
      // [op, x shape, w shape, attrs, bias, a copy is made (some padding is read)]
      ['conv', [3, 5, 10, 6], [7, 5, 3, 3], { pad: 1 }, true, true], // the deep layers' 10×6 grids, halves wrapping rows
      ['conv', [2, 40, 5, 3], [9, 40, 3, 3], { pad: 1 }, false, true], // 5×3 grids: every half wraps; K = 360 > KC
      ['conv', [2, 3, 20, 12], [5, 3, 4, 4], { stride: 2, pad: 1 }, true, true], // stride 2 (the shuffle), 10×6 grid
      ['conv', [1, 3, 9, 11], [4, 3, 5, 3], { stride: [1, 3], pad: [2, 0] }, true, true], // stride 3: gathers; pad on one dim
      ['conv', [2, 3, 4, 5, 6], [4, 3, 3, 3, 3], { stride: [1, 2, 1], pad: 1 }, true, true], // 3D
      ['conv', [5, 6, 13, 19], [3, 6, 3, 3], { pad: 2 }, true, true], // B·G = 1575 > NC: two blocks of columns
      ['conv', [3, 10, 5, 3], [11, 10, 1, 1], {}, true, false], // 1×1: no padding read, packed from x itself
      ['conv_transpose', [2, 6, 5, 3], [6, 5, 4, 4], { stride: 2, pad: 1 }, true, true], // the deep up-convs' phases
      ['conv_transpose', [2, 4, 10, 6], [4, 3, 3, 3], { pad: 1 }, false, true], // stride 1: one phase
      ['conv_transpose', [1, 3, 7, 5], [3, 4, 3, 3], { stride: 2, pad: 2, outputPadding: 1 }, true, false], // phases with negative padding: none is read
      ['conv_transpose', [1, 3, 7, 6], [3, 4, 1, 4], { stride: 2, pad: [0, 1], outputPadding: [1, 0] }, true, true], // odd rows: phases without taps (bias only) beside a copy
      ['conv_transpose', [2, 3, 7, 5], [3, 4, 3, 4], { stride: 2, pad: [2, 1], outputPadding: [1, 0] }, true, true], // negative padding along y, padding along x
      ['conv_transpose', [1, 2, 3, 4, 5], [2, 3, 3, 2, 3], { stride: [2, 1, 2], pad: [1, 0, 1], outputPadding: [1, 0, 0] }, true, true], // 3D
    ];
    for (const [op, xs, ws, attrs, bias, copy] of cases) {
      const co = op === 'conv' ? ws[0] : ws[1];
      const inputs = [randn(xs, 61 + xs.length), randn(ws, 62, 0.3), ...(bias ? [randn([co], 63)] : [])];
      const planOf = () => (op === 'conv' ? convWasm : convTransposeWasm)(inputs.map((t) => t.shape), attrs);
      test(`${op} ${name(inputs, attrs)}`, async () => {
        expect(planOf().scratch!.at(-2)).toBe(0); // the packed path
        expect((planOf().scratch!.at(-1) ?? 0) > 0).toBe(copy); // the padded copy's buffer
        await check(d, op, inputs, attrs);
        const run = () => runOn(d, op, inputs, attrs);
        const padded = await run();
        setConvPadded(false);
        try {
          expect(planOf().scratch!.at(-1)).toBe(0);
          expect(await run()).toEqual(padded);
        } finally {
          setConvPadded(true);
        }
      });
    }
  });

  describe('wasm conv_grad_weight: im2col packed from a padded copy = packed with bounds tests, bit for bit', () => {
    // Grid rows shorter than 8 positions (the packed path): runs of positions wrap grid rows and
    // images inside a KC block, with taps in the padding on every side.
    const cases: [number[], number[], Attrs][] = [
      [[3, 5, 10, 6], [3, 7, 10, 6], { kernel: 3, pad: 1 }], // the deep layers' 10×6 grids
      [[2, 40, 5, 3], [2, 9, 5, 3], { kernel: 3, pad: 1 }], // 5×3 grids, Ci·kvol = 360
      [[2, 3, 20, 12], [2, 5, 10, 6], { kernel: 4, stride: 2, pad: 1 }], // stride 2 (the shuffle)
      [[1, 3, 9, 14], [1, 4, 9, 4], { kernel: [5, 3], stride: [1, 3], pad: [2, 0] }], // stride 3: gathers
      [[2, 3, 4, 5, 6], [2, 4, 4, 3, 6], { kernel: 3, stride: [1, 2, 1], pad: 1 }], // 3D
      [[9, 3, 7, 5], [9, 4, 7, 5], { kernel: 3, pad: 1 }], // chunks of 2 images and a last of 1
      [[2, 3, 60, 6], [2, 4, 60, 6], { kernel: 3, pad: 1 }], // 360 positions a chunk > KC: a block starts mid-row
    ];
    for (const [xs, dys, attrs] of cases) {
      const inputs = [randn(xs, 71 + xs.length), randn(dys, 72)];
      const planOf = () => convGradWeightWasm(inputs.map((t) => t.shape), attrs);
      test(name(inputs, attrs), async () => {
        const geom = convGradWeightGeom(inputs.map((t) => t.shape), attrs as ConvGradWeightAttrs);
        expect(gradWeightDirect(geom, xs[0])[0]).toBe(0); // the packed path
        expect(planOf().scratch![1]).toBeGreaterThan(0); // with the padded copy
        await check(d, 'conv_grad_weight', inputs, attrs, 5e-6);
        const run = () => runOn(d, 'conv_grad_weight', inputs, attrs);
        const padded = await run();
        setConvPadded(false);
        try {
          expect(planOf().scratch![1]).toBe(0);
          expect(await run()).toEqual(padded);
        } finally {
          setConvPadded(true);
        }
      });
    }
  });

  describe('wasm conv_grad_weight: im2col read in place (the direct path) = packed, bit for bit', () => {
    // Grid rows of ≥ 8 positions: the direct path (gradWeightDirect in kernels/conv/wasm.ts), whose
    // KC blocks of positions cross grid rows, images and slices like the packed path's.
    const cases: [number[], number[], Attrs][] = [
      [[2, 3, 40, 16], [2, 5, 40, 16], { kernel: 3, pad: 1 }], // blocks across the image boundary
      [[1, 4, 64, 32], [1, 6, 32, 16], { kernel: 4, stride: 2, pad: 1 }],
      [[3, 3, 19, 9], [3, 9, 19, 9], { kernel: 3, pad: 1 }], // 3 chunks; Co = 9, Ci·kvol = 27: partial tiles
      [[1, 3, 33, 32], [1, 4, 30, 16], { kernel: [4, 5], stride: [1, 2], pad: [0, 2] }],
      [[1, 2, 4, 20, 16], [1, 3, 4, 20, 16], { kernel: 3, pad: 1 }], // 3D
      [[1, 2, 6, 34, 32], [1, 3, 3, 17, 16], { kernel: [3, 4, 4], stride: 2, pad: 1 }], // 3D, stride 2
    ];
    for (const [xs, dys, attrs] of cases) {
      const inputs = [randn(xs, 41 + xs.length), randn(dys, 42)];
      test(name(inputs, attrs), async () => {
        const geom = convGradWeightGeom(inputs.map((t) => t.shape), attrs as ConvGradWeightAttrs);
        expect(gradWeightDirect(geom, xs[0])[0]).toBeGreaterThan(0); // it is taken
        await check(d, 'conv_grad_weight', inputs, attrs, 5e-6);
        const run = () => runOn(d, 'conv_grad_weight', inputs, attrs);
        const direct = await run();
        setConvDirect(false);
        try {
          expect(gradWeightDirect(geom, xs[0])[0]).toBe(0);
          expect(await run()).toEqual(direct);
        } finally {
          setConvDirect(true);
        }
      });
    }
  });

  describe('wasm conv, conv_grad_weight and conv_transpose with few output channels (conv_small_co, conv_grad_weight_small)', () => {
    // Co ≤ 2 with stride 1 along x: the row kernels, their vector loops (4 positions, taps 3 at a
    // time along kw) and their one-at-a-time edges. Checked against float64, and 1 thread = 3.
    const cases: [number[], number[], Attrs][] = [
      [[2, 5, 9, 13], [2, 5, 3, 3], { pad: 1 }], // the paper's output conv, small
      [[1, 3, 6, 40], [1, 3, 3, 7], { pad: [1, 3] }], // Co = 1 (two grid rows at a time), KW = 7: 3 + 3 + 1 taps
      [[1, 2, 9, 12], [1, 2, 3, 3], { stride: [2, 1], pad: 1 }], // Co = 1, stride 2 along y, 5 grid rows: the last alone
      [[1, 2, 11, 9], [1, 2, 1, 3], { stride: [3, 1], pad: [0, 1] }], // Co = 1, stride 3 > KH: image rows between a row pair's taps
      [[1, 2, 3, 5, 9], [1, 2, 3, 3, 3], { pad: 1 }], // 3D, Co = 1
      [[2, 2, 7, 21], [2, 2, 4, 4], { stride: [2, 1], pad: [1, 2] }], // stride 2 along y, KW = 4
      [[1, 4, 5, 3], [2, 4, 1, 5], { pad: [0, 2] }], // rows shorter than a vector: all edges
      [[1, 3, 4, 6, 10], [2, 3, 3, 3, 3], { pad: 1 }], // 3D
      [[3, 2, 5, 17], [1, 2, 2, 2], {}], // no padding, KW = 2
    ];
    for (const [xs, ws, attrs] of cases) {
      const inputs = [randn(xs, 51 + xs.length), randn(ws, 52, 0.3), randn([ws[0]], 53)];
      const [y] = oracle.call('conv', inputs, attrs);
      const dy = randn(y.shape, 54);
      const gwAttrs = { ...attrs, kernel: ws.slice(2) };
      test(`conv ${name(inputs, attrs)}`, async () => {
        expect(convWasm(inputs.map((t) => t.shape), attrs).scratch).toBeUndefined(); // it is taken
        await check(d, 'conv', inputs, attrs);
        await check(d, 'conv', inputs.slice(0, 2), attrs);
      });
      test(`conv_grad_weight ${name([inputs[0], dy], gwAttrs)}`, async () => {
        expect(convGradWeightWasm([xs, dy.shape], gwAttrs).scratch![0]).toBe(0); // no GEMM scratch: it is taken
        await check(d, 'conv_grad_weight', [inputs[0], dy], gwAttrs, 5e-6);
      });
    }
    // conv_transpose of stride 1 with Co ≤ 2: its one phase through conv_small_co.
    const convT: [number[], number[], Attrs][] = [
      [[2, 6, 9, 13], [6, 2, 3, 3], { pad: 1 }],
      [[1, 3, 5, 20], [3, 1, 3, 5], { pad: [1, 2] }],
      [[1, 3, 4, 6, 10], [3, 2, 3, 3, 3], { pad: 1 }], // 3D
    ];
    for (const [xs, ws, attrs] of convT) {
      const inputs = [randn(xs, 55), randn(ws, 56, 0.3), randn([ws[1]], 57)];
      test(`conv_transpose ${name(inputs, attrs)}`, async () => {
        expect(convTransposeWasm(inputs.map((t) => t.shape), attrs).scratch).toEqual([ws[0] * ws[1] * ws.slice(2).reduce((a, b) => a * b)]);
        await check(d, 'conv_transpose', inputs, attrs);
      });
    }
  });

  describe('wasm conv_grad_weight across block edges', () => {
    const cases: [number[], number[], Attrs][] = [
      [[3, 2, 7, 9], [3, 5, 7, 9], { kernel: 3, pad: 1 }], // K = B·G = 189: batch boundaries inside a K block
      [[2, 3, 15, 13], [2, 4, 15, 13], { kernel: [3, 3], pad: 1 }], // K = 390 > KC
      [[1, 120, 4, 4], [1, 4, 2, 2], { kernel: 3, stride: 1, pad: 0 }], // N = 1080 > NC
      [[2, 3, 9, 8], [2, 5, 4, 4], { kernel: 4, stride: 2, pad: 1 }],
      [[2, 2, 5, 6, 4], [2, 3, 3, 3, 2], { kernel: [3, 2, 3], stride: [2, 2, 1], pad: [1, 0, 0] }], // 3D
      [[2, 3, 11], [2, 4, 5], { kernel: 2, stride: 2 }], // 1D, the last input column unused
    ];
    for (const [xs, dys, attrs] of cases) {
      const inputs = [randn(xs, 21 + xs.length), randn(dys, 22)];
      test(name(inputs, attrs), () => check(d, 'conv_grad_weight', inputs, attrs, 5e-6));
    }
  });
});

describe('wasm plans reject bad input with OpError', () => {
  test('matmul inner size mismatch', () => {
    expect(() => matmulWasm([[3, 4], [5, 2]], {})).toThrow(OpError);
    expect(() => matmulWasm([[3, 4], [5, 2]], {})).toThrow(/matmul: inner sizes differ.*\[3, 4\], \[5, 2\]/);
  });
  test('conv channel mismatch and bad stride', () => {
    expect(() => convWasm([[1, 3, 8, 8], [4, 2, 3, 3]], {})).toThrow(/conv: x has 3 channels but the weight expects 2/);
    expect(() => convWasm([[1, 3, 8, 8], [4, 3, 3, 3]], { stride: [1, 2, 3] })).toThrow(OpError);
  });
  test('conv_transpose outputPadding ≥ stride, conv_grad_weight without kernel', () => {
    expect(() => convTransposeWasm([[1, 3, 4, 4], [3, 2, 3, 3]], { stride: 2, outputPadding: 2 })).toThrow(/conv_transpose: outputPadding/);
    expect(() => convGradWeightWasm([[1, 3, 8, 8], [1, 4, 6, 6]], {})).toThrow(/conv_grad_weight: needs the attribute kernel/);
  });
});
