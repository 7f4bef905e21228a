import { expect, test } from 'vitest';
import { forEachDevice, opSuite, randn, relErr, upload } from './harness.ts';
import { oracle, oracleTensor, type OracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';

const torchDefaults = { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
const sq = (t: OracleTensor): OracleTensor => oracleTensor(t.shape, t.data.map((x) => x * x));
const state = (shape: number[], seed: number): OracleTensor[] => [randn(shape, seed), randn(shape, seed + 1), randn(shape, seed + 2, 0.1), sq(randn(shape, seed + 3, 0.1))];

opSuite('adam', [
  { inputs: state([7], 1), attrs: { ...torchDefaults, step: 1 } },
  { inputs: state([3, 5, 9], 10), attrs: { ...torchDefaults, step: 17 } },
  { inputs: state([1031], 20), attrs: { lr: 1e-2, beta1: 0.5, beta2: 0.99, eps: 1e-6, step: 1000 } },
]);

test('adam at step 1 moves every parameter by lr against the sign of its gradient (PyTorch)', () => {
  const [p, g] = [randn([6], 1), randn([6], 2)];
  const zero = oracleTensor([6], new Float64Array(6));
  const [p2] = oracle.call('adam', [p, g, zero, zero], { ...torchDefaults, eps: 0, step: 1 });
  for (let i = 0; i < 6; i++) expect(p2.data[i]).toBeCloseTo(p.data[i] - 2e-4 * Math.sign(g.data[i]), 12);
});

forEachDevice((d) => {
  test('adam: 5 steps in place follow the float64 oracle', async () => {
    const shape = [4, 37];
    let ref = state(shape, 40);
    const grads = [0, 1, 2, 3, 4].map((k) => randn(shape, 100 + k));
    for (const [k, g] of grads.entries()) {
      const [p, m, v] = oracle.call('adam', [ref[0], g, ref[2], ref[3]], { ...torchDefaults, lr: 1e-2, step: k + 1 });
      ref = [p, g, m, v];
    }
    const init = state(shape, 40);
    const [p, , m, v] = init.map((t) => upload(d, t));
    for (const [k, g] of grads.entries()) {
      const outs = d.eager.call('adam', [p, upload(d, g), m, v], { ...torchDefaults, lr: 1e-2, step: k + 1 });
      expect(outs[0].buf, 'p is updated in place').toBe(p.buf);
      expect(outs[2].buf, 'v is updated in place').toBe(v.buf);
    }
    expect(relErr(await d.eager.read(p), ref[0].data), `${d.name} p`).toBeLessThan(1e-5);
    expect(relErr(await d.eager.read(m), ref[2].data), `${d.name} m`).toBeLessThan(1e-5);
    expect(relErr(await d.eager.read(v), ref[3].data), `${d.name} v`).toBeLessThan(1e-5);
  });
});

test('adam: the shader does not depend on the step or the learning rate (one pipeline per shape)', () => {
  const op = getOp('adam');
  const a = op.wgsl([[9], [9], [9], [9]], { ...torchDefaults, step: 1 });
  const b = op.wgsl([[9], [9], [9], [9]], { ...torchDefaults, lr: 1e-3, step: 500 });
  expect(a.passes[0].code).toBe(b.passes[0].code);
  expect(new Float32Array(a.passes[0].uniform!)).not.toEqual(new Float32Array(b.passes[0].uniform!));
});

test('adam: bad inputs are OpErrors', () => {
  const s = state([5], 1);
  expect(() => oracle.call('adam', [s[0], randn([6], 9), s[2], s[3]], { ...torchDefaults, step: 1 })).toThrow(/adam: g \[6\] must have the shape of p \[5\].*optimizer state/);
  expect(() => oracle.call('adam', s, { ...torchDefaults, step: 0 })).toThrow(/adam: step must be an integer ≥ 1/);
  expect(() => oracle.call('adam', s, { ...torchDefaults })).toThrow(/adam: attribute step must be a finite number/);
});
