// --precision f16-storage (compiler/precision.ts): every activation a kernel writes is read back
// as binary16 values, while parameters, weight gradients, Adam's moments and BatchNorm's
// statistics stay f32; with 'f32' the program is the one compiled without the option.

import { describe, expect, test } from 'vitest';
import { compileReport } from '../../cli/compile.ts';
import { f16StorageLine } from '../../cli/train.ts';
import { compileModelFile } from '../../compiler/index.ts';
import type { Graph, Value } from '../../compiler/ir.ts';
import { lower } from '../../compiler/plan.ts';
import { fuse } from '../../compiler/fuse.ts';
import { parsePrecision, storeActivationsInF16 } from '../../compiler/precision.ts';
import { printIr } from '../../compiler/print.ts';
import { roundToF16 } from '../../kernels/elementwise/pointwise.ts';
import { getOp } from '../../kernels/registry.ts';
import { numel } from '../../kernels/types.ts';
import type { Backend } from '../../runtime/backend.ts';
import type { Tensor } from '../../runtime/tensor.ts';
import { initialValues, ModelRuntime } from '../../session/model.ts';
import { onDevice, rng } from '../harness.ts';

const B = 3; // no parameter of the model below has 3 as its first axis, so [3, …] is an activation
const small = () => compileModelFile('models/reference2d.vae', { overrides: { channels: [4, 8, 16, 32, 64], latent: 16, size: [64, 32] }, debug: { expose: ['mu', 'logvar', 'z', 'xhat'], gradients: true } });
/** Elements that a binary16 buffer could not hold. */
const notF16 = (a: Float32Array) => a.filter((v) => Float32Array.of(roundToF16(v))[0] !== v && !Number.isNaN(v)).length;
/** A tensor with more than one value per cell (one per cell: the per-cell loss terms, f32). */
const isActivation = (shape: readonly number[]) => shape[0] === B && numel(shape) > B;

describe('precision', () => {
  test('--precision takes f32 or f16-storage, and says so otherwise', () => {
    expect(parsePrecision('f16-storage')).toBe('f16-storage');
    expect(() => parsePrecision('f16')).toThrow(/^--precision f16: expected f32 or f16-storage$/);
  });

  test("'f32' compiles the program the compiler builds without the option: no rounding anywhere", () => {
    const m = small();
    for (const name of ['train', 'encode', 'decode']) {
      const graph = name === 'train' ? m.trainStep(B).graph : m.entry(name, B).graph;
      const p = m.program(name, B, true, 'f32').program;
      expect(p).toBe(m.program(name, B).program);
      expect(printIr(p)).toBe(printIr(lower(fuse(graph))));
      expect(printIr(p)).not.toMatch(/round_f16/);
      expect(printIr(m.program(name, B, true, 'f16-storage').program)).toMatch(/round_f16/);
    }
  });

  test('statcell compile with f16-storage: the launches and bytes of the rounding program, and what it is', () => {
    const m = small();
    const [full, half] = [compileReport(m, B).text, compileReport(m, B, undefined, 'f16-storage').text];
    const trainLine = (t: string) => t.split('\n').find((l) => l.trim().startsWith('train step'))!;
    expect(full).not.toMatch(/f16-storage/);
    expect(half).toMatch(/--precision f16-storage: activations rounded to binary16 in float32 buffers/);
    const launches = (l: string) => Number(/(\d+) launches/.exec(l)![1]);
    expect(launches(trainLine(half))).toBe(m.program('train', B, true, 'f16-storage').program.launches.length);
    expect(launches(trainLine(half))).toBeGreaterThan(launches(trainLine(full)));
    expect(() => compileReport(m, B, undefined, 'half')).toThrow(/^--precision half: expected f32 or f16-storage$/);
  });

  test('on an adapter with shader-f16 the message says f16 buffers are not built', () => {
    const backend = (features: string[]) => ({ kind: 'webgpu', features }) as unknown as Backend;
    expect(f16StorageLine(backend(['shader-f16']))).toMatch(/emulated in f32 buffers \(this adapter has shader-f16, but f16 buffers are not built: values identical, memory not halved\)$/);
    expect(f16StorageLine(backend([]))).toMatch(/emulated in f32 buffers$/);
  });

  test('a graph built differently at another batch is refused', () => {
    const m = small();
    expect(() => storeActivationsInF16(m.trainStep(B).graph, m.entry('encode', B).graph)).toThrow(/not built the same way at two batch sizes/);
  });
});

