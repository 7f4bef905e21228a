import { expect, test } from 'vitest';
import { forEachDevice, opSuite, randn, relErr, upload } from './harness.ts';
import { oracle, oracleTensor, type OracleTensor } from '../kernels/oracle.ts';

const unit = (t: OracleTensor): OracleTensor => {
  const n = Math.sqrt(t.data.reduce((a, b) => a + b * b, 0));
  return oracleTensor(t.shape, t.data.map((x) => x / n));
};

/**
 * u converged by power iteration (float64). Only there is σ = ‖W v‖ stationary in u' and v, so
 * that finite differences of σ equal the rule dW = dσ·u'vᵀ (which treats u', v as constants).
 */
function converged(w: OracleTensor, seed: number): OracleTensor {
  let u = unit(randn([w.shape[0]], seed));
  for (let it = 0; it < 5000; it++) {
    const u2 = oracle.call('sn_sigma', [w, u])[1];
    const done = relErr(u2.data, u.data) < 1e-16;
    u = u2;
    if (done) break;
  }
  return u;
}

const conv = (w: OracleTensor, seed: number) => ({ inputs: [w, converged(w, seed)], cotangents: [0], diff: [0] });

opSuite('sn_sigma', [
  conv(randn([5, 3], 1), 2), // linear [out, in]
  conv(randn([4, 3, 3, 3], 3), 4), // conv [out, in, k, k]
  conv(randn([3, 6, 2, 2], 5), 6), // conv_transpose [in, out, k, k]: dimension 0 still
  conv(randn([7, 1031], 7), 8),
  conv(randn([2, 2, 3, 3, 3], 9), 10), // 3-D conv
  // One power-iteration step from a random u (forward only: the gradient rule assumes convergence).
  { inputs: [randn([16, 3000], 11, 0.02), unit(randn([16], 12))], diff: [] },
  { inputs: [randn([300, 7], 13), unit(randn([300], 14))], diff: [] },
  // Tall: Wᵀu runs in 19 row chunks of 16 (the last one short).
  { inputs: [randn([300, 5], 15), unit(randn([300], 16))], diff: [] },
]);

opSuite('sn_sigma_grad', [{ inputs: [randn([1], 1), randn([3], 2), randn([10], 3)], attrs: { shape: [3, 2, 5] } }]);

test('sn_sigma on a diagonal weight finds the largest singular value and its vectors', () => {
  const w = oracleTensor([3, 3], [0, 0, 0, 0, 3, 0, 0, 0, 2]);
  const [sigma, u2, v] = oracle.call('sn_sigma', [w, oracleTensor([3], [0.6, 0.8, 0])]);
  expect(sigma.data[0]).toBeCloseTo(3, 12);
  expect([...u2.data].map((x) => Math.abs(x))).toEqual([0, 1, 0]);
  expect([...v.data].map((x) => Math.abs(x))).toEqual([0, 1, 0]);
});

forEachDevice((d) => {
  test('sn_sigma overwrites u with u′, and repeated calls converge to σ_max', async () => {
    const w = randn([6, 4, 3, 3], 21, 0.1);
    const uRef = converged(w, 22);
    const want = oracle.call('sn_sigma', [w, uRef])[0].data[0];
    const [tw, tu] = [upload(d, w), upload(d, unit(randn([6], 23)))];
    let sigma = 0;
    for (let i = 0; i < 60; i++) {
      const outs = d.eager.call('sn_sigma', [tw, tu]);
      expect(outs[1].buf).toBe(tu.buf);
      sigma = (await d.eager.read(outs[0]))[0];
    }
    expect(Math.abs(sigma - want) / want, d.name).toBeLessThan(1e-5);
    expect(relErr(await d.eager.read(tu), uRef.data), d.name).toBeLessThan(1e-3);
  });
});

test('bad inputs are OpErrors naming the op, the shapes and the fix', () => {
  expect(() => oracle.call('sn_sigma', [randn([4, 3, 2, 2], 1), randn([3], 2)])).toThrow(
    /sn_sigma: u must be \[4\] \(the length of w's dimension 0\), got \[3\] \(input shapes \[4, 3, 2, 2\], \[3\]\)\. Initialise u with w\.shape\[0\] entries/,
  );
  expect(() => oracle.call('sn_sigma', [randn([4, 3], 1)])).toThrow(/sn_sigma: takes 2 inputs/);
  expect(() => oracle.call('sn_sigma_grad', [randn([1], 1), randn([3], 2), randn([4], 3)], { shape: [3, 5] })).toThrow(/sn_sigma_grad: expects dσ \[1\], u' \[3\] and v \[5\]/);
});
