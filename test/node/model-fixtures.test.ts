// The compiled training step of the paper's models (small widths, set by overrides) against the
// float64 PyTorch fixtures: forward, loss terms, every gradient, updated state, one Adam step,
// and the evaluation forward from the post-Adam state — on every device.

import { describe, expect, test } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import { adamMoment, ModelRuntime } from '../../session/model.ts';
import { asFloat64, type SafeTensors } from '../../runtime/safetensors.ts';
import { loadSafetensorsFixture } from '../fixtures.ts';
import { forEachDevice, relErr } from '../harness.ts';

const CASES = [
  { fixture: 'model_reference2d_small', file: 'models/reference2d.vae', overrides: { channels: [4, 8, 16, 32, 64], latent: 16, beta: 0.3 } },
  { fixture: 'model_target2d_small', file: 'models/target2d.vae', overrides: { channels: [4, 8, 16, 32, 64], latent: 16, beta: 0.3 } },
  { fixture: 'model_target3d_small', file: 'models/target3d.vae', overrides: { channels: [2, 4, 8, 16, 32], latent: 8, beta: 0.3, size: [64, 64, 32], objective: 'beta_sweep', warmup: false } },
];

const f32 = (st: SafeTensors, name: string) => {
  const t = st.tensors.get(name);
  if (!t) throw new Error(`fixture has no ${name}`);
  return Float32Array.from(asFloat64(t, name));
};
const FEW_VALUES_PER_CHANNEL = /\.cond_class\.|^enc\.down4\.|^dec\.up4\.cond_ref\.conv\./;
const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (x, i) => x - b[i]);
const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));
const f64 = (st: SafeTensors, name: string) => asFloat64(st.tensors.get(name)!, name);

