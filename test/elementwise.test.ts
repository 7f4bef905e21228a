import { describe, expect, test } from 'vitest';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { opSuite, randn } from './harness.ts';

// Softplus inputs that cross the threshold at 20 and reach far into the exp tail.
const wide = oracleTensor([2, 3, 7], Array.from({ length: 42 }, (_, i) => -30 + (i * 55) / 41 + 0.013));

opSuite('relu', [{ inputs: [randn([7], 1)] }, { inputs: [randn([2, 3, 5, 9], 2)] }, { inputs: [randn([1031], 3)] }]);
opSuite('softplus', [{ inputs: [randn([7], 4, 3)] }, { inputs: [randn([2, 3, 5, 9], 5, 4)] }, { inputs: [wide] }]);
opSuite('softplus_grad', [{ inputs: [randn([2, 3, 5, 9], 6, 4), randn([2, 3, 5, 9], 7)] }, { inputs: [wide, randn([2, 3, 7], 8)] }]);
opSuite('exp', [{ inputs: [randn([5], 9)] }, { inputs: [randn([3, 4, 6, 5, 3], 10)] }]);
opSuite('scale', [
  { inputs: [randn([13], 11)], attrs: { a: -0.75, b: 0.5 } },
  { inputs: [randn([2, 3, 5, 9], 12)], attrs: { a: 3 } },
]);

const binCases = [
  { inputs: [randn([2, 3, 5, 9], 20), randn([2, 3, 5, 9], 21)] }, // same shape
  { inputs: [randn([2, 3, 5, 9], 22), randn([2, 3, 1, 1], 23)] }, // class conditioning [B,C,1,1]
  { inputs: [randn([2, 3, 1, 1], 24), randn([2, 3, 5, 9], 25)] }, // broadcast in the other direction
  { inputs: [randn([5, 7], 26), randn([1], 27)] }, // a scalar
  { inputs: [randn([1], 28), randn([3, 7], 29)] },
  { inputs: [randn([4, 1, 3], 30), randn([5, 1], 31)] }, // both broadcast → [4, 5, 3]
  { inputs: [randn([2, 3, 4, 5, 3], 32), randn([3, 1, 1, 1], 33)] }, // 3-D image, missing batch axis
  { inputs: [randn([6, 9], 34), randn([9], 35)] }, // per-column row vector
];
opSuite('add', binCases);
opSuite('sub', binCases);
opSuite('mul', binCases);
// Divisors kept away from 0 so finite differences stay well conditioned.
const away = (t: ReturnType<typeof randn>) => oracleTensor(t.shape, t.data.map((v) => (v >= 0 ? 0.5 + v : -0.5 + v)));
opSuite('div', binCases.map((c) => ({ inputs: [c.inputs[0], away(c.inputs[1])] })));

opSuite('reshape', [
  { inputs: [randn([2, 3, 5], 40)], attrs: { shape: [6, 5] } },
  { inputs: [randn([2, 3, 5], 41)], attrs: { shape: [5, -1] } },
  { inputs: [randn([7], 42)], attrs: { shape: [1, 7, 1] } },
]);

describe('elementwise: values and errors', () => {
  test('softplus follows PyTorch at the threshold and in the tails', () => {
    const y = oracle.call('softplus', [oracleTensor([4], [-40, 0, 20, 20.5])])[0].data;
    expect(y[0]).toBeCloseTo(Math.exp(-40), 25);
    expect(y[1]).toBeCloseTo(Math.LN2, 12);
    expect(y[2]).toBeCloseTo(Math.log1p(Math.exp(20)), 12);
    expect(y[3]).toBe(20.5);
  });

  test('broadcast results have the NumPy shape', () => {
    expect(getOp('add').shape([[2, 3, 5, 9], [2, 3, 1, 1]], {})).toEqual([[2, 3, 5, 9]]);
    expect(getOp('mul').shape([[4, 1, 3], [5, 1]], {})).toEqual([[4, 5, 3]]);
    expect(getOp('div').shape([[3, 8], [1]], {})).toEqual([[3, 8]]);
  });

  test('incompatible broadcast shapes name the op, the shapes and the axis', () => {
    expect(() => getOp('add').shape([[2, 3], [4]], {})).toThrow(/^add: cannot broadcast \[2, 3\] with \[4\]: axis -1 is 3 vs 4.*input shapes \[2, 3\], \[4\]/);
    expect(() => getOp('div').shape([[2, 3, 5, 9], [2, 4, 1, 1]], {})).toThrow(/^div: .*axis -3 is 3 vs 4/);
  });

  test('reshape with the wrong element count or two −1 is an OpError', () => {
    expect(() => getOp('reshape').shape([[2, 3, 5]], { shape: [4, 8] })).toThrow(/^reshape: cannot view 30 elements as \[4, 8\].*input shapes \[2, 3, 5\]/);
    expect(() => getOp('reshape').shape([[2, 3, 5]], { shape: [-1, 4] })).toThrow(/^reshape: cannot view 30 elements/);
    expect(() => getOp('reshape').shape([[6]], { shape: [-1, -1] })).toThrow(/^reshape: .*more than one −1/);
  });

  test('scale rejects non-numeric attrs', () => {
    expect(() => getOp('scale').shape([[3]], { a: 'x' })).toThrow(/^scale: attrs a and b must be finite numbers/);
  });
});
