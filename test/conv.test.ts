import { describe, expect, test } from 'vitest';
import { opSuite, randn, relErr } from './harness.ts';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { OpError } from '../kernels/types.ts';

// Shapes are small: WebGPU runs on SwiftShader here. Odd spatial sizes and channel counts that
// are not multiples of 4 throughout.

opSuite('conv', [
  // 1D
  { inputs: [randn([2, 3, 9], 1), randn([5, 3, 3], 2), randn([5], 3)], attrs: { stride: 1, pad: 1 } },
  { inputs: [randn([1, 2, 9], 4), randn([2, 2, 4], 5)], attrs: { stride: 2, pad: 1 } },
  // 2D: the paper's blocks — k4 s2 p1 keeping channels (odd 7×5), k3 s1 p1, k1.
  { inputs: [randn([1, 3, 7, 5], 6), randn([3, 3, 4, 4], 7)], attrs: { stride: 2, pad: 1 } },
  { inputs: [randn([2, 3, 7, 5], 8), randn([5, 3, 3, 3], 9), randn([5], 10)], attrs: { stride: 1, pad: 1 } },
  { inputs: [randn([2, 6, 5, 3], 11), randn([3, 6, 1, 1], 12), randn([3], 13)] },
  // per-dim stride and pad; stride 2 without padding on an even/odd mix
  { inputs: [randn([1, 2, 6, 7], 14), randn([3, 2, 3, 2], 15)], attrs: { stride: [2, 1], pad: [0, 1] } },
  { inputs: [randn([1, 3, 8, 9], 16), randn([2, 3, 3, 3], 17)], attrs: { stride: 2, pad: 0 } },
  // k1 with pad 1: the border outputs read only padding
  { inputs: [randn([1, 2, 4, 3], 18), randn([3, 2, 1, 1], 19), randn([3], 20)], attrs: { pad: 1 } },
  // 3D
  { inputs: [randn([1, 2, 5, 4, 3], 21), randn([3, 2, 3, 3, 3], 22), randn([3], 23)], attrs: { stride: 1, pad: 1 } },
  { inputs: [randn([1, 2, 5, 6, 3], 24), randn([2, 2, 4, 4, 4], 25)], attrs: { stride: 2, pad: 1 } },
  // Grid rows of 16: 8-wide panels whose taps overhang the left or the right end of a row
  // (Wasm loads a whole vector there and zeroes the lanes in the padding), stride 1 and 2.
  { inputs: [randn([2, 3, 5, 16], 29), randn([4, 3, 3, 3], 30)], attrs: { stride: 1, pad: 1 } },
  { inputs: [randn([1, 2, 6, 32], 63), randn([3, 2, 4, 4], 64)], attrs: { stride: 2, pad: 1 } },
  // 3D with grid rows of 19 and 18: the same vector paths with a depth tap, a ragged last panel
  { inputs: [randn([1, 2, 3, 4, 19], 65), randn([3, 2, 3, 3, 3], 66)], attrs: { stride: 1, pad: 1 } },
  { inputs: [randn([1, 2, 5, 4, 37], 67), randn([2, 2, 3, 3, 4], 68)], attrs: { stride: 2, pad: 1 } },
  // More output channels and positions than one 64×64 tile, K across several 16-deep slices.
  { inputs: [randn([2, 5, 9, 8], 26), randn([67, 5, 3, 3], 27, 0.3), randn([67], 28)], attrs: { stride: 1, pad: 1 } },
]);

