import { describe, expect, test } from 'vitest';
import { gradients } from '../compiler/autodiff.ts';
import { evaluate } from '../compiler/evaluate.ts';
import { Graph } from '../compiler/ir.ts';
import { lower, memoryStats, type Program } from '../compiler/plan.ts';
import { oracle, type OracleTensor } from '../kernels/oracle.ts';
import { Executable } from '../runtime/program.ts';
import { forEachDevice, randn, relErr } from './harness.ts';

/** loss = Σ relu(x·wᵀ + b)² · c, with gradients for w and b. */
function mlp() {
  const g = new Graph();
  const x = g.input('x', [4, 6]);
  const w = g.input('w', [5, 6], 'param');
  const b = g.input('b', [5], 'param');
  const [h] = g.call('matmul', [x, w, b], { transB: true });
  const [r] = g.call('relu', [h]);
  const [sq] = g.call('mul', [r, r]);
  const [flat] = g.call('reshape', [sq], { shape: [20] });
  const [loss] = g.call('reduce_sum', [flat], { axes: [0], keepdims: true });
  const [dw, db] = gradients(g, loss, [w, b]);
  g.outputs.set('loss', loss).set('dw', dw).set('db', db);
  return g;
}

const feedsOf = (g: Graph, seed: number) => new Map<string, OracleTensor>(g.inputs.map((gi, i) => [gi.name, randn(gi.value.shape, seed + i)]));

/** Strictly overlapping lifetimes of two distinct, non-view values must not share a buffer. */
function assertNoSharedLiveBuffers(p: Program) {
  const ls = p.lifetimes.filter((l) => !l.view && p.buffers[l.buffer].kind === 'temp');
  for (const a of ls)
    for (const b of ls)
      if (a.value < b.value && a.buffer === b.buffer) expect(a.to <= b.from || b.to <= a.from, `values ${a.value} [${a.from},${a.to}] and ${b.value} [${b.from},${b.to}] share buffer ${a.buffer}`).toBe(true);
}

describe('compiler core: IR, autodiff, memory plan, program', () => {
  test('autodiff gradients agree with finite differences (float64)', () => {
    const g = mlp();
    const feeds = feedsOf(g, 1);
    const { outputs } = evaluate(g, oracle, feeds);
    const lossAt = (name: string, i: number, h: number) => {
      const f = new Map(feeds);
      const t = f.get(name)!;
      const d = t.data.slice();
      d[i] += h;
      f.set(name, { shape: t.shape, data: d });
      return evaluate(g, oracle, f).outputs.get('loss')!.data[0];
    };
    for (const [name, grad] of [['w', 'dw'], ['b', 'db']] as const) {
      const n = feeds.get(name)!.data.length;
      const fd = Array.from({ length: n }, (_, i) => (lossAt(name, i, 1e-6) - lossAt(name, i, -1e-6)) / 2e-6);
      expect(relErr(outputs.get(grad)!.data, fd)).toBeLessThan(1e-6);
    }
  });

  test('the memory plan reuses buffers and never lets two live values share one', () => {
    const p = lower(mlp());
    const { planned, unplanned } = memoryStats(p);
    expect(planned).toBeLessThan(unplanned);
    assertNoSharedLiveBuffers(p);
  });

  test('an in-place op on a value still needed later works on a copy', () => {
    const g = new Graph();
    const p = g.input('p', [7], 'param');
    const gr = g.input('g', [7]);
    const m = g.input('m', [7], 'state');
    const v = g.input('v', [7], 'state');
    const [p2, m2, v2] = g.call('adam', [p, gr, m, v], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 });
    const [after] = g.call('add', [p, p2]); // reads the old p after adam: p must not be overwritten
    g.outputs.set('sum', after);
    g.updates.set('m', m2).set('v', v2);
    const prog = lower(g);
    expect(prog.launches.filter((l) => l.op === 'copy').length).toBe(1);
    expect(prog.launches.find((l) => l.op === 'adam')!.outputs[1]).toBe(prog.inputs.get('m'));
  });

  forEachDevice((d) => {
    test('compiled programs reproduce the float64 graph', async () => {
      const g = mlp();
      const feeds = feedsOf(g, 7);
      const want = evaluate(g, oracle, feeds).outputs;
      const prog = lower(g);
      const exe = new Executable(d.eager.backend, prog);
      for (const [name, t] of feeds) exe.write(name, Float32Array.from(t.data));
      exe.run();
      for (const name of ['loss', 'dw', 'db']) expect(relErr(await exe.read(name), want.get(name)!.data), `${d.name} ${name}`).toBeLessThan(1e-5);
      exe.destroy();
    });
  });
});

forEachDevice((d) => {
  test('dynamic attributes: Adam steps 1 and 2 replayed from one prepared program match the oracle', async () => {
    const g = new Graph();
    const p = g.input('p', [37], 'param');
    const gr = g.input('g', [37]);
    const m = g.input('m', [37], 'state');
    const v = g.input('v', [37], 'state');
    const attrs = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    const [p2, m2, v2] = g.call('adam', [p, gr, m, v], attrs, { step: (a) => a.iteration + 1 });
    g.updates.set('p', p2).set('m', m2).set('v', v2);
    const prog = lower(g);
    const p0 = randn([37], 3);
    const grads = [randn([37], 4), randn([37], 5)];
    // Reference: two steps with step = 1, 2.
    let ref: { p: OracleTensor; m: OracleTensor; v: OracleTensor } = { p: p0, m: { shape: [37], data: new Float64Array(37) }, v: { shape: [37], data: new Float64Array(37) } };
    for (const [k, gk] of grads.entries()) {
      const [a, b, c] = oracle.call('adam', [ref.p, gk, ref.m, ref.v], { ...attrs, step: k + 1 });
      ref = { p: a, m: b, v: c };
    }
    const exe = new Executable(d.eager.backend, prog);
    exe.write('p', Float32Array.from(p0.data));
    exe.write('m', new Float32Array(37));
    exe.write('v', new Float32Array(37));
    for (const [k, gk] of grads.entries()) {
      exe.write('g', Float32Array.from(gk.data));
      exe.run({ iteration: k });
    }
    expect(relErr(await exe.read('p'), ref.p.data), d.name).toBeLessThan(1e-5);
    exe.destroy();
  });
});
