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
import { devices } from './harness.ts';

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

  // Tolerances are relative, ‖a − b‖ / ‖b‖, except that ‖b‖ is floored at the size of a typical
  // gradient entry (the RMS of grad/x) times √n. Without the floor, gradients that are zero in
  // exact arithmetic — every conv bias in front of a BatchNorm (BN removes the mean) — would be
  // compared with PyTorch's rounding noise (~1e-15); and the conditioning paths' BatchNorm over
  // a batch of 2 single voxels amplifies float32 rounding in the weight gradient before it.
  const gx = get(st, 'grad/x').data;
  const rms = Math.sqrt(gx.reduce((a, v) => a + v * v, 0) / gx.length);
  const onehot = st.tensors.has('input/class_onehot') ? get(st, 'input/class_onehot') : null;
  // Every sample of the batch in the same class: the class path's BatchNorm input has zero
  // variance, its output is exactly β = 0 and the ReLU after it sits on its kink, where 0 and
  // the one-sided derivative are both valid; PyTorch picked per channel by the sign of rounding
  // noise in x − mean. Accept either there, per channel.
  const sameClass = onehot !== null && onehot.data.every((v, i) => v === onehot.data[i % onehot.shape[1]]);

  const errs: Record<string, number> = {};
  const check = async (label: string, t: T | null | undefined, want: string) => {
    if (t == null) return void (errs[label] = Infinity);
    const got = await h.read(t);
    let ref = get(st, want).data;
    if (sameClass && label === 'grad/cond_class.bn.bias') ref = ref.map((r, c) => (Math.abs(got[c]) < Math.abs(got[c] - r) ? 0 : r));
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      num += (got[i] - ref[i]) ** 2;
      den += ref[i] ** 2;
    }
    errs[label] = Math.sqrt(num) / Math.max(Math.sqrt(den), rms * Math.sqrt(ref.length));
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
const worst = (errs: Record<string, number>) => Object.entries(errs).reduce((a, b) => (b[1] > a[1] ? b : a));

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
        const [wn, we] = worst(errs);
        console.log(`${name} on ${d.name}: worst ${wn} ${we.toExponential(1)}`);
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
