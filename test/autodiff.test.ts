// Reverse-mode autodiff on the graph IR (compiler/autodiff.ts) for compositions of ops, where
// the per-op checks of harness.ts's opSuite cannot see it: gradients accumulated over fan-out,
// broadcasting, several outputs in one loss, an input the loss does not reach, and the paper's
// layers (spectral norm, BatchNorm in training, a transposed conv) chained. Float64 graph
// gradients against central finite differences, then the compiled programs on every device
// against the float64 graph.

import { describe, expect, test } from 'vitest';
import { gradients } from '../compiler/autodiff.ts';
import { evaluate } from '../compiler/evaluate.ts';
import { Graph, type Value } from '../compiler/ir.ts';
import { lower } from '../compiler/plan.ts';
import { oracle, oracleTensor, type OracleTensor } from '../kernels/oracle.ts';
import type { Emitter } from '../kernels/types.ts';
import { Executable } from '../runtime/program.ts';
import { forEachDevice, randn, relErr } from './harness.ts';

/** A function of some inputs, written once over any emitter (a Graph or the oracle); returns its outputs. */
type Fn = <T>(em: Emitter<T>, xs: T[]) => T[];

interface Case {
  name: string;
  fn: Fn;
  inputs: OracleTensor[];
  /** Inputs to differentiate with respect to (the others need no gradient). */
  wrt: number[];
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);

/** L = Σ_k Σ out_k ⊙ seed_k in float64, straight on the oracle (no graph). */
function loss(c: Case, ins: OracleTensor[], seeds: OracleTensor[]): number {
  return c.fn(oracle, ins).reduce((s, o, k) => s + dot(o.data, seeds[k].data), 0);
}

function seedsFor(c: Case): OracleTensor[] {
  return c.fn(oracle, c.inputs).map((o, k) => randn(o.shape, 77 + k));
}

/** The graph of L = Σ_k Σ out_k ⊙ seed_k (inputs `x0…`, seeds `seed0…`) with outputs `grad0…` for `wrt`. */
function gradGraph(c: Case, seeds: OracleTensor[]): Graph {
  const g = new Graph();
  const xs = c.inputs.map((t, i) => g.input(`x${i}`, t.shape));
  const outs = c.fn(g, xs);
  let total: Value | null = null;
  outs.forEach((o, k) => {
    const [prod] = g.call('mul', [o, g.input(`seed${k}`, seeds[k].shape)]);
    const [s] = g.call('reduce_sum', [prod], { axes: o.shape.map((_, i) => i), keepdims: false });
    total = total ? g.call('add', [total, s])[0] : s;
  });
  gradients(g, total!, c.wrt.map((i) => xs[i])).forEach((d, j) => g.outputs.set(`grad${j}`, d));
  return g;
}

const feedsOf = (c: Case, seeds: OracleTensor[]) => new Map<string, OracleTensor>([...c.inputs.map((t, i) => [`x${i}`, t] as const), ...seeds.map((t, k) => [`seed${k}`, t] as const)]);

// Values kept away from ReLU's kink so that finite differences are clean.
const awayFromZero = (t: OracleTensor): OracleTensor => oracleTensor(t.shape, t.data.map((v) => (Math.abs(v) < 0.05 ? v + 0.1 * Math.sign(v || 1) : v)));

/**
 * The left singular vector of w viewed [w.shape[0], −1], by power iteration. Spectral norm
 * treats u', v as constants (PyTorch detaches them); finite differences move them with w. At a
 * converged u the two agree (Wᵀu' = σv), so the layer cases below start there.
 */
function convergedU(w: OracleTensor): OracleTensor {
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
  return oracleTensor([r], u);
}

/** w / σ(w) with one power iteration, as the compiler emits a spectrally normalised layer's weight. */
const snWeight = <T>(em: Emitter<T>, w: T, u: T): T => em.call('div', [w, em.call('sn_sigma', [w, u], { eps: 1e-12 })[0]])[0];

const fcW = randn([4, 6], 12, 0.3);
const upW = randn([2, 3, 4, 4], 22, 0.1);

