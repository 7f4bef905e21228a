import { describe, expect, test } from 'vitest';
import { reference, refTensor, type RefTensor } from '../kernels/reference.ts';
import type { Emitter } from '../kernels/types.ts';
import { Tape } from '../runtime/autograd.ts';
import { batchNorm, snConvTranspose, snLinear } from '../runtime/layers.ts';
import type { Tensor } from '../runtime/tensor.ts';
import { devices, randn, relErr, upload } from './harness.ts';

/** A function of some inputs, written once over any emitter; returns its outputs. */
type Fn = <T>(em: Emitter<T>, xs: T[]) => T[];

interface Case {
  name: string;
  fn: Fn;
  inputs: RefTensor[];
  /** Inputs the tape watches (the others need no gradient). */
  watch: number[];
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);

/** L = Σ_k Σ out_k ⊙ seed_k in float64, without any tape. */
function loss(c: Case, ins: RefTensor[], seeds: RefTensor[]): number {
  return c.fn(reference, ins).reduce((s, o, k) => s + dot(o.data, seeds[k].data), 0);
}

function seedsFor(c: Case): RefTensor[] {
  return c.fn(reference, c.inputs).map((o, k) => randn(o.shape, 77 + k));
}

function tapeGrads<T>(em: Emitter<T>, c: Case, xs: T[], seeds: T[], storage?: (t: T) => unknown): (T | null)[] {
  const tape = new Tape(em, { storage });
  c.watch.forEach((i) => tape.watch(xs[i]));
  const outs = c.fn(tape, xs);
  tape.backward(outs, seeds);
  return c.watch.map((i) => tape.grad(xs[i]));
}

// Values kept away from ReLU's kink so that finite differences are clean.
const awayFromZero = (t: RefTensor): RefTensor => refTensor(t.shape, t.data.map((v) => (Math.abs(v) < 0.05 ? v + 0.1 * Math.sign(v || 1) : v)));

/**
 * The left singular vector of w viewed [w.shape[0], −1], by power iteration. Spectral norm
 * treats u', v as constants (PyTorch detaches them); finite differences move them with w. At a
 * converged u the two agree (Wᵀu' = σv), so the layer cases below start there.
 */
function convergedU(w: RefTensor): RefTensor {
  const r = w.shape[0];
  const c = w.data.length / r;
  let u = new Float64Array(r).fill(1);
  for (let it = 0; it < 500; it++) {
    const v = new Float64Array(c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) v[j] += w.data[i * c + j] * u[i];
    const next = new Float64Array(r);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) next[i] += w.data[i * c + j] * v[j];
    const n = Math.hypot(...next);
    u = next.map((x) => x / n);
  }
  return refTensor([r], u);
}

const fcW = randn([4, 6], 12, 0.3);
const upW = randn([2, 3, 4, 4], 22, 0.1);

const cases: Case[] = [
  {
    name: 'a chain of relu (no fan-in)',
    fn: (em, [x]) => em.call('relu', em.call('relu', [x])),
    inputs: [awayFromZero(randn([3, 5], 1))],
    watch: [0],
  },
  {
    name: 'fan-out, broadcasting, two roots, an unwatched input',
    // y1 = relu(a + b) ⊙ softplus(a), y2 = a / c, y3 = Σ_axis1 (a ⊙ a): a reaches the loss four times.
    fn: (em, [a, b, c]) => {
      const h = em.call('relu', em.call('add', [a, b]))[0];
      const y1 = em.call('mul', [h, em.call('softplus', [a])[0]])[0];
      const y2 = em.call('div', [a, c])[0];
      const y3 = em.call('reduce_sum', em.call('mul', [a, a]), { axes: [1], keepdims: false })[0];
      return [y1, y2, y3];
    },
    inputs: [awayFromZero(randn([4, 7], 2)), randn([1, 7], 3), refTensor([4, 7], randn([4, 7], 4).data.map((v) => 1.5 + Math.abs(v)))],
    watch: [0, 1],
  },
  {
    name: 'layers: spectral-norm linear → BatchNorm (training) → softplus',
    fn: (em, [x, w, b, u, g, beta, rm, rv]) => {
      const p = new Map(Object.entries({ 'fc.weight': w, 'fc.bias': b, 'fc.sn_u': u, 'bn.weight': g, 'bn.bias': beta, 'bn.running_mean': rm, 'bn.running_var': rv }));
      // Two roots: the linear output itself too, since through BatchNorm alone its bias gets no gradient.
      const h = snLinear(em, p, 'fc', x);
      return [em.call('softplus', [batchNorm(em, p, 'bn', h, { training: true })])[0], h];
    },
    inputs: [randn([5, 6], 11), fcW, randn([4], 13), convergedU(fcW), randn([4], 14), randn([4], 15), randn([4], 16), refTensor([4], [1, 2, 0.5, 1])],
    watch: [0, 1, 2, 4, 5],
  },
  {
    name: 'layers: spectral-norm conv_transpose (k4 s2 p1) → softplus',
    fn: (em, [x, w, b, u]) => {
      const p = new Map(Object.entries({ 'up.weight': w, 'up.bias': b, 'up.sn_u': u }));
      return em.call('softplus', [snConvTranspose(em, p, 'up', x, { stride: 2, pad: 1 })]);
    },
    inputs: [randn([2, 2, 3, 2], 21), upW, randn([3], 23), convergedU(upW)],
    watch: [0, 1, 2],
  },
  {
    name: 'a watched input that the loss does not reach gets null',
    fn: (em, [a]) => em.call('relu', [a]),
    inputs: [awayFromZero(randn([5], 5)), randn([2], 6)],
    watch: [0, 1],
  },
];

