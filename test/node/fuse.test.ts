// The fusion pass: a fused graph computes what the unfused one does (float64 oracle and both
// devices), with fewer launches and without the intermediate buffers; it never fuses across a
// non-elementwise detour (a cycle), keeps outputs and updates, respects the binding limit and
// the in-place rules; and the small oracle model's training step agrees fused vs unfused.

import { describe, expect, test } from 'vitest';
import { evaluate } from '../../compiler/evaluate.ts';
import { gradients } from '../../compiler/autodiff.ts';
import { MAX_BINDINGS, fuse, type FuseStats } from '../../compiler/fuse.ts';
import { compileModelFile } from '../../compiler/index.ts';
import { Graph } from '../../compiler/ir.ts';
import { lower, trafficStats } from '../../compiler/plan.ts';
import type { FusedInstr } from '../../kernels/fused/index.ts';
import { oracle, type OracleTensor } from '../../kernels/oracle.ts';
import { Executable } from '../../runtime/program.ts';
import { ModelRuntime } from '../../session/model.ts';
import { forEachDevice, onDevice, randn, relErr, type TestDevice } from '../harness.ts';

type Feeds = Map<string, OracleTensor>;

/** Random feeds; Adam's second moment `v` must be ≥ 0, BatchNorm's running variance `rv` > 0. */
const feedsFor = (g: Graph, seed: number): Feeds =>
  new Map(
    g.inputs.map((gi, k) => {
      const t = randn(gi.value.shape, seed + k);
      const floor = { v: 0, rv: 0.5 }[gi.name];
      return [gi.name, floor === undefined ? t : { shape: t.shape, data: t.data.map((x) => Math.abs(x) + floor) }];
    }),
  );

/** Outputs and updates of a graph on the float64 oracle. */
function ref64(g: Graph, feeds: Feeds): Map<string, Float64Array> {
  const r = evaluate(g, oracle, feeds);
  return new Map([...[...r.outputs].map(([k, v]) => [k, v.data] as const), ...[...r.updates].map(([k, v]) => [`update:${k}`, v.data] as const)]);
}

/** Lowers and runs a graph once on a device; returns its outputs and updated inputs. */
async function runOn(d: TestDevice, g: Graph, feeds: Feeds): Promise<Map<string, Float32Array>> {
  const exe = new Executable(d.eager.backend, lower(g));
  for (const [name, t] of feeds) exe.write(name, Float32Array.from(t.data));
  exe.run();
  const got = new Map<string, Float32Array>();
  for (const name of g.outputs.keys()) got.set(name, await exe.read(name));
  for (const name of g.updates.keys()) got.set(`update:${name}`, await exe.read(name));
  exe.destroy();
  return got;
}

/** The fused graph agrees with the unfused one on the float64 oracle. */
function expectSameOnOracle(g: Graph, f: Graph, seed: number) {
  const feeds = feedsFor(g, seed);
  const want = ref64(g, feeds);
  const got64 = ref64(f, feeds);
  for (const [k, w] of want) expect(relErr(got64.get(k)!, w), `reference ${k}`).toBeLessThan(1e-14);
}

/** The fused graph on a device agrees with the unfused one on the float64 oracle. */
async function expectSameOn(d: TestDevice, g: Graph, f: Graph, seed: number) {
  const feeds = feedsFor(g, seed);
  const want = ref64(g, feeds);
  const got = await runOn(d, f, feeds);
  for (const [k, w] of want) expect(relErr(got.get(k)!, w), `${d.name} ${k}`).toBeLessThan(1e-5);
}

const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;

interface FuseCase {
  name: string;
  /** Builds the graphs and fuses them: pairs [unfused, fused, feed seed], and what fusion must have done. */
  build(): { pairs: [Graph, Graph, number][]; structure(): void };
}