const cases: Case[] = [
  {
    name: 'a chain of relu (no fan-in)',
    fn: (em, [x]) => em.call('relu', em.call('relu', [x])),
    inputs: [awayFromZero(randn([3, 5], 1))],
    wrt: [0],
  },
  {
    name: 'fan-out, broadcasting, three outputs, an input without a gradient',
    // y1 = relu(a + b) ⊙ softplus(a), y2 = a / c, y3 = Σ_axis1 (a ⊙ a): a reaches the loss four times.
    fn: (em, [a, b, c]) => {
      const h = em.call('relu', em.call('add', [a, b]))[0];
      const y1 = em.call('mul', [h, em.call('softplus', [a])[0]])[0];
      const y2 = em.call('div', [a, c])[0];
      const y3 = em.call('reduce_sum', em.call('mul', [a, a]), { axes: [1], keepdims: false })[0];
      return [y1, y2, y3];
    },
    inputs: [awayFromZero(randn([4, 7], 2)), randn([1, 7], 3), oracleTensor([4, 7], randn([4, 7], 4).data.map((v) => 1.5 + Math.abs(v)))],
    wrt: [0, 1],
  },
  {
    name: 'layers: spectral-norm linear → BatchNorm (training) → softplus',
    fn: (em, [x, w, b, u, gamma, beta, rm, rv]) => {
      // Two outputs: the linear output itself too, since through BatchNorm alone its bias gets no gradient.
      const [h] = em.call('matmul', [x, snWeight(em, w, u), b], { transB: true });
      const [y] = em.call('batchnorm', [h, gamma, beta, rm, rv], { training: true, eps: 1e-5, momentum: 0.1 });
      return [em.call('softplus', [y])[0], h];
    },
    inputs: [randn([5, 6], 11), fcW, randn([4], 13), convergedU(fcW), randn([4], 14), randn([4], 15), randn([4], 16), oracleTensor([4], [1, 2, 0.5, 1])],
    wrt: [0, 1, 2, 4, 5],
  },
  {
    name: 'layers: spectral-norm conv_transpose (k4 s2 p1) → softplus',
    fn: (em, [x, w, b, u]) => em.call('softplus', em.call('conv_transpose', [x, snWeight(em, w, u), b], { stride: 2, pad: 1, outputPadding: 0 })),
    inputs: [randn([2, 2, 3, 2], 21), upW, randn([3], 23), convergedU(upW)],
    wrt: [0, 1, 2],
  },
  {
    name: 'an input the loss does not reach gets a zero gradient',
    fn: (em, [a]) => em.call('relu', [a]),
    inputs: [awayFromZero(randn([5], 5)), randn([2], 6)],
    wrt: [0, 1],
  },
];

describe('autodiff on graphs of several ops', () => {
  for (const c of cases) {
    test(`float64 graph gradients = finite differences: ${c.name}`, () => {
      const seeds = seedsFor(c);
      const { outputs } = evaluate(gradGraph(c, seeds), oracle, feedsOf(c, seeds));
      for (const [j, i] of c.wrt.entries()) {
        const fd = new Float64Array(c.inputs[i].data.length);
        for (let e = 0; e < fd.length; e++) {
          const plus = c.inputs.map((t) => oracleTensor(t.shape, t.data));
          const minus = c.inputs.map((t) => oracleTensor(t.shape, t.data));
          plus[i].data[e] += 1e-6;
          minus[i].data[e] -= 1e-6;
          fd[e] = (loss(c, plus, seeds) - loss(c, minus, seeds)) / 2e-6;
        }
        const got = outputs.get(`grad${j}`)!.data;
        if (fd.every((v) => v === 0)) expect([...got], `input ${i} does not reach the loss`).toEqual(Array(fd.length).fill(0));
        else expect(relErr(got, fd), `input ${i}`).toBeLessThan(1e-6);
      }
    });
  }

  forEachDevice((d) => {
    for (const c of cases) {
      test(`compiled = float64 graph: ${c.name}`, async () => {
        const seeds = seedsFor(c);
        const g = gradGraph(c, seeds);
        const feeds = feedsOf(c, seeds);
        const want = evaluate(g, oracle, feeds).outputs;
        const prog = lower(g);
        const exe = new Executable(d.eager.backend, prog);
        for (const [name, t] of feeds) exe.write(name, Float32Array.from(t.data));
        exe.run();
        for (const j of c.wrt.keys()) expect(relErr(await exe.read(`grad${j}`), want.get(`grad${j}`)!.data), `${d.name} input ${c.wrt[j]}`).toBeLessThan(1e-5);
        exe.destroy();
      });
    }
  });

  test('an op without a gradient rule on the way to the loss is an error naming the op', () => {
    const g = new Graph();
    const x = g.input('x', [4]);
    const [y] = g.call('relu_grad', [x, g.input('dy', [4])]);
    const [l] = g.call('reduce_sum', [y], { axes: [0], keepdims: false });
    expect(() => gradients(g, l, [x])).toThrow(/autodiff: op 'relu_grad' has no gradient rule/);
  });

  test('the loss must hold one value', () => {
    const g = new Graph();
    const x = g.input('x', [4]);
    const [y] = g.call('relu', [x]);
    expect(() => gradients(g, y, [x])).toThrow(/autodiff: the loss must hold one value, not shape \[4\]/);
  });
});