onDevice('wasm', (d) => {
  /** Feeds for every input of a graph: the model's initial tensors, zero Adam moments, random data. */
  const feeds = (m: ReturnType<typeof small>, g: Graph) => {
    const r = rng(7);
    const specs = new Map(m.tensors.map((t, i) => [t.name, initialValues(t, 1, i)]));
    return new Map(g.inputs.map((i) => [i.value.id, d.eager.upload(i.value.shape, specs.get(i.name) ?? (i.name.startsWith('adam.') ? new Float32Array(numel(i.value.shape)) : Float32Array.from({ length: numel(i.value.shape) }, () => r())))]));
  };

  test('f16-storage, node by node: every activation a node reads holds binary16 values; weight gradients, Adam and BatchNorm state are f32', async () => {
    const m = small();
    expect(m.tensors.filter((t) => t.shape[0] === B).map((t) => t.name)).toEqual([]);
    for (const precision of ['f16-storage', 'f32'] as const) {
      const source = m.trainStep(B).graph;
      const g = precision === 'f16-storage' ? storeActivationsInF16(source, m.trainStep(B + 1).graph) : source;
      const vals = feeds(m, g);
      /** Values that are a graph input or a view of one: written by the host, not by a kernel. */
      const fed = new Set(g.inputs.map((i) => i.value.id));
      let readActivations = 0;
      const offending: string[] = [];
      const adamOuts: Tensor[] = [];
      const weightGrads: Tensor[] = [];
      for (const n of g.nodes) {
        const ins = n.inputs.map((v) => vals.get(v.id)!);
        if (n.op !== 'round_f16')
          for (const [k, v] of n.inputs.entries()) {
            if (fed.has(v.id) || !isActivation(v.shape)) continue;
            readActivations++;
            const bad = notF16(await d.eager.read(ins[k]));
            if (bad) offending.push(`${n.op} reads ${v.node!.op}'s [${v.shape}] with ${bad} non-binary16 values`);
          }
        const outs = d.eager.call(n.op, ins, n.attrs);
        n.outputs.forEach((o: Value, k) => vals.set(o.id, outs[k]));
        if (getOp(n.op).view && fed.has(n.inputs[0].id)) fed.add(n.outputs[0].id);
        if (n.op === 'adam') {
          adamOuts.push(...outs);
          // As below: a bias's gradient may happen to hold binary16 values only.
          if (!g.inputs.find((i) => i.value.id === n.inputs[0].id)!.name.endsWith('.bias')) weightGrads.push(ins[1]);
        }
      }
      if (precision === 'f32') {
        expect(offending.length, 'without rounding, activations hold values binary16 cannot').toBeGreaterThan(readActivations / 2);
        continue;
      }
      expect(readActivations).toBeGreaterThan(300);
      expect(offending).toEqual([]);
      // Not rounded: each parameter's gradient, new value and moments, and the running statistics.
      const f32Values = async (ts: Tensor[]) => (await Promise.all(ts.map(async (t) => notF16(await d.eager.read(t)) > 0))).filter(Boolean).length;
      expect(await f32Values(weightGrads)).toBe(weightGrads.length);
      // Adam's first step moves a parameter by ±lr·(1 − ε): its new values, m and v hold f32 values.
      expect(await f32Values(adamOuts)).toBe(adamOuts.length);
      const stats = [...g.updates].filter(([name]) => /running_(mean|var)$/.test(name)).map(([, v]) => vals.get(v.id)!);
      expect(stats.length).toBeGreaterThan(10);
      expect(await f32Values(stats)).toBe(stats.length);
    }
  }, 120_000);

  test('f16-storage, the fused program: its activation outputs hold binary16 values, gradients and parameters f32', async () => {
    const m = small();
    const x = m.trainStep(B).inputs.map((i) => [i.name, Float32Array.from({ length: numel(i.shape) }, rng(3))] as const);
    for (const precision of ['f16-storage', 'f32'] as const) {
      const rt = new ModelRuntime(d.eager.backend, m, { precision });
      rt.init(1);
      await rt.trainStep(Object.fromEntries(x), B, 0);
      const exposed = await Promise.all(['mu', 'logvar', 'z', 'xhat'].map(async (o) => notF16(await rt.output('train', B, o))));
      const grads = await Promise.all(m.tensors.filter((t) => t.kind === 'param' && !t.name.endsWith('.bias')).map(async (t) => notF16(await rt.output('train', B, `grad/${t.name}`))));
      const params = [...(await rt.readAll()).entries()].filter(([name]) => m.tensors.some((t) => t.name === name && t.kind === 'param')).map(([, v]) => notF16(v));
      if (precision === 'f16-storage') {
        expect(exposed).toEqual([0, 0, 0, 0]);
        // Every gradient but the biases': a bias's gradient, a few sums of binary16 values over
        // the batch and the pixels, may happen to be binary16 values (or 0, before a BatchNorm).
        expect(grads.length).toBeGreaterThan(30);
        expect(grads.filter((n) => n > 0).length).toBe(grads.length);
        expect(params.filter((n) => n > 0).length).toBe(params.length);
        const dec = await rt.run('decode', { z: Float32Array.from({ length: B * 16 }, rng(5)) }, B);
        expect(notF16(dec.xhat)).toBe(0);
      } else expect(exposed.every((n) => n > 0)).toBe(true);
      rt.destroy();
    }
  }, 120_000);
});
