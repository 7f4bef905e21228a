import { describe, expect, test } from 'vitest';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { opSuite, randn } from './harness.ts';

opSuite('avgpool', [
  { inputs: [randn([2, 3, 8, 6], 1)], attrs: { k: 2 } },
  { inputs: [randn([2, 3, 9, 13], 2)], attrs: { k: 2 } }, // odd sizes: floor, margin dropped
  { inputs: [randn([1, 2, 20, 17], 3)], attrs: { k: 2 } }, // wide rows: the Wasm SIMD path plus a tail
  { inputs: [randn([2, 2, 5, 7, 9], 4)], attrs: { k: 2 } }, // 3-D
  { inputs: [randn([2, 3, 11], 5)], attrs: { k: 3 } }, // 1-D
  { inputs: [randn([1, 2, 7, 8], 6)], attrs: { k: 3 } },
]);

opSuite('upsample', [
  { inputs: [randn([2, 3, 4, 5], 10)], attrs: { k: 2 } },
  { inputs: [randn([1, 2, 3, 9], 11)], attrs: { k: 2 } }, // rows of 9: SIMD plus tail
  { inputs: [randn([2, 2, 3, 2, 3], 12)], attrs: { k: 2 } }, // 3-D
  { inputs: [randn([2, 3, 5], 13)], attrs: { k: 3 } }, // 1-D
  { inputs: [randn([1, 2, 3, 4], 14)], attrs: { k: 3 } },
]);

opSuite('subsample', [
  { inputs: [randn([2, 3, 8, 6], 20)], attrs: { stride: 2 } },
  { inputs: [randn([2, 3, 9, 7], 21)], attrs: { stride: 2 } }, // odd sizes: ceil
  { inputs: [randn([2, 2, 5, 7, 3], 22)], attrs: { stride: 2 } }, // 3-D
  { inputs: [randn([1, 2, 10], 23)], attrs: { stride: 3 } }, // 1-D
  { inputs: [randn([1, 2, 7, 8], 24)], attrs: { stride: 1 } },
]);

// The internal gradient ops, on their own (their gradients are the forward ops again).
opSuite('avgpool_grad', [
  { inputs: [randn([2, 3, 4, 6], 30)], attrs: { k: 2, shape: [2, 3, 9, 13] } },
  { inputs: [randn([2, 2, 2, 3, 4], 31)], attrs: { k: 2, shape: [2, 2, 5, 7, 9] } },
]);
opSuite('subsample_grad', [
  { inputs: [randn([2, 3, 5, 4], 32)], attrs: { stride: 2, shape: [2, 3, 9, 7] } },
  { inputs: [randn([1, 2, 4], 33)], attrs: { stride: 3, shape: [1, 2, 10] } },
]);

describe('resample: shapes, values and errors', () => {
  test('output shapes: avgpool floors, subsample ceils, upsample multiplies', () => {
    expect(getOp('avgpool').shape([[2, 3, 9, 13]], { k: 2 })).toEqual([[2, 3, 4, 6]]);
    expect(getOp('subsample').shape([[2, 3, 9, 13]], { stride: 2 })).toEqual([[2, 3, 5, 7]]);
    expect(getOp('upsample').shape([[2, 3, 5, 2, 3]], { k: 2 })).toEqual([[2, 3, 10, 4, 6]]);
  });

  test('small values by hand', () => {
    const x = oracleTensor([1, 1, 2, 3], [1, 2, 3, 4, 5, 6]);
    expect([...oracle.call('avgpool', [x], { k: 2 })[0].data]).toEqual([3]);
    expect([...oracle.call('subsample', [x], { stride: 2 })[0].data]).toEqual([1, 3]);
    expect([...oracle.call('upsample', [oracleTensor([1, 1, 2], [7, 8])], { k: 2 })[0].data]).toEqual([7, 7, 8, 8]);
  });

  test('bad inputs are OpErrors naming the op and the shapes', () => {
    expect(() => getOp('avgpool').shape([[3, 8]], { k: 2 })).toThrow(/^avgpool: expects an image \[B, C, \.\.\.spatial\] with 1–3 spatial dims, got rank 2 \(input shapes \[3, 8\]\)/);
    expect(() => getOp('avgpool').shape([[1, 1, 3, 8]], { k: 4 })).toThrow(/^avgpool: factor 4 is larger than the spatial size \[3, 8\]/);
    expect(() => getOp('upsample').shape([[1, 1, 3, 8]], { k: 0 })).toThrow(/^upsample: attr k must be an integer ≥ 1, got 0/);
    expect(() => getOp('subsample').shape([[1, 1, 3, 8]], { stride: 1.5 })).toThrow(/^subsample: attr stride must be an integer ≥ 1/);
    expect(() => getOp('avgpool_grad').shape([[2, 3, 4, 4]], { k: 2, shape: [2, 3, 9, 13] })).toThrow(/^avgpool_grad: dy \[2, 3, 4, 4\] is not the forward output for input \[2, 3, 9, 13\]/);
  });
});