const CASES: FuseCase[] = [
  {
    name: 'a chain becomes one launch and its intermediate buffers go away',
    build() {
      const g = new Graph();
      const x = g.input('x', [2, 3, 5, 9]);
      const b = g.input('b', [2, 3, 1, 1]);
      const [a] = g.call('add', [x, b]);
      const [r] = g.call('relu', [a]);
      const [s] = g.call('scale', [r], { a: 0.5, b: 1 });
      const [e] = g.call('mul', [s, x]);
      g.outputs.set('y', e);
      const stats: FuseStats = { groups: 0, fusedNodes: 0 };
      const f = fuse(g, stats);
      return {
        pairs: [[g, f, 1]],
        structure() {
          expect(f.nodes.map((n) => n.op)).toEqual(['fused']);
          expect(stats).toEqual({ groups: 1, fusedNodes: 4 });
          const [p0, p1] = [lower(g), lower(f)];
          expect(p0.launches.length).toBe(4);
          expect(p1.launches.length).toBe(1);
          expect(p1.buffers.filter((b) => b.kind === 'temp').length).toBe(1);
          expect(p0.buffers.filter((b) => b.kind === 'temp').length).toBeGreaterThan(1);
          // Bytes read + written, counted by hand (x: 270 elements, b: 6): add 276 + 270, relu
          // 270 + 270, scale 270 + 270, mul 540 + 270; fused: x and b in, y out.
          expect(trafficStats(p0)).toEqual({ launches: 4, bytes: 4 * (546 + 540 + 540 + 810) });
          expect(trafficStats(p1)).toEqual({ launches: 1, bytes: 4 * (276 + 270) });
        },
      };
    },
  },
  {
    name: 'a value read outside the group becomes a second output (conditioning add + relu)',
    build() {
      const g = new Graph();
      const x = g.input('x', [2, 4, 6, 5]);
      const c = g.input('c', [2, 4, 1, 1]);
      const [a] = g.call('add', [x, c]);
      const [r] = g.call('relu', [a]);
      const [s] = g.call('reduce_sum', [a], { axes: [0, 2, 3], keepdims: false });
      g.outputs.set('r', r);
      g.outputs.set('s', s);
      const f = fuse(g);
      return {
        pairs: [[g, f, 10]],
        structure() {
          const fused = f.nodes.find((n) => n.op === 'fused')!;
          expect(fused.outputs.length).toBe(2);
          expect(lower(f).launches.length).toBe(2);
        },
      };
    },
  },
  {
    name: 'a smaller value inside the group is recomputed per element; exported it stays a node',
    build() {
      const make = () => {
        const g = new Graph();
        const x = g.input('x', [2, 3, 4, 7]);
        const w = g.input('w', [3, 1, 1]);
        const [sw] = g.call('exp', [w]);
        const [y] = g.call('mul', [x, sw]);
        g.outputs.set('y', y);
        return { g, sw };
      };
      const one = make();
      const f = fuse(one.g);
      const two = make();
      two.g.outputs.set('sw', two.sw); // now exported with a shape smaller than the group: not fused
      const f2 = fuse(two.g);
      return {
        pairs: [
          [one.g, f, 20],
          [two.g, f2, 20],
        ],
        structure() {
          expect(f.nodes.map((n) => n.op)).toEqual(['fused']);
          expect(f2.nodes.map((n) => n.op)).toEqual(['exp', 'mul']);
        },
      };
    },
  },
  {
    name: 'no fusion across a detour through a non-elementwise op (it would be a cycle)',
    build() {
      const g = new Graph();
      const x = g.input('x', [3, 8]);
      const [e] = g.call('exp', [x]);
      const [s] = g.call('reduce_sum', [e], { axes: [1], keepdims: true });
      const [y] = g.call('div', [e, s]); // softmax
      g.outputs.set('y', y);
      const f = fuse(g);
      return { pairs: [[g, f, 30]], structure: () => expect(f.nodes.map((n) => n.op)).toEqual(['exp', 'reduce_sum', 'div']) };
    },
  },
  {
    name: 'graph outputs inside a chain stay readable',
    build() {
      const g = new Graph();
      const x = g.input('x', [17]);
      const [a] = g.call('softplus', [x]);
      const [b] = g.call('scale', [a], { a: -2 });
      const [c] = g.call('exp', [b]);
      g.outputs.set('a', a);
      g.outputs.set('c', c);
      const f = fuse(g);
      return {
        pairs: [[g, f, 40]],
        structure() {
          expect(count(f, 'fused')).toBe(1);
          expect(f.nodes[0].outputs.length).toBe(2);
        },
      };
    },
  },
  {
    name: `at most ${MAX_BINDINGS} buffers per fused node`,
    build() {
      const g = new Graph();
      let acc = g.input('x0', [5, 6]);
      for (let i = 1; i < 12; i++) acc = g.call(i % 2 ? 'add' : 'mul', [acc, g.input(`x${i}`, [5, 6])])[0];
      g.outputs.set('y', acc);
      const f = fuse(g);
      return {
        pairs: [[g, f, 50]],
        structure() {
          expect(count(f, 'fused')).toBeGreaterThanOrEqual(2);
          for (const n of f.nodes) expect(n.inputs.length + n.outputs.length).toBeLessThanOrEqual(MAX_BINDINGS);
          expect(lower(f).launches.length).toBeLessThan(lower(g).launches.length);
        },
      };
    },
  },
  {
    name: 'in-place updates (Adam on a fused gradient) and state updates still land',
    build() {
      const g = new Graph();
      const p = g.input('p', [4, 3], 'param');
      const m = g.input('m', [4, 3], 'state');
      const v = g.input('v', [4, 3], 'state');
      const x = g.input('x', [4, 3]);
      const [d] = g.call('sub', [p, x]);
      const [grad] = g.call('scale', [d], { a: 2 });
      const [p2, m2, v2] = g.call('adam', [p, grad, m, v], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 });
      const [loss] = g.call('mul', [d, d]);
      g.outputs.set('loss', loss);
      g.updates.set('p', p2);
      g.updates.set('m', m2);
      g.updates.set('v', v2);
      const f = fuse(g);
      return {
        pairs: [[g, f, 60]],
        structure() {
          expect(count(f, 'fused')).toBe(1);
          expect(lower(f).launches.filter((l) => l.op === 'copy').length).toBe(lower(g).launches.filter((l) => l.op === 'copy').length);
        },
      };
    },
  },
  {
    name: "training BatchNorm: statistics, then its apply fused with the residual add and ReLU; its gradients unchanged",
    build() {
      // A Down block's tail: relu(bn(x) + skip)·w summed, differentiated for x, γ, β and skip.
      const g = new Graph();
      const x = g.input('x', [3, 4, 5, 6]);
      const skip = g.input('skip', [3, 4, 5, 6]);
      const w = g.input('w', [3, 4, 5, 6]);
      const [gamma, beta, rm, rv] = ['gamma', 'beta', 'rm', 'rv'].map((n) => g.input(n, [4], n.startsWith('r') ? 'state' : 'param'));
      const [y, , , rm2, rv2] = g.call('batchnorm', [x, gamma, beta, rm, rv], { training: true, eps: 1e-5, momentum: 0.1 });
      const [r] = g.call('relu', [g.call('add', [y, skip])[0]]);
      const [loss] = g.call('reduce_sum', [g.call('mul', [r, w])[0]], { axes: [0, 1, 2, 3], keepdims: false });
      gradients(g, loss, [x, gamma, beta, skip]).forEach((v, k) => g.outputs.set(`d${k}`, v));
      g.outputs.set('r', r);
      g.updates.set('rm', rm2);
      g.updates.set('rv', rv2);
      const f = fuse(g);
      return {
        pairs: [[g, f, 80]],
        structure() {
          expect(count(f, 'batchnorm')).toBe(0);
          expect(count(f, 'batchnorm_stats')).toBe(1);
          expect(count(f, 'batchnorm_grad')).toBe(1);
          // One forward kernel: the apply, the add and the ReLU (here with the ReLU's gradient,
          // whose dy = w is known up front), storing neither BatchNorm's output nor the sum: the
          // ReLU's gradient reads the ReLU's output.
          const apply = f.nodes.find((n) => n.op === 'fused' && (n.attrs.program as FusedInstr[]).some(([op]) => op === 'relu'))!;
          const prog = apply.attrs.program as FusedInstr[];
          expect(prog.filter(([op]) => op !== 'input').map(([op]) => op).slice(0, 5)).toEqual(['sub', 'mul', 'add', 'add', 'relu']);
          const adds = prog.flatMap(([op], i) => (op === 'add' ? [i] : []));
          for (const i of adds) expect(apply.attrs.outputs as number[]).not.toContain(i);
          expect(trafficStats(lower(f)).bytes).toBeLessThan(trafficStats(lower(g)).bytes);
        },
      };
    },
  },
  {
    name: "BatchNorm → ReLU → (a conv's input): the ReLU's gradient is folded into BatchNorm's backward",
    build() {
      const g = new Graph();
      const x = g.input('x', [3, 4, 5, 6]);
      const w = g.input('w', [3, 4, 5, 6]);
      const [gamma, beta, rm, rv] = ['gamma', 'beta', 'rm', 'rv'].map((n) => g.input(n, [4], n.startsWith('r') ? 'state' : 'param'));
      const [y] = g.call('batchnorm', [x, gamma, beta, rm, rv], { training: true });
      const [r] = g.call('relu', [y]);
      // The loss reads r twice so that its dy depends on r (as a conv's input gradient would).
      const [loss] = g.call('reduce_sum', [g.call('mul', [g.call('mul', [r, r])[0], w])[0]], { axes: [0, 1, 2, 3], keepdims: false });
      gradients(g, loss, [x, gamma, beta]).forEach((v, k) => g.outputs.set(`d${k}`, v));
      const f = fuse(g);
      return {
        pairs: [[g, f, 85]],
        structure() {
          // No relu_grad left, alone or inside a fused kernel; batchnorm_grad takes the mask.
          for (const l of lower(f).launches) {
            expect(l.op).not.toBe('relu_grad');
            if (l.op === 'fused') expect((l.attrs.program as FusedInstr[]).map(([op]) => op)).not.toContain('relu_grad');
          }
          expect(f.nodes.find((n) => n.op === 'batchnorm_grad')!.inputs.length).toBe(6);
        },
      };
    },
  },
  {
    name: 'eval BatchNorm is a per-channel affine: it, the conditioning add and the ReLU are one kernel',
    build() {
      const g = new Graph();
      const x = g.input('x', [2, 3, 4, 5]);
      const cond = g.input('cond', [2, 3, 1, 1]);
      const [gamma, beta, rm, rv] = ['gamma', 'beta', 'rm', 'rv'].map((n) => g.input(n, [3], 'param'));
      const [y] = g.call('batchnorm', [x, gamma, beta, rm, rv], { training: false, eps: 1e-3 });
      g.outputs.set('y', g.call('relu', [g.call('add', [y, cond])[0]])[0]);
      const f = fuse(g);
      return {
        pairs: [[g, f, 90]],
        structure() {
          expect(lower(f).launches.map((l) => l.op)).toEqual(['fused']);
          expect(lower(g).launches.length).toBe(3);
        },
      };
    },
  },
];

