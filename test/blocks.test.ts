// The residual Down/Up blocks against the float64 PyTorch fixtures: training-mode output, the
// gradient of Σ(y · grad_output) w.r.t. every parameter and input, and the updated state
// (spectral-norm u, BatchNorm running statistics) — on the float64 reference and every device.

import { describe, expect, test } from 'vitest';
import { reference, refTensor, type RefTensor } from '../kernels/reference.ts';
import type { Emitter, Shape } from '../kernels/types.ts';
import { Tape } from '../runtime/autograd.ts';
import { trainableNames, type ParamMap } from '../runtime/layers.ts';
import { asFloat64, type SafeTensors } from '../runtime/safetensors.ts';
import type { Tensor } from '../runtime/tensor.ts';
import { block, type BlockConfig, type BlockInputs } from './blocks.ts';
import { loadSafetensorsFixture } from './fixtures.ts';
import { devices, relErr } from './harness.ts';

interface Host<T> {
  name: string;
  em: Emitter<T>;
  upload(shape: Shape, data: Float64Array): T;
  read(t: T): Promise<ArrayLike<number>>;
  storage?: (t: T) => unknown;
}

const refHost: Host<RefTensor> = { name: 'reference', em: reference, upload: (s, d) => refTensor(s, d), read: async (t) => t.data };

function configOf(st: SafeTensors): BlockConfig {
  const m = st.metadata;
  return { block: m.block as 'down' | 'up', dims: Number(m.dims), activation: m.activation as 'relu' | 'softplus' };
}

const get = (st: SafeTensors, name: string) => {
  const t = st.tensors.get(name);
  if (!t) throw new Error(`fixture has no tensor '${name}'`);
  return { shape: t.shape, data: asFloat64(t, name) };
};

/** Runs one fixture on a host; returns the relative error of every checked tensor by name. */
async function runFixture<T>(h: Host<T>, st: SafeTensors, cfg: BlockConfig = configOf(st)): Promise<Record<string, number>> {
  const up = (name: string) => {
    const t = get(st, name);
    return h.upload(t.shape, t.data);
  };
  const tape = new Tape(h.em, { storage: h.storage });
  const p: ParamMap<T> = new Map();
  for (const name of st.tensors.keys()) if (name.startsWith('param/')) p.set(name.slice(6), up(name));
  for (const name of trainableNames(p.keys())) tape.watch(p.get(name)!);
  const leaves = new Map<string, T>(trainableNames(p.keys()).map((n) => [n, p.get(n) as T]));
  const inp: BlockInputs<T> = { x: tape.watch(up('input/x')) };
  leaves.set('x', inp.x);
  if (st.tensors.has('input/ref')) leaves.set('ref', (inp.ref = tape.watch(up('input/ref'))));
  if (st.tensors.has('input/class_onehot')) leaves.set('class_onehot', (inp.classOnehot = tape.watch(up('input/class_onehot'))));

  const y = block(tape, cfg, p, inp, true);
  tape.backward([y], [up('input/grad_output')]);

  const errs: Record<string, number> = {};
  const check = async (label: string, t: T | null | undefined, want: string) => {
    errs[label] = t == null ? Infinity : relErr(await h.read(t), get(st, want).data);
  };
  await check('output/y', y, 'output/y');
  for (const name of st.tensors.keys()) {
    if (name.startsWith('grad/')) {
      const leaf = leaves.get(name.slice(5));
      await check(name, leaf === undefined ? null : tape.grad(leaf), name);
    } else if (name.startsWith('state_after_train/')) await check(name, p.get(name.slice(18)), name);
  }
  return errs;
}

const failures = (errs: Record<string, number>, tol: number) => Object.entries(errs).filter(([, e]) => !(e < tol));

const FIXTURES = ['block_down2d', 'block_down2d_plain', 'block_down3d', 'block_up2d_softplus', 'block_up3d_softplus'];

describe('residual blocks = PyTorch float64 fixtures', () => {
  for (const name of FIXTURES) {
    test(`${name}: float64 reference (tolerance 1e-10)`, async () => {
      const st = await loadSafetensorsFixture(name);
      const errs = await runFixture(refHost, st);
      // Every gradient and state tensor of the fixture was compared (none silently skipped).
      expect(Object.keys(errs).length).toBe(1 + [...st.tensors.keys()].filter((k) => /^(grad|state_after_train)\//.test(k)).length);
      expect(failures(errs, 1e-10), JSON.stringify(errs)).toEqual([]);
    });

    test(`${name}: devices (tolerance 1e-4)`, async () => {
      const st = await loadSafetensorsFixture(name);
      for (const d of await devices()) {
        const host: Host<Tensor> = { name: d.name, em: d.eager, upload: (s, data) => d.eager.upload(s, data), read: (t) => d.eager.read(t), storage: (t) => t.buf };
        const errs = await runFixture(host, st);
        expect(failures(errs, 1e-4), `${d.name}: ${JSON.stringify(errs)}`).toEqual([]);
      }
    });
  }

  test('the check can fail: the wrong activation is far off', async () => {
    const st = await loadSafetensorsFixture('block_up2d_softplus');
    const errs = await runFixture(refHost, st, { ...configOf(st), activation: 'relu' });
    expect(errs['output/y']).toBeGreaterThan(1e-2);
  });

  test('a reference image at the wrong resolution is an error naming the block and shapes', async () => {
    const st = await loadSafetensorsFixture('block_down2d');
    const p: ParamMap<RefTensor> = new Map();
    for (const n of st.tensors.keys()) if (n.startsWith('param/')) p.set(n.slice(6), refTensor(get(st, n).shape, get(st, n).data));
    const x = refTensor(get(st, 'input/x').shape, get(st, 'input/x').data);
    const ref = refTensor([2, 2, 8, 6], new Float64Array(2 * 2 * 8 * 6));
    expect(() => block(reference, configOf(st), p, { x, ref })).toThrow(/down block: the reference image must be at the block's output resolution \[4, 3\].*\[2, 6, 4, 3\], \[2, 2, 8, 6\]/);
  });

  test('a missing parameter is an error naming it', async () => {
    const st = await loadSafetensorsFixture('block_down2d_plain');
    const p: ParamMap<RefTensor> = new Map();
    for (const n of st.tensors.keys()) if (n.startsWith('param/') && n !== 'param/conv2.sn_u') p.set(n.slice(6), refTensor(get(st, n).shape, get(st, n).data));
    const x = refTensor(get(st, 'input/x').shape, get(st, 'input/x').data);
    expect(() => block(reference, configOf(st), p, { x })).toThrow(/conv2: parameter 'conv2.sn_u' is missing/);
  });
});