describe('paper models (small) = PyTorch float64 fixtures', () => {
  forEachDevice((d) => {
    for (const c of CASES)
      test(`${c.fixture}: training step, Adam step and evaluation`, async () => {
        const st = await loadSafetensorsFixture(c.fixture);
        const model = compileModelFile(c.file, { overrides: c.overrides, debug: { externalNoise: true, expose: ['mu', 'logvar', 'z', 'xhat'], gradients: true } });
        expect(model.tensors.filter((t) => t.kind === 'param').reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0)).toBe(Number(st.metadata?.params));
        const conditioned = st.tensors.has('input/ref');
        const inputs: Record<string, Float32Array> = { x: f32(st, 'input/x'), noise0: f32(st, 'input/eps') };
        if (conditioned) Object.assign(inputs, { ref: f32(st, 'input/ref'), cls: f32(st, 'input/class_onehot') });
        const B = 2;
        const rt = new ModelRuntime(d.eager.backend, model);
        const initial = new Map<string, Float32Array>();
        for (const t of model.tensors) initial.set(t.name, f32(st, `param/${t.name}`));
        for (const t of model.tensors) if (t.kind === 'param') for (const w of ['m', 'v'] as const) initial.set(adamMoment(w, t.name), new Float32Array(t.shape.reduce((a, b) => a * b, 1)));
        rt.writeAll(initial);
        const metrics = await rt.trainStep(inputs, B, 0);
        const tol = 1e-4;
        const check = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => expect(relErr(got, want), `${d.name} ${c.fixture} ${what}`).toBeLessThan(tol);
        check([metrics.recon], f64(st, 'train/recon'), 'recon');
        check([metrics.kl], f64(st, 'train/kld'), 'kld');
        check([metrics.loss], f64(st, 'train/loss'), 'loss');
        for (const v of ['mu', 'logvar', 'z', 'xhat']) check(await rt.output('train', B, v), f64(st, `train/${v}`), v);
        const after = await rt.readAll();
        for (const t of model.tensors) {
          if (t.kind !== 'param') {
            check(after.get(t.name)!, f64(st, `state_after_train/${t.name}`), `state_after_train/${t.name}`);
            continue;
          }
          const want = f64(st, `grad/${t.name}`);
          const got = await rt.output('train', B, `grad/${t.name}`);
          // Some gradients are tiny next to their layer's other gradient: a conv bias followed by
          // BatchNorm has a true gradient of zero (PyTorch's is 1e-11 rounding noise), and a
          // BatchNorm γ can be the small difference of large terms. Float32 cannot resolve them
          // relative to themselves, so they are compared on the scale of the sibling gradient.
          const sibling = t.name.endsWith('.bias') ? t.name.replace(/bias$/, 'weight') : t.name.replace(/weight$/, 'bias');
          const scale = st.tensors.has(`grad/${sibling}`) ? norm(f64(st, `grad/${sibling}`)) : 0;
          const before = initial.get(t.name)!;
          const now = after.get(t.name)!;
          const lrBound = (i: number) => expect(Math.abs(now[i] - before[i]), `${d.name} ${c.fixture} ${t.name}[${i}] moved more than lr`).toBeLessThanOrEqual(2e-4 * 1.001);
          if (norm(want) < 1e-9 * scale) {
            // Zero in exact arithmetic: ours must be noise on the layer's scale, and Adam, which
            // normalises that noise, moves each element by at most lr.
            expect(norm(got) / scale, `${d.name} ${c.fixture} grad/${t.name} (zero in float64)`).toBeLessThan(tol);
            for (let i = 0; i < want.length; i++) lrBound(i);
            continue;
          }
          // A BatchNorm γ's gradient Σ dy·x̂ can be a small difference of large terms (in the
          // target models' one-channel enc.down0.bn1 it is 1e-4 of β's Σ dy): float32 resolves it
          // on the scale of β's gradient, not relative to itself. Well-conditioned γ gradients are
          // larger than this floor, so their check stays relative.
          const floor = t.name.includes('.bn') && t.name.endsWith('.weight') ? 1e-1 * scale : 1e-3 * scale;
          // Ill-conditioned in float32, so 1e-3 instead of 1e-4: layers whose gradient passes a
          // BatchNorm over a handful of values per channel (the class path: B = 2 values; the 3D
          // model's deepest block: 8), where 1 − x̂² cancels; and the last block's 2→1-channel
          // reference path, whose one-channel BatchNorm (262,144 values in 3D) projects the
          // 2-element weight gradient onto a direction that is a small residual of large sums.
          const gtol = FEW_VALUES_PER_CHANNEL.test(t.name) ? 1e-3 : tol;
          expect(norm(diff(got, want)) / Math.max(norm(want), floor), `${d.name} ${c.fixture} grad/${t.name}`).toBeLessThan(gtol);
          // Adam's first step is lr·g/|g| elementwise: where our float32 gradient does not even
          // resolve an element's sign, only |Δp| ≤ lr can hold; elsewhere the fixture is matched.
          const afterAdam = f64(st, `after_adam/${t.name}`);
          const resolved = Array.from(want, (w, i) => Math.abs(got[i] - w) < 0.5 * Math.abs(w));
          const unresolved = resolved.filter((r) => !r).length;
          for (let i = 0; i < want.length; i++) if (!resolved[i]) lrBound(i);
          const pick = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => resolved[i]);
          check(pick(now), pick(afterAdam), `after_adam/${t.name} (${unresolved} unresolved elements)`);
        }
        // Evaluation from the fixture's own post-Adam state: our float32 Adam step legitimately
        // differs on elements whose gradient float32 cannot resolve (see above), and in eval mode
        // BatchNorm no longer cancels a conv bias.
        const postAdam = new Map<string, Float32Array>();
        for (const t of model.tensors) postAdam.set(t.name, f32(st, `${t.kind === 'param' ? 'after_adam' : 'state_after_train'}/${t.name}`));
        rt.writeAll(postAdam);
        const cond: Record<string, Float32Array> = conditioned ? { ref: inputs.ref, cls: inputs.cls } : {};
        const enc = await rt.run('encode', { x: inputs.x, ...cond }, B);
        check(enc.mu, f64(st, 'eval/mu'), 'eval/mu');
        check(enc.logvar, f64(st, 'eval/logvar'), 'eval/logvar');
        const dec = await rt.run('decode', { z: enc.mu, ...cond }, B);
        check(dec.xhat, f64(st, 'eval/xhat_from_mu'), 'eval/xhat_from_mu');
        rt.destroy();
      }, 600_000);
  });
});