describe('tape', () => {
  for (const c of cases) {
    test(`reference gradients = finite differences: ${c.name}`, () => {
      const seeds = seedsFor(c);
      const g = tapeGrads(reference, c, c.inputs, seeds);
      for (const [j, i] of c.watch.entries()) {
        const fd = new Float64Array(c.inputs[i].data.length);
        for (let e = 0; e < fd.length; e++) {
          const plus = c.inputs.map((t) => refTensor(t.shape, t.data));
          const minus = c.inputs.map((t) => refTensor(t.shape, t.data));
          plus[i].data[e] += 1e-6;
          minus[i].data[e] -= 1e-6;
          fd[e] = (loss(c, plus, seeds) - loss(c, minus, seeds)) / 2e-6;
        }
        if (fd.every((v) => v === 0)) expect(g[j], `input ${i} does not reach the loss`).toBeNull();
        else expect(relErr(g[j]!.data, fd), `input ${i}`).toBeLessThan(1e-6);
      }
    });

    test(`devices = float64 reference: ${c.name}`, async () => {
      const seeds = seedsFor(c);
      const want = tapeGrads(reference, c, c.inputs, seeds);
      for (const d of await devices()) {
        const got = tapeGrads<Tensor>(d.eager, c, c.inputs.map((t) => upload(d, t)), seeds.map((s) => upload(d, s)), (t) => t.buf);
        for (const [j, w] of want.entries()) {
          if (w === null) expect(got[j], `${d.name} input ${c.watch[j]}`).toBeNull();
          else expect(relErr(await d.eager.read(got[j]!), w.data), `${d.name} input ${c.watch[j]}`).toBeLessThan(1e-5);
        }
      }
    });
  }

  test('inputs that need no gradient are not recorded', () => {
    const tape = new Tape(reference);
    const x = randn([4], 1);
    tape.call('relu', [x]);
    expect(tape.recorded).toBe(0);
    expect(() => tape.backward([tape.call('relu', [x])[0]], [randn([4], 2)])).toThrow(/does not depend on any watched tensor/);
  });

  test('an op without a gradient rule on a watched input is an error naming the op', () => {
    const tape = new Tape(reference);
    const x = tape.watch(randn([4], 1));
    expect(() => tape.call('relu_grad', [x, randn([4], 2)])).toThrow(/relu_grad: has no gradient rule/);
  });

  test('seeds must match their roots', () => {
    const tape = new Tape(reference);
    const x = tape.watch(randn([4], 1));
    const [y] = tape.call('relu', [x]);
    expect(() => tape.backward([y], [randn([5], 2)])).toThrow(/root 0 has shape \[4\] but its seed \[5\]/);
    expect(() => tape.grad(y)).toThrow(/watched leaves only/);
  });
});

describe('tape and in-place ops', () => {
  const bnInputs = () => ({ x: randn([3, 2, 4], 1), g: randn([2], 2), b: randn([2], 3), rm: randn([2], 4), rv: refTensor([2], [1, 2]) });

  test('an input overwritten in place cannot be used again', () => {
    const tape = new Tape(reference);
    const { x, g, b, rm, rv } = bnInputs();
    tape.watch(x);
    const [, , , rm2] = tape.call('batchnorm', [x, g, b, rm, rv], { training: true });
    expect(() => tape.call('relu', [rm])).toThrow(/relu: input 0 was overwritten in place by batchnorm \(its output 3\)/);
    expect(() => tape.call('relu', [rm2])).not.toThrow();
  });

  test('a view of an overwritten tensor is stale too, on the reference as on devices', () => {
    const tape = new Tape(reference);
    const w = tape.watch(randn([3, 4], 1));
    const u = randn([3], 2);
    const r = tape.call('reshape', [u], { shape: [3, 1] })[0];
    tape.call('sn_sigma', [w, u]);
    expect(() => tape.call('relu', [r])).toThrow(/overwritten in place by sn_sigma/);
  });

  test('a watched tensor cannot be overwritten in place', () => {
    const tape = new Tape(reference);
    const { x, g, b, rm, rv } = bnInputs();
    tape.watch(rm);
    expect(() => tape.call('batchnorm', [x, g, b, rm, rv], { training: true })).toThrow(/batchnorm: input 3 is overwritten in place, so it cannot need a gradient/);
  });

  test('a tensor an earlier recorded op needs for backward cannot be overwritten', () => {
    const tape = new Tape(reference);
    const w = tape.watch(randn([3, 4], 1));
    const u = randn([3], 2);
    const v = tape.watch(randn([3], 3));
    tape.call('mul', [u, v]); // mul's backward reads u
    expect(() => tape.call('sn_sigma', [w, u])).toThrow(/sn_sigma: input 1 is overwritten in place but an earlier differentiable op still needs its value/);
  });
});
