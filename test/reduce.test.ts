import { describe, expect, test } from 'vitest';
import { oracle } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { sumToShape } from '../kernels/reduce/index.ts';
import { forEachDevice, opSuite, randn, relErr, runBoth } from './harness.ts';

const reduceCases = [
  { inputs: [randn([2, 3, 5, 9], 1)], attrs: { axes: [0, 2, 3], keepdims: false } }, // conv bias gradient
  { inputs: [randn([2, 3, 5, 9], 2)], attrs: { axes: [0, 2, 3], keepdims: true } },
  { inputs: [randn([7, 5], 3)], attrs: { axes: [0] } }, // leading
  { inputs: [randn([7, 5], 4)], attrs: { axes: [-1], keepdims: true } }, // trailing
  { inputs: [randn([3, 11, 4], 5)], attrs: { axes: [1] } }, // middle
  { inputs: [randn([2, 3, 4, 5, 3], 6)], attrs: { axes: [0, 2, 3, 4] } }, // 3-D image
  { inputs: [randn([3, 4, 5], 7)], attrs: {} }, // every axis
  { inputs: [randn([4, 1, 3], 8)], attrs: { axes: [1] } }, // a size-1 axis: a copy
  { inputs: [randn([3, 130], 9)], attrs: { axes: [1] } }, // one workgroup per output
];
opSuite('reduce_sum', reduceCases);
opSuite('reduce_mean', reduceCases);

opSuite('broadcast_to', [
  { inputs: [randn([3, 1, 1], 20)], attrs: { shape: [2, 3, 5, 9] } },
  { inputs: [randn([1], 21)], attrs: { shape: [4, 7] } },
  { inputs: [randn([5, 1], 22)], attrs: { shape: [3, 5, 6] } },
  { inputs: [randn([2, 1, 4], 23)], attrs: { shape: [2, 3, 4] } },
  { inputs: [randn([2, 3], 24)], attrs: { shape: [2, 3] } },
]);

describe('reduce: long reductions, sumToShape, errors', () => {
  // Long enough for the two-pass WebGPU scheme (per-channel sums over B·H·W, a full sum) and
  // for the workgroup path; forward only: the gradient is broadcast_to, tested above.
  forEachDevice((d) => {
    for (const [shape, axes] of [
      [[4, 3, 64, 96], [0, 2, 3]],
      [[3, 70001], undefined],
      [[5000, 6], [0]],
      [[6, 5000], [1]],
      [[2, 3000], [1]],
    ] as [number[], number[] | undefined][]) {
      test(`reduce_sum ${JSON.stringify(shape)} over ${JSON.stringify(axes)}`, async () => {
        const x = randn(shape, 31);
        for (const op of ['reduce_sum', 'reduce_mean']) {
          const { got, want } = await runBoth(d, op, [x], { axes });
          expect(relErr(got[0], want[0].data), `${d.name} ${op}`).toBeLessThan(1e-5);
        }
      });
    }
  });

  test('sumToShape reduces a broadcast gradient back to each input shape', () => {
    const dy = randn([2, 3, 5, 9], 40);
    for (const [shape, want] of [
      [[2, 3, 1, 1], oracle.call('reduce_sum', [dy], { axes: [2, 3], keepdims: true })[0]],
      [[3, 1, 1], oracle.call('reduce_sum', [dy], { axes: [0, 2, 3], keepdims: true })[0]],
      [[9], oracle.call('reduce_sum', [dy], { axes: [0, 1, 2] })[0]],
      [[1], oracle.call('reduce_sum', [dy], {})[0]],
    ] as const) {
      const got = sumToShape(oracle, dy, shape);
      expect(got.shape).toEqual(shape);
      expect(relErr(got.data, want.data)).toBeLessThan(1e-14);
    }
    expect(sumToShape(oracle, dy, [2, 3, 5, 9])).toBe(dy);
    expect(() => sumToShape(oracle, dy, [4, 9])).toThrow(/sumToShape: a gradient of shape \[2, 3, 5, 9\] cannot come from broadcasting \[4, 9\]/);
  });

  test('output shapes follow axes and keepdims', () => {
    expect(getOp('reduce_sum').shape([[2, 3, 5, 9]], { axes: [0, 2, 3] })).toEqual([[3]]);
    expect(getOp('reduce_mean').shape([[2, 3, 5, 9]], { axes: [-1, 0], keepdims: true })).toEqual([[1, 3, 5, 1]]);
    expect(getOp('reduce_sum').shape([[2, 3]], {})).toEqual([[]]);
  });

  test('bad axes and bad targets are OpErrors naming the op and the shape', () => {
    expect(() => getOp('reduce_sum').shape([[2, 3, 5]], { axes: [3] })).toThrow(/^reduce_sum: axis 3 is out of range for a tensor of rank 3 \(input shapes \[2, 3, 5\]\)/);
    expect(() => getOp('reduce_mean').shape([[2, 3]], { axes: [-3] })).toThrow(/^reduce_mean: axis -3 is out of range/);
    expect(() => getOp('reduce_sum').shape([[2, 3]], { axes: [1, -1] })).toThrow(/^reduce_sum: axes \[1,-1\] repeat an axis/);
    expect(() => getOp('broadcast_to').shape([[3, 2]], { shape: [3, 4] })).toThrow(/^broadcast_to: cannot broadcast \[3, 2\] to \[3, 4\].*input shapes \[3, 2\]/);
    expect(() => getOp('broadcast_to').shape([[2, 3]], { shape: [3] })).toThrow(/^broadcast_to: cannot broadcast \[2, 3\] to \[3\]/);
  });
});
