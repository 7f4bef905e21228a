// The residual Down/Up blocks against the float64 PyTorch fixtures, through the DSL's own blocks
// (models/statcell.vae) compiled by the compiler: test/models/blocks.vae applies one block and
// minimises Σ(y · grad_output), so one compiled training step gives the training-mode output,
// the gradient w.r.t. every parameter and data input, and the updated state (spectral-norm u,
// BatchNorm running statistics) — checked on the float64 graph evaluator and on every device.
//
// Node only: compileModelFile reads the .vae files with node:fs.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { evaluate } from '../../compiler/evaluate.ts';
import { compileModelFile } from '../../compiler/index.ts';
import type { CompiledModel } from '../../compiler/model.ts';
import { oracle, oracleTensor, type OracleTensor } from '../../kernels/oracle.ts';
import { numel } from '../../kernels/types.ts';
import { adamMoment, ModelRuntime } from '../../session/model.ts';
import { asFloat64, type SafeTensors } from '../../runtime/safetensors.ts';
import { loadSafetensorsFixture } from '../fixtures.ts';
import { devices, forEachDevice } from '../harness.ts';

const FILE = 'test/models/blocks.vae';
const B = 2;
/** The block's instance name in blocks.vae: model tensor `blk.<name>` is fixture tensor `<name>`. */
const PREFIX = 'blk.';
const fixtureName = (modelName: string) => {
  if (!modelName.startsWith(PREFIX)) throw new Error(`model tensor '${modelName}' is not under the block instance '${PREFIX}'`);
  return modelName.slice(PREFIX.length);
};
/** Model data input ← fixture tensor. */
const INPUTS: Record<string, string> = { x: 'input/x', ref: 'input/ref', cls: 'input/class_onehot', g: 'input/grad_output' };

const get = (st: SafeTensors, name: string) => {
  const t = st.tensors.get(name);
  if (!t) throw new Error(`fixture has no tensor '${name}'`);
  return { shape: t.shape, data: asFloat64(t, name) };
};

interface BlockCase {
  model: 'DownBlock' | 'UpBlock';
  overrides: Record<string, unknown>;
}

/** Which model of blocks.vae, with which overrides, from the fixture's metadata. */
function caseOf(st: SafeTensors): BlockCase {
  const m = st.metadata;
  const size = JSON.parse(m.size) as number[];
  if (size.length !== Number(m.dims)) throw new Error(`fixture metadata: size ${m.size} for dims ${m.dims}`);
  const conditioned = Number(m.ref_channels) > 0;
  if (conditioned !== Number(m.classes) > 0) throw new Error('fixture metadata: a oracle without a label (or the reverse) has no model in blocks.vae');
  const overrides: Record<string, unknown> = { size, cin: Number(m.in_channels), cout: Number(m.out_channels), conditioned };
  if (conditioned) Object.assign(overrides, { ref_channels: Number(m.ref_channels), classes: Number(m.classes) });
  if (m.block === 'down') {
    if (m.activation !== 'relu') throw new Error(`fixture metadata: a down block ends in ReLU, not ${m.activation}`);
    return { model: 'DownBlock', overrides };
  }
  if (m.block === 'up') return { model: 'UpBlock', overrides: { ...overrides, act: m.activation } };
  throw new Error(`fixture metadata: unknown block kind '${m.block}'`);
}

const compile = (c: BlockCase) => compileModelFile(FILE, { model: c.model, overrides: c.overrides, debug: { gradients: true, inputGradients: true, expose: ['y'] } });

/** Every parameter and state tensor of the model from the fixture's `param/…`; Adam moments zero. */
function initialState(model: CompiledModel, st: SafeTensors): Map<string, Float64Array> {
  const modelNames = new Set(model.tensors.map((t) => fixtureName(t.name)));
  const extra = [...st.tensors.keys()].filter((k) => k.startsWith('param/') && !modelNames.has(k.slice(6)));
  if (extra.length) throw new Error(`fixture tensors the model does not have: ${extra.join(', ')}`);
  const out = new Map<string, Float64Array>();
  for (const t of model.tensors) {
    const f = get(st, `param/${fixtureName(t.name)}`);
    if (f.shape.join() !== t.shape.join()) throw new Error(`${t.name}: the model has shape [${t.shape}], the fixture [${f.shape}]`);
    out.set(t.name, f.data);
    if (t.kind === 'param') for (const w of ['m', 'v'] as const) out.set(adamMoment(w, t.name), new Float64Array(numel(t.shape)));
  }
  return out;
}

