import { expect, test } from 'vitest';
import { forEachDevice, opSuite, randn, upload } from './harness.ts';
import { oracle, oracleTensor, type OracleTensor } from '../kernels/oracle.ts';

const shift = (t: OracleTensor, a: number, b = 0): OracleTensor => oracleTensor(t.shape, t.data.map((x) => a * x + b));
/** x, γ ~ N(1, 0.1²), β, running_mean, running_var > 0 for channel count C. */
const inputs = (xShape: number[], seed: number, xOffset = 0): OracleTensor[] => {
  const C = [xShape[1]];
  return [shift(randn(xShape, seed), 1.5, xOffset), shift(randn(C, seed + 1), 0.1, 1), randn(C, seed + 2), randn(C, seed + 3), shift(randn(C, seed + 4), 0.2, 1)];
};

opSuite('batchnorm', [
  // Training: gradients flow from y only (mean/invstd/running stats carry no cotangent).
  { inputs: inputs([5, 3], 1), attrs: { training: true }, cotangents: [0], diff: [0, 1, 2] },
  { inputs: inputs([2, 3, 5, 7], 2), attrs: { training: true, momentum: 0.3 }, cotangents: [0], diff: [0, 1, 2] },
  { inputs: inputs([2, 2, 3, 4, 5], 3), attrs: { training: true, eps: 1e-3 }, cotangents: [0], diff: [0, 1, 2] },
  // Long channels (8184 values: many strided iterations per thread) whose mean is far from 0.
  { inputs: inputs([8, 2, 33, 31], 4, 20), attrs: { training: true }, cotangents: [0], diff: [0, 1, 2] },
  // 40870 values per channel: WebGPU splits each channel into 3 uneven slices and merges them.
  { inputs: inputs([10, 2, 61, 67], 7, -5), attrs: { training: true }, cotangents: [0], diff: [0, 1, 2] },
  // Eval: running statistics, one output.
  { inputs: inputs([4, 3], 5), attrs: { training: false }, diff: [0, 1, 2] },
  { inputs: inputs([2, 3, 5, 5], 6), attrs: { training: false, eps: 1e-2 }, diff: [0, 1, 2] },
]);

// The split form's statistics (compiler/fuse-bn.ts): x, γ, running_mean, running_var of the
// cases above; outputs mean, invstd, scale = invstd·γ, running_mean', running_var'.
const statsInputs = (xShape: number[], seed: number, xOffset = 0): OracleTensor[] => {
  const [x, g, , rm, rv] = inputs(xShape, seed, xOffset);
  return [x, g, rm, rv];
};
opSuite('batchnorm_stats', [
  { inputs: statsInputs([5, 3], 1), attrs: { training: true } },
  { inputs: statsInputs([2, 3, 5, 7], 2), attrs: { training: true, momentum: 0.3 } },
  { inputs: statsInputs([8, 2, 33, 31], 4, 20), attrs: { training: true } },
  // WebGPU: 3 uneven slices per channel, merged.
  { inputs: statsInputs([10, 2, 61, 67], 7, -5), attrs: { training: true, eps: 1e-3 } },
]);

test('batchnorm_stats: the statistics batchnorm computes, scale = invstd·γ, and eval mode refused', () => {
  const ins = inputs([2, 3, 5, 7], 11, 3);
  const [, mean, invstd, rm, rv] = oracle.call('batchnorm', ins, { training: true, momentum: 0.2 });
  const [m2, i2, scale, rm2, rv2] = oracle.call('batchnorm_stats', [ins[0], ins[1], ins[3], ins[4]], { training: true, momentum: 0.2 });
  expect([m2.data, i2.data, rm2.data, rv2.data]).toEqual([mean.data, invstd.data, rm.data, rv.data]);
  for (let c = 0; c < 3; c++) expect(scale.data[c]).toBe(invstd.data[c] * ins[1].data[c]);
  expect(() => oracle.call('batchnorm_stats', [ins[0], ins[1], ins[3], ins[4]], { training: false })).toThrow(/batchnorm_stats: is training BatchNorm only/);
});