describe('fuse: small graphs', () => {
  // What fusion did, and the fused graph = the unfused one on the float64 oracle.
  for (const c of CASES)
    test(`${c.name} (float64)`, () => {
      const { pairs, structure } = c.build();
      structure();
      for (const [g, f, seed] of pairs) expectSameOnOracle(g, f, seed);
    });

  // The fused graph on each device = the unfused one on the float64 oracle.
  forEachDevice((d) => {
    for (const c of CASES)
      test(c.name, async () => {
        for (const [g, f, seed] of c.build().pairs) await expectSameOn(d, g, f, seed);
      });
  });
});

describe('fuse: the small oracle model', () => {
  const model = compileModelFile('models/reference2d.vae', { overrides: { channels: [4, 8, 16, 32, 64], latent: 16, size: [64, 32] } });

  test('fewer launches in every program', () => {
    const counts: Record<string, [number, number]> = {};
    const graphs: [string, Graph][] = [['train', model.trainStep(2).graph], ...model.entryNames.map((e) => [e, model.entry(e, 2).graph] as [string, Graph])];
    for (const [name, g] of graphs) {
      const [a, b] = [lower(g).launches.length, lower(fuse(g)).launches.length];
      counts[name] = [a, b];
      expect(b, name).toBeLessThanOrEqual(a);
    }
    console.info('launches unfused → fused', counts);
    expect(counts.train[1]).toBeLessThan(counts.train[0] - 40);
  });

  onDevice('wasm', (wasm) => {
    test('the training step fused vs unfused: same metrics and weights after 3 steps', async () => {
      const entry = model.trainStep(2);
      const inputs = Object.fromEntries(entry.inputs.map((i, k) => [i.name, Float32Array.from(randn(i.shape, 70 + k).data)]));
      const runs: { metrics: Record<string, number>[]; weights: Map<string, Float32Array>; ms: number }[] = [];
      for (const fuseOn of [false, true]) {
        const rt = new ModelRuntime(wasm.eager.backend, model, { fuse: fuseOn });
        rt.init(5);
        await rt.trainStep(inputs, 2, 0); // builds the program; not timed
        rt.init(5);
        const metrics: Record<string, number>[] = [];
        const t0 = performance.now();
        for (let it = 0; it < 3; it++) metrics.push(await rt.trainStep(inputs, 2, it));
        runs.push({ metrics, weights: await rt.readAll(), ms: (performance.now() - t0) / 3 });
        rt.destroy();
      }
      const [plain, fused] = runs;
      console.info(`wasm train step (batch 2): unfused ${plain.ms.toFixed(1)} ms, fused ${fused.ms.toFixed(1)} ms`);
      for (let it = 0; it < 3; it++)
        for (const [k, v] of Object.entries(plain.metrics[it])) expect(relErr([fused.metrics[it][k]], [v]), `${k} at step ${it}`).toBeLessThan(1e-5);
      for (const [name, w] of plain.weights) expect(relErr(fused.weights.get(name)!, w), name).toBeLessThan(1e-5);
    }, 120_000);
  });
});