function dataInputs(model: CompiledModel, st: SafeTensors): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const { name, shape } of model.trainStep(B).inputs) {
    const f = get(st, INPUTS[name] ?? `input/${name}`);
    if (f.shape.join() !== shape.join()) throw new Error(`input ${name}: the model wants [${shape}], the fixture has [${f.shape}]`);
    out.set(name, f.data);
  }
  return out;
}

/** What one training step gave: its outputs (y, grad/…) and the state tensors after it. */
interface StepResult {
  output(name: string): Promise<ArrayLike<number>>;
  state(name: string): Promise<ArrayLike<number>>;
}

/** The unfused training graph, evaluated op by op on the float64 oracle. */
function stepOnReference(model: CompiledModel, st: SafeTensors): StepResult {
  const train = model.trainStep(B);
  const values = new Map([...initialState(model, st), ...dataInputs(model, st)]);
  const feeds = new Map<string, OracleTensor>();
  for (const gi of train.graph.inputs) {
    const data = values.get(gi.name);
    if (!data) throw new Error(`no value for graph input '${gi.name}'`);
    feeds.set(gi.name, oracleTensor(gi.value.shape, data));
  }
  const { outputs, updates } = evaluate(train.graph, oracle, feeds);
  const pick = (m: Map<string, OracleTensor>, name: string) => {
    const t = m.get(name);
    if (!t) throw new Error(`the training step has no ${m === outputs ? 'output' : 'state update'} '${name}'`);
    return Promise.resolve(t.data);
  };
  return { output: (name) => pick(outputs, name), state: (name) => pick(updates, name) };
}

/** The compiled (fused, planned) training step on a device, through the model runtime. */
async function stepOnDevice(rt: ModelRuntime, model: CompiledModel, st: SafeTensors): Promise<StepResult> {
  const f32 = (m: Map<string, Float64Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
  rt.writeAll(f32(initialState(model, st)), 'fixture');
  await rt.trainStep(Object.fromEntries(f32(dataInputs(model, st))), B, 0);
  // The Adam step has changed the parameters; the state tensors (u, running statistics) hold
  // the values of the training forward.
  const after = await rt.readAll();
  return {
    output: (name) => rt.output('train', B, name),
    state: async (name) => {
      const t = after.get(name);
      if (!t) throw new Error(`the store has no '${name}'`);
      return t;
    },
  };
}

/** The relative error of every checked tensor, by fixture name. */
async function compare(model: CompiledModel, st: SafeTensors, r: StepResult): Promise<Record<string, number>> {
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
  const check = (label: string, got: ArrayLike<number>, want: string) => {
    let ref = get(st, want).data;
    if (got.length !== ref.length) return void (errs[label] = Infinity);
    if (sameClass && label === 'grad/cond_class.bn.bias') ref = ref.map((v, c) => (Math.abs(got[c]) < Math.abs(got[c] - v) ? 0 : v));
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      num += (got[i] - ref[i]) ** 2;
      den += ref[i] ** 2;
    }
    errs[label] = Math.sqrt(num) / Math.max(Math.sqrt(den), rms * Math.sqrt(ref.length));
  };
  check('output/y', await r.output('y'), 'output/y');
  const modelName = new Map(model.tensors.map((t) => [fixtureName(t.name), t.name]));
  for (const name of st.tensors.keys()) {
    const [kind, rest] = [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)];
    if (kind === 'grad') {
      // A data input's gradient (grad/x, grad/ref) or a parameter's (grad/conv1.weight → grad/blk.conv1.weight).
      const out = rest in INPUTS ? `grad/${rest}` : modelName.has(rest) ? `grad/${modelName.get(rest)}` : null;
      if (out === null) errs[name] = Infinity;
      else check(name, await r.output(out), name);
    } else if (kind === 'state_after_train') {
      if (!modelName.has(rest)) errs[name] = Infinity;
      else check(name, await r.state(modelName.get(rest)!), name);
    }
  }
  // ∂Σ(y·g)/∂g = y: the input-gradient output of the one input that has no fixture gradient.
  check('grad/g (= y)', await r.output('grad/g'), 'output/y');
  return errs;
}