opSuite('conv_transpose', [
  { inputs: [randn([2, 3, 5], 31), randn([3, 4, 3], 32), randn([4], 33)], attrs: { stride: 2, pad: 1, outputPadding: 1 } },
  // the paper's up-sampling shape: k4 s2 p1 doubles the size
  { inputs: [randn([1, 3, 4, 3], 34), randn([3, 3, 4, 4], 35)], attrs: { stride: 2, pad: 1 } },
  { inputs: [randn([2, 3, 3, 5], 36), randn([3, 5, 3, 3], 37), randn([5], 38)], attrs: { stride: 1, pad: 1 } },
  { inputs: [randn([1, 2, 3, 4], 39), randn([2, 3, 3, 3], 40)], attrs: { stride: 2, pad: 1, outputPadding: [1, 0] } },
  { inputs: [randn([2, 5, 3, 3], 41), randn([5, 2, 1, 1], 42)] },
  { inputs: [randn([1, 2, 3, 2, 3], 43), randn([2, 3, 3, 3, 3], 44), randn([3], 45)], attrs: { stride: 2, pad: 1, outputPadding: [1, 0, 1] } },
  // stride 3 > kernel 2: the outputs of residue 2 get no tap at all (bias only on WebGPU's phases)
  { inputs: [randn([1, 2, 3, 4], 46), randn([2, 3, 2, 2], 47), randn([3], 48)], attrs: { stride: 3, outputPadding: [2, 1] } },
  // few outputs per phase, Ci·taps = 320: each phase splits K, the phases share one scratch buffer
  { inputs: [randn([1, 80, 2, 2], 49, 0.3), randn([80, 3, 4, 4], 50, 0.3), randn([3], 51)], attrs: { stride: 2, pad: 1 } },
]);

opSuite('conv_grad_weight', [
  { inputs: [randn([2, 3, 7, 5], 51), randn([2, 4, 7, 5], 52)], attrs: { kernel: 3, stride: 1, pad: 1 } },
  // k4 s2 p1 on odd 7×5: dy is 3×2
  { inputs: [randn([1, 3, 7, 5], 53), randn([1, 2, 3, 2], 54)], attrs: { kernel: 4, stride: 2, pad: 1 } },
  { inputs: [randn([2, 2, 9], 55), randn([2, 3, 4], 56)], attrs: { kernel: 3, stride: 2 } },
  { inputs: [randn([1, 2, 4, 5, 3], 57), randn([1, 3, 4, 5, 3], 58)], attrs: { kernel: [3, 3, 1], pad: [1, 1, 0] } },
  { inputs: [randn([2, 5, 3, 3], 59), randn([2, 6, 3, 3], 60)], attrs: { kernel: 1 } },
  // 3D, rows of 19 / 18 positions: four-column groups of the transposed packing with a depth tap
  { inputs: [randn([1, 2, 3, 4, 19], 69), randn([1, 3, 3, 4, 19], 70)], attrs: { kernel: 3, pad: 1 } },
  { inputs: [randn([1, 2, 5, 4, 37], 71), randn([1, 2, 3, 2, 18], 72)], attrs: { kernel: [3, 3, 4], stride: 2, pad: 1 } },
  // K = B·OV = 384 on a 4 × 27 output: split-K over 3 workgroups plus the reduction pass.
  { inputs: [randn([2, 3, 16, 12], 61), randn([2, 4, 16, 12], 62)], attrs: { kernel: 3, pad: 1 } },
]);