// batchnorm_grad with relu's gradient folded in (a 6th input, the mask: the ReLU's output):
// on every device = float64, and on float64 = batchnorm_grad of relu_grad(mask, dy).
const gradInputs = (xShape: number[], seed: number, training: boolean) => {
  const [x, g, , rm, rv] = inputs(xShape, seed, 2);
  const [, mean, invstd] = oracle.call('batchnorm', [x, g, g, rm, rv], { training: true });
  return [x, randn(xShape, seed + 9), ...(training ? [mean, invstd] : [rm, rv]), g, randn(xShape, seed + 10)];
};
const GRAD_CASES = [
  { inputs: gradInputs([4, 3, 5, 6], 21, true), attrs: { training: true } },
  { inputs: gradInputs([10, 2, 61, 67], 22, true), attrs: { training: true } },
  { inputs: gradInputs([2, 3, 7], 23, false), attrs: { training: false, eps: 1e-3 } },
];
opSuite('batchnorm_grad', GRAD_CASES);

test('batchnorm_grad with a mask = batchnorm_grad of relu_grad(mask, dy) (float64)', () => {
  for (const { inputs: [x, dy, m, st, g, mask], attrs } of GRAD_CASES) {
    const masked = oracle.call('relu_grad', [mask, dy])[0];
    const want = oracle.call('batchnorm_grad', [x, masked, m, st, g], attrs);
    const got = oracle.call('batchnorm_grad', [x, dy, m, st, g, mask], attrs);
    got.forEach((t, k) => expect(t.data).toEqual(want[k].data));
    expect(masked.data.some((v, i) => v === 0 && dy.data[i] !== 0)).toBe(true); // the mask did something
  }
});

test('batchnorm matches hand-computed PyTorch numbers (running_var takes the unbiased variance)', () => {
  // One channel with values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3.
  const x = oracleTensor([4, 1], [1, 2, 3, 6]);
  const one = oracleTensor([1], [1]);
  const zero = oracleTensor([1], [0]);
  const [y, mean, invstd, rm, rv] = oracle.call('batchnorm', [x, one, zero, zero, one], { training: true, eps: 0, momentum: 0.1 });
  expect(mean.data[0]).toBeCloseTo(3, 14);
  expect(invstd.data[0]).toBeCloseTo(1 / Math.sqrt(3.5), 14);
  expect(rm.data[0]).toBeCloseTo(0.3, 14);
  expect(rv.data[0]).toBeCloseTo(0.9 + 0.1 * (14 / 3), 14);
  expect(y.data[3]).toBeCloseTo(3 / Math.sqrt(3.5), 14);
});

forEachDevice((d) => {
  test('batchnorm updates the running statistics in place', async () => {
    const ins = inputs([3, 4, 5], 9);
    const want = oracle.call('batchnorm', ins, { training: true });
    const t = ins.map((x) => upload(d, x));
    const outs = d.eager.call('batchnorm', t, { training: true });
    expect(outs[3].buf).toBe(t[3].buf);
    expect(outs[4].buf).toBe(t[4].buf);
    const rv = await d.eager.read(t[4]);
    for (let c = 0; c < 4; c++) expect(rv[c], d.name).toBeCloseTo(want[4].data[c], 5);
  });
});

test('bad inputs are OpErrors naming the op, the shapes and the fix', () => {
  const ins = inputs([2, 3, 4], 1);
  expect(() => oracle.call('batchnorm', [ins[0], randn([4], 1), ...ins.slice(2)], {})).toThrow(
    /batchnorm: gamma must be \[3\] \(one value per channel of x\), got \[4\] \(input shapes \[2, 3, 4\], \[4\], \[3\], \[3\], \[3\]\)\. Give gamma the length of x's axis 1/,
  );
  expect(() => oracle.call('batchnorm', [ins[0], ins[1], ins[2], ins[3], randn([2], 1)], { training: false })).toThrow(/batchnorm: running_var must be \[3\]/);
  expect(() => oracle.call('batchnorm', [randn([1, 3], 1), ...ins.slice(1)], { training: true })).toThrow(/batchnorm: training needs more than one value per channel.*eval mode/);
  expect(() => oracle.call('batchnorm', [randn([6], 1), ...ins.slice(1)], {})).toThrow(/batchnorm: x must be \[B, C, \.\.\.spatial\]/);
  expect(() => oracle.call('batchnorm_grad', [ins[0], randn([2, 3, 5], 2), ins[1], ins[2], ins[3]], {})).toThrow(/batchnorm_grad: dy \[2, 3, 5\] must have the shape of x \[2, 3, 4\]/);
});
