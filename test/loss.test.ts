import { expect, test } from 'vitest';
import { opSuite, randn } from './harness.ts';
import { oracle } from '../kernels/oracle.ts';

opSuite('sse', [
  { inputs: [randn([7], 1), randn([7], 2)] },
  { inputs: [randn([2, 3, 5, 9], 3), randn([2, 3, 5, 9], 4)] },
  // Enough elements for several partial-sum workgroups on WebGPU and many SIMD blocks on Wasm.
  { inputs: [randn([3, 2, 101, 103], 5), randn([3, 2, 101, 103], 6)] },
]);
opSuite('sse_grad', [{ inputs: [randn([2, 9], 7), randn([2, 9], 8), randn([1], 9)] }]);

opSuite('kld', [
  { inputs: [randn([4, 13], 10), randn([4, 13], 11)] },
  { inputs: [randn([3, 512], 12), randn([3, 512], 13, 0.5)] },
  { inputs: [randn([1, 1], 14), randn([1, 1], 15)] },
]);
opSuite('kld_grad', [{ inputs: [randn([3, 5], 16), randn([3, 5], 17), randn([3, 5], 18)] }]);

opSuite('reparam', [
  { inputs: [randn([5, 7], 20), randn([5, 7], 21), randn([5, 7], 22)] },
  { inputs: [randn([2, 33], 23), randn([2, 33], 24, 0.5), randn([2, 33], 25)] },
]);
opSuite('reparam_grad', [{ inputs: [randn([4, 3], 26), randn([4, 3], 27), randn([4, 3], 28)] }]);

test('mismatched shapes are OpErrors naming the op, the shapes and the fix', () => {
  expect(() => oracle.call('kld', [randn([4, 8], 1), randn([4, 9], 2)])).toThrow(/kld: mu \[4, 8\] and logvar \[4, 9\] must have the same shape.*Reshape/);
  expect(() => oracle.call('sse', [randn([3], 1), randn([1, 3], 2)])).toThrow(/sse: xhat \[3\] and x \[1, 3\]/);
  expect(() => oracle.call('reparam', [randn([2], 1), randn([2], 2), randn([3], 3)])).toThrow(/reparam: mu \[2\] and eps \[3\]/);
  expect(() => oracle.call('sse_grad', [randn([2], 1), randn([2], 2), randn([2], 3)])).toThrow(/sse_grad: ds must hold one value/);
});

test('kld is zero at the prior and sse is zero at the data', () => {
  const z = oracle.call('kld', [randn([1, 4], 1, 0), randn([1, 4], 2, 0)])[0];
  expect(Math.max(...z.data.map(Math.abs))).toBe(0);
  const x = randn([5], 3);
  expect(oracle.call('sse', [x, x])[0].data[0]).toBe(0);
});