/** Every gradient and state tensor of the fixture, y and grad/g were compared (none silently skipped). */
const expectComplete = (st: SafeTensors, errs: Record<string, number>) =>
  expect(Object.keys(errs).sort()).toEqual(['output/y', 'grad/g (= y)', ...[...st.tensors.keys()].filter((k) => /^(grad|state_after_train)\//.test(k))].sort());

const failures = (errs: Record<string, number>, tol: number) => Object.entries(errs).filter(([, e]) => !(e < tol));
const worst = (errs: Record<string, number>) => Object.entries(errs).reduce((a, b) => (b[1] > a[1] ? b : a));

const FIXTURES = ['block_down2d', 'block_down2d_plain', 'block_down3d', 'block_up2d_softplus', 'block_up3d_softplus'];

const compiled = new Map<string, Promise<{ st: SafeTensors; model: CompiledModel }>>();
const load = (name: string) => {
  let p = compiled.get(name);
  if (!p) compiled.set(name, (p = loadSafetensorsFixture(name).then((st) => ({ st, model: compile(caseOf(st)) }))));
  return p;
};

describe('residual blocks of statcell.vae, compiled = PyTorch float64 fixtures', () => {
  for (const name of FIXTURES) {
    test(`${name}: the compiled training graph on the float64 oracle (tolerance 1e-10)`, async () => {
      const { st, model } = await load(name);
      const errs = await compare(model, st, stepOnReference(model, st));
      expectComplete(st, errs);
      console.log(`${name} on reference: worst ${worst(errs)[0]} ${worst(errs)[1].toExponential(1)}`);
      expect(failures(errs, 1e-10), JSON.stringify(errs)).toEqual([]);
    });
  }

  forEachDevice((d) => {
    for (const name of FIXTURES)
      test(`${name}: the compiled training step (tolerance 1e-4)`, async () => {
        const { st, model } = await load(name);
        const rt = new ModelRuntime(d.eager.backend, model);
        try {
          const errs = await compare(model, st, await stepOnDevice(rt, model, st));
          expectComplete(st, errs);
          const [wn, we] = worst(errs);
          console.log(`${name} on ${d.name}: worst ${wn} ${we.toExponential(1)}`);
          expect(failures(errs, 1e-4), `${d.name}: ${JSON.stringify(errs)}`).toEqual([]);
        } finally {
          rt.destroy();
        }
      }, 600_000);
  });

  test('the check can fail: the wrong activation is far off', async () => {
    const st = await loadSafetensorsFixture('block_up2d_softplus');
    const c = caseOf(st);
    const model = compile({ ...c, overrides: { ...c.overrides, act: 'relu' } });
    const errs = await compare(model, st, stepOnReference(model, st));
    expect(errs['output/y']).toBeGreaterThan(1e-2);
  });

  test('a oracle image at the wrong resolution is a shape error at the Down block', () => {
    const dir = mkdtempSync(join(tmpdir(), 'statcell-blocks-'));
    const file = join(dir, 'bad_ref.vae');
    writeFileSync(
      file,
      `import "${relative(dir, join(process.cwd(), 'models/statcell.vae'))}"\n` +
        `model M() {\n  input x: [B, 3, 8, 6]\n  input ref: [B, 2, 8, 6]\n` +
        `  train step(x, ref) {\n    y = x |> blk: Down(6)(ref = ref)\n    minimize sum(y) using adam(lr = 2e-4)\n  }\n}\n`,
    );
    expect(() => compileModelFile(file)).toThrow(/bad_ref\.vae:6:19: error\[SC3001\]: input 'ref' of block Down has shape \[2, 2, 8, 6\], the declaration says \[B, R, \.\.\.S\/2\]: axes 2–3 are \[8, 6\] where it declares \.\.\.S\/2 = \[4, 3\]/);
  });

  test('a block whose parameters all have defaults binds without parentheses: `pre = Refine` is `pre = Refine()` (SC2008 at its use said it needed an instance name)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'statcell-blocks-'));
    const src = (bind: string) =>
      `block Refine(k: int = 3)(x: [B, C, ...S]) -> [B, C, ...S] {\n  return x |> c1: conv(C, k = k, pad = 1)\n}\n` +
      `model M() {\n  input x: [B, 2, 8, 6]\n  pre = ${bind}\n  entry f(x) -> [B, 2, 8, 6] {\n    return pre(x)\n  }\n}\n`;
    const names = (bind: string) => {
      const file = join(dir, `refine${bind.length}.vae`);
      writeFileSync(file, src(bind));
      return compileModelFile(file).tensors.map((t) => t.name).sort();
    };
    expect(names('Refine')).toEqual(['pre.c1.bias', 'pre.c1.weight']);
    expect(names('Refine')).toEqual(names('Refine()'));
  });

  test('a parameter the fixture lacks is an error naming it', async () => {
    const { st, model } = await load('block_down2d_plain');
    const [d] = await devices();
    const rt = new ModelRuntime(d.eager.backend, model);
    try {
      const state = initialState(model, st);
      state.delete('blk.conv2.sn_u');
      expect(() => rt.writeAll(new Map([...state].map(([k, v]) => [k, Float32Array.from(v)])), 'fixture')).toThrow(/fixture: no tensor 'blk\.conv2\.sn_u' \(shape \[4\]\)/);
    } finally {
      rt.destroy();
    }
  });
});
