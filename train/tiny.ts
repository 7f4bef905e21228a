// A tiny linear VAE built by hand on the graph IR, with the same contract as a compiled .vae
// model (inputs x / ref / cls, entries encode / decode / generate, a training step with Adam and
// the objectives of statistical-cell.md §2). It lets the trainer, checkpoints and the CLI be
// tested in seconds on any backend, independently of the DSL compiler. `tiny:reference` and
// `tiny:target` on the command line select it.

import { createHash } from 'node:crypto';
import { gradients } from '../compiler/autodiff.ts';
import { Graph, type Value } from '../compiler/ir.ts';
import type { CompiledModel, EntryGraph, HostScalar, TensorSpec, TrainGraph } from '../compiler/model.ts';

export interface TinyOptions {
  /** Spatial size [Y, X] (or [Y, X, Z]). */
  size: number[];
  /** Image channels: 2 for the reference model, 1 for the target model. */
  channels: number;
  /** Target model: conditioned on a 2-channel reference and a one-hot label. */
  conditioned: boolean;
  classes: number;
  latent: number;
  objective: 'beta_sweep' | 'h';
  beta: number;
  warmup: boolean;
  lr: number;
  /** Seed of the reparameterisation noise stream. */
  seed: number;
}

export const TINY_DEFAULTS: TinyOptions = { size: [8, 6], channels: 2, conditioned: false, classes: 24, latent: 4, objective: 'beta_sweep', beta: 0.5, warmup: false, lr: 1e-2, seed: 7 };

/** KL warm-up of §2: β_t = clamp(−1 + 3e-5·t, 1e-6, 1). */
export const warmupBeta = (t: number): number => Math.min(1, Math.max(1e-6, -1 + 3e-5 * t));