describe('conv references against independent facts', () => {
  test('a hand-computed 1D convolution with padding, stride and bias', () => {
    const x = oracleTensor([1, 1, 5], [1, 2, 3, 4, 5]);
    const w = oracleTensor([1, 1, 3], [1, 0, -1]);
    const b = oracleTensor([1], [10]);
    const [y] = oracle.call('conv', [x, w, b], { stride: 2, pad: 1 });
    // taps at -1..1, 1..3, 3..5 (zero outside): 0−2, 2−4, 4−0
    expect(y.shape).toEqual([1, 1, 3]);
    expect([...y.data]).toEqual([8, 8, 14]);
  });

  test('conv_transpose is the adjoint of conv: ⟨conv(x,w), y⟩ = ⟨x, conv_transpose(y,w)⟩', () => {
    const x = randn([2, 3, 7, 5], 1);
    const w = randn([4, 3, 4, 4], 2);
    const attrs = { stride: 2, pad: 1 };
    const [cx] = oracle.call('conv', [x, w], attrs);
    const y = randn(cx.shape, 3);
    // 7 → 3 → 6 without outputPadding; x is 7×5 so outputPadding [1, 1]
    const [ty] = oracle.call('conv_transpose', [y, w], { ...attrs, outputPadding: [1, 1] });
    expect(ty.shape).toEqual(x.shape);
    const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
    expect(Math.abs(dot(cx.data, y.data) - dot(x.data, ty.data))).toBeLessThan(1e-10 * Math.abs(dot(cx.data, y.data)) + 1e-12);
  });

  test('conv_grad_weight is the adjoint of conv in w: ⟨conv(x,w), dy⟩ = ⟨w, conv_grad_weight(x,dy)⟩', () => {
    const x = randn([2, 2, 5, 4, 3], 4);
    const w = randn([3, 2, 3, 2, 2], 5);
    const attrs = { stride: [1, 2, 1], pad: [1, 0, 1] };
    const [cx] = oracle.call('conv', [x, w], attrs);
    const dy = randn(cx.shape, 6);
    const [dw] = oracle.call('conv_grad_weight', [x, dy], { ...attrs, kernel: [3, 2, 2] });
    const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
    expect(relErr([dot(cx.data, dy.data)], [dot(w.data, dw.data)])).toBeLessThan(1e-12);
  });

  test('a 1×1 conv is a matmul over channels', () => {
    const x = randn([1, 5, 3, 2], 7);
    const w = randn([4, 5, 1, 1], 8);
    const [y] = oracle.call('conv', [x, w]);
    const [m] = oracle.call('matmul', [oracleTensor([4, 5], w.data), oracleTensor([5, 6], x.data)]);
    expect(relErr(y.data, m.data)).toBeLessThan(1e-14);
  });

  test('the data gradient recovers odd input sizes under stride 2', () => {
    for (const [s, k, p] of [[7, 4, 1], [8, 4, 1], [9, 3, 0], [5, 3, 1]]) {
      const x = randn([1, 2, s], s);
      const w = randn([3, 2, k], k);
      const [y] = oracle.call('conv', [x, w], { stride: 2, pad: p });
      const [dx] = getOp('conv').grad!(oracle, { inputs: [x, w], outputs: [y], dOutputs: [y], attrs: { stride: 2, pad: p } });
      expect(dx!.shape).toEqual([1, 2, s]);
    }
  });
});