export function tinyVae(overrides: Partial<TinyOptions> = {}): CompiledModel {
  const o: TinyOptions = { ...TINY_DEFAULTS, ...overrides };
  const d = o.channels * o.size.reduce((a, b) => a * b, 1);
  const dRef = 2 * o.size.reduce((a, b) => a * b, 1);
  const L = o.latent;
  const lin = (fanIn: number) => ({ kind: 'uniform' as const, low: -1 / Math.sqrt(fanIn), high: 1 / Math.sqrt(fanIn) });
  const tensors: TensorSpec[] = [
    { name: 'enc.fc_mu.weight', shape: [L, d], kind: 'param', init: lin(d), owner: 'enc.fc_mu' },
    { name: 'enc.fc_mu.bias', shape: [L], kind: 'param', init: lin(d), owner: 'enc.fc_mu' },
    { name: 'enc.fc_logvar.weight', shape: [L, d], kind: 'param', init: lin(d), owner: 'enc.fc_logvar' },
    { name: 'enc.fc_logvar.bias', shape: [L], kind: 'param', init: { kind: 'constant', value: -1 }, owner: 'enc.fc_logvar' },
    { name: 'dec.fc.weight', shape: [d, L], kind: 'param', init: lin(L), owner: 'dec.fc' },
    { name: 'dec.fc.bias', shape: [d], kind: 'param', init: lin(L), owner: 'dec.fc' },
  ];
  if (o.conditioned)
    tensors.push(
      { name: 'enc.cond_ref.weight', shape: [L, dRef], kind: 'param', init: lin(dRef), owner: 'enc.cond_ref' },
      { name: 'enc.cond_class.weight', shape: [L, o.classes], kind: 'param', init: lin(o.classes), owner: 'enc.cond_class' },
      { name: 'dec.cond_ref.weight', shape: [d, dRef], kind: 'param', init: lin(dRef), owner: 'dec.cond_ref' },
      { name: 'dec.cond_class.weight', shape: [d, o.classes], kind: 'param', init: lin(o.classes), owner: 'dec.cond_class' },
    );
  // A non-trainable state tensor that the step updates (a step counter), so checkpoints carry state too.
  tensors.push({ name: 'steps_seen', shape: [1], kind: 'state', init: { kind: 'constant', value: 0 }, owner: 'model' });

  const source = `# tiny linear VAE\n${JSON.stringify(o)}\n`;
  const sourceHash = createHash('sha256').update(source).digest('hex');

  /** Declares every parameter/state tensor of the model as a graph input. */
  const declare = (g: Graph) => new Map(tensors.map((t) => [t.name, g.input(t.name, t.shape, t.kind)]));

  /** Data inputs x [B, C, ...S] and, for the target model, ref [B, 2, ...S] and cls [B, K]. */
  const dataInputs = (g: Graph, B: number, withX: boolean) => {
    const ins: { name: string; shape: number[] }[] = [];
    const v: Record<string, Value> = {};
    const add = (name: string, shape: number[]) => {
      ins.push({ name, shape });
      v[name] = g.input(name, shape);
    };
    if (withX) add('x', [B, o.channels, ...o.size]);
    if (o.conditioned) {
      add('ref', [B, 2, ...o.size]);
      add('cls', [B, o.classes]);
    }
    return { ins, v };
  };

  const flat = (g: Graph, x: Value, B: number) => g.call('reshape', [x], { shape: [B, x.shape.slice(1).reduce((a, b) => a * b, 1)] })[0];

  const encode = (g: Graph, p: Map<string, Value>, v: Record<string, Value>, B: number): [Value, Value] => {
    const xf = flat(g, v.x, B);
    let [mu] = g.call('matmul', [xf, p.get('enc.fc_mu.weight')!, p.get('enc.fc_mu.bias')!], { transB: true });
    const [logvar] = g.call('matmul', [xf, p.get('enc.fc_logvar.weight')!, p.get('enc.fc_logvar.bias')!], { transB: true });
    if (o.conditioned) {
      const [r] = g.call('matmul', [flat(g, v.ref, B), p.get('enc.cond_ref.weight')!], { transB: true });
      const [c] = g.call('matmul', [v.cls, p.get('enc.cond_class.weight')!], { transB: true });
      mu = g.call('add', [g.call('add', [mu, r])[0], c])[0];
    }
    return [mu, logvar];
  };

  const decode = (g: Graph, p: Map<string, Value>, v: Record<string, Value>, z: Value, B: number): Value => {
    let [h] = g.call('matmul', [z, p.get('dec.fc.weight')!, p.get('dec.fc.bias')!], { transB: true });
    if (o.conditioned) {
      const [r] = g.call('matmul', [flat(g, v.ref, B), p.get('dec.cond_ref.weight')!], { transB: true });
      const [c] = g.call('matmul', [v.cls, p.get('dec.cond_class.weight')!], { transB: true });
      h = g.call('add', [g.call('add', [h, r])[0], c])[0];
    }
    const [y] = g.call('softplus', [h]);
    return g.call('reshape', [y], { shape: [B, o.channels, ...o.size] })[0];
  };

  /** ε for `draws` values: a fresh Philox block per run, keyed by the iteration. */
  const noise = (g: Graph, shape: number[], salt: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return g.call('randn', [], { shape, seed: o.seed * 16 + salt, offset: 0 }, { offset: (a) => (a.iteration ?? 0) * Math.ceil(n / 4) })[0];
  };

  const entry = (name: string, B: number): EntryGraph => {
    const g = new Graph();
    const p = declare(g);
    if (name === 'encode') {
      const { ins, v } = dataInputs(g, B, true);
      const [mu, logvar] = encode(g, p, v, B);
      g.outputs.set('mu', mu).set('logvar', logvar);
      return { graph: g, inputs: ins, outputs: ['mu', 'logvar'], hostScalars: [] };
    }
    if (name === 'decode' || name === 'generate') {
      const { ins, v } = dataInputs(g, B, false);
      let z: Value;
      if (name === 'decode') {
        z = g.input('z', [B, L]);
        ins.unshift({ name: 'z', shape: [B, L] });
      } else z = noise(g, [B, L], 1);
      g.outputs.set('xhat', decode(g, p, v, z, B));
      return { graph: g, inputs: ins, outputs: ['xhat'], hostScalars: [] };
    }
    throw new Error(`tiny model: no entry '${name}' (entries: encode, decode, generate)`);
  };

  const trainStep = (B: number): TrainGraph => {
    const g = new Graph();
    const p = declare(g);
    const { ins, v } = dataInputs(g, B, true);
    const [mu, logvar] = encode(g, p, v, B);
    const [z] = g.call('reparam', [mu, logvar, noise(g, [B, L], 0)]);
    const xhat = decode(g, p, v, z, B);
    const [sse] = g.call('sse', [xhat, v.x]);
    const [recon] = g.call('scale', [sse], { a: 1 / B, b: 0 });
    const [kldAll] = g.call('kld', [mu, logvar]);
    const [kldFlat] = g.call('reshape', [kldAll], { shape: [B * L] });
    const [kl] = g.call('scale', [g.call('reduce_sum', [kldFlat], { axes: [0], keepdims: true })[0]], { a: 1 / B, b: 0 });
    const hostScalars: HostScalar[] = [];
    let klTerm: Value;
    let reconTerm = recon;
    if (o.warmup) {
      // β_t changes every step: fed by the host as a [1] input rather than baked into the graph.
      const bt = g.input('beta_t', [1]);
      hostScalars.push({ name: 'beta_t', at: warmupBeta });
      klTerm = g.call('mul', [kl, bt])[0];
      if (o.objective === 'beta_sweep') {
        const [oneMinus] = g.call('scale', [bt], { a: -1, b: 1 });
        reconTerm = g.call('scale', [g.call('mul', [recon, oneMinus])[0]], { a: 2, b: 0 })[0];
        klTerm = g.call('scale', [klTerm], { a: 2, b: 0 })[0];
      }
    } else if (o.objective === 'h') klTerm = g.call('scale', [kl], { a: o.beta, b: 0 })[0];
    else {
      reconTerm = g.call('scale', [recon], { a: 2 * (1 - o.beta), b: 0 })[0];
      klTerm = g.call('scale', [kl], { a: 2 * o.beta, b: 0 })[0];
    }
    const [loss] = g.call('add', [reconTerm, klTerm]);
    const params = tensors.filter((t) => t.kind === 'param');
    const grads = gradients(g, loss, params.map((t) => p.get(t.name)!));
    params.forEach((t, i) => {
      const m = g.input(`adam.m.${t.name}`, t.shape, 'state');
      const vv = g.input(`adam.v.${t.name}`, t.shape, 'state');
      const [p2, m2, v2] = g.call('adam', [p.get(t.name)!, grads[i], m, vv], { lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 }, { step: (a) => (a.iteration ?? 0) + 1 });
      g.updates.set(t.name, p2).set(`adam.m.${t.name}`, m2).set(`adam.v.${t.name}`, v2);
    });
    g.updates.set('steps_seen', g.call('scale', [p.get('steps_seen')!], { a: 1, b: 1 })[0]);
    g.outputs.set('recon', recon).set('kl', kl).set('loss', loss);
    return { graph: g, inputs: ins, outputs: ['recon', 'kl', 'loss'], metrics: ['recon', 'kl', 'loss'], hostScalars, optimizer: { kind: 'adam', lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 } };
  };

  return {
    name: o.conditioned ? 'TinyTarget' : 'TinyReference',
    source,
    sourceHash,
    config: { ...o, dims: o.size.length, n_in: o.channels, classes: o.classes },
    tensors,
    entry,
    entryNames: ['encode', 'decode', 'generate'],
    trainStep,
  };
}