describe('conv family errors', () => {
  const conv = getOp('conv').shape;
  const convT = getOp('conv_transpose').shape;
  const gw = getOp('conv_grad_weight').shape;
  test('channel mismatch names the op, shapes and the fix', () => {
    expect(() => conv([[1, 3, 8, 8], [4, 2, 3, 3]], {})).toThrow(OpError);
    expect(() => conv([[1, 3, 8, 8], [4, 2, 3, 3]], {})).toThrow(/^conv: x has 3 channels but the weight expects 2.*\[1, 3, 8, 8\], \[4, 2, 3, 3\].*w\.shape\[1\]/);
    expect(() => convT([[1, 3, 8, 8], [2, 4, 3, 3]], {})).toThrow(/^conv_transpose: x has 3 channels but the weight expects 2/);
  });
  test('wrong weight rank', () => {
    expect(() => conv([[1, 3, 8, 8], [4, 3, 3]], {})).toThrow(/^conv: weight must be \[Co, Ci, \.\.\.K\].*rank 4.*got rank 3.*\[1, 3, 8, 8\], \[4, 3, 3\]/);
    expect(() => conv([[3, 8], [4, 3, 3]], {})).toThrow(/^conv: x must be \[B, C, \.\.\.spatial\]/);
  });
  test('kernel larger than the padded input', () => {
    expect(() => conv([[1, 3, 2, 8], [4, 3, 5, 5]], { pad: 1 })).toThrow(/^conv: the output would be empty.*kernel is larger than the padded input.*\[1, 3, 2, 8\], \[4, 3, 5, 5\]/);
    expect(() => convT([[1, 3, 1, 1], [3, 2, 1, 1]], { pad: 1 })).toThrow(/^conv_transpose: the output would be empty/);
  });
  test('bad attributes and bias', () => {
    expect(() => conv([[1, 3, 8, 8], [4, 3, 3, 3]], { stride: [1, 2, 1] })).toThrow(/^conv: attribute stride must be .* array of 2/);
    expect(() => conv([[1, 3, 8, 8], [4, 3, 3, 3]], { stride: 0 })).toThrow(/stride must be an integer ≥ 1/);
    expect(() => conv([[1, 3, 8, 8], [4, 3, 3, 3], [3]], {})).toThrow(/^conv: bias must be \[4\]/);
    expect(() => convT([[1, 3, 8], [3, 2, 3]], { stride: 2, outputPadding: 2 })).toThrow(/^conv_transpose: outputPadding 2 must be smaller than stride 2/);
  });
  test('conv_grad_weight checks dy against the conv geometry', () => {
    expect(() => gw([[1, 3, 7, 5], [1, 2, 4, 2]], { kernel: 4, stride: 2, pad: 1 })).toThrow(/^conv_grad_weight: dy's spatial size 4×2 is not conv's output size 3×2/);
    expect(() => gw([[1, 3, 7, 5], [1, 2, 3, 2]], {})).toThrow(/^conv_grad_weight: needs the attribute kernel/);
    expect(() => gw([[2, 3, 7, 5], [1, 2, 3, 2]], { kernel: 4 })).toThrow(/^conv_grad_weight: dy must be \[B, Co, \.\.\.O\] with x's batch 2/);
  });
});

// The Wasm packers read whole vectors a few floats past a row's end and zero the lanes outside
// it; where that would run past the end of Wasm memory they take the scalar path instead. Here x
// is placed so that it ends exactly where the memory does (first-fit allocation: a reserve, a
// filler up to the last x-sized block, x, then the reserve freed for everything else).
describe('wasm: an input that ends at the end of memory', () => {
  const cases = [
    { op: 'conv', inputs: [randn([1, 1, 3, 16], 81), randn([2, 1, 3, 3], 82)], attrs: { stride: 1, pad: 1 } },
    { op: 'conv', inputs: [randn([1, 1, 4, 32], 83), randn([2, 1, 4, 4], 84)], attrs: { stride: 2, pad: 1 } },
    { op: 'conv_grad_weight', inputs: [randn([1, 1, 4, 32], 85), randn([1, 4, 2, 16], 86)], attrs: { kernel: 4, stride: 2, pad: 1 } },
  ];
  for (const { op, inputs, attrs } of cases) {
    test(`${op} ${JSON.stringify(inputs[0].shape)} ${JSON.stringify(attrs)} = float64 oracle`, async () => {
      const { WasmBackend } = await import('../runtime/wasm.ts');
      const { Eager } = await import('../runtime/tensor.ts');
      const be = await WasmBackend.create({ threads: 1 });
      const e = new Eager(be);
      const reserve = be.alloc(1 << 20);
      const xBytes = inputs[0].data.length * 4; // a multiple of 16: the allocator's alignment
      const end = be.memory.buffer.byteLength;
      const next = be.alloc(1);
      be.free(next);
      be.alloc((end - next.offset - xBytes) / 4); // the filler
      const x = e.upload(inputs[0].shape, inputs[0].data);
      expect(be.view(x.buf).byteOffset + xBytes).toBe(be.memory.buffer.byteLength);
      be.free(reserve);
      const [out] = e.call(op, [x, e.upload(inputs[1].shape, inputs[1].data)], attrs);
      const got = await e.read(out);
      expect(be.memory.buffer.byteLength, 'memory did not grow under x').toBe(end);
      expect(relErr(got, oracle.call(op, inputs, attrs)[0].data)).toBeLessThan(1e-5);
      be.destroy();
    });
  }
});
