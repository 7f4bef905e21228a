// The paper's layers written over an Emitter (a Tape records them for backward; a bare emitter
// runs them without gradients). Parameters and state live in a flat map keyed by the fixture
// names (`conv1.weight`, `conv1.sn_u`, `bn1.running_mean`, ...); layers that update state
// (spectral norm's u, BatchNorm's running statistics) write the new tensor back into the map.
//
// Spectral normalisation runs on every forward call, in training and in evaluation
// (statistical-cell.md §1.5): sn_sigma(w, u) → σ, u', v; the layer uses w / σ.

import type { Attrs, Emitter } from '../kernels/types.ts';
import { OpError, fmtShape } from '../kernels/types.ts';

export type ParamMap<T> = Map<string, T>;

function need<T>(p: ParamMap<T>, name: string, layer: string): T {
  const t = p.get(name);
  if (t === undefined) throw new OpError(layer, `parameter '${name}' is missing`, [], `known names: ${[...p.keys()].sort().join(', ')}`);
  return t;
}

/** w / σ(w) with one power iteration; `<name>.sn_u` is replaced by u'. */
export function spectralWeight<T>(em: Emitter<T>, p: ParamMap<T>, name: string): T {
  const w = need(p, `${name}.weight`, name);
  const u = need(p, `${name}.sn_u`, name);
  const [sigma, u2] = em.call('sn_sigma', [w, u], { eps: 1e-12 });
  p.set(`${name}.sn_u`, u2);
  return em.call('div', [w, sigma])[0];
}

export interface ConvAttrs extends Attrs {
  stride?: number | number[];
  pad?: number | number[];
}

/** Spectrally normalised conv with bias: weight [Co, Ci, …K]. */
export function snConv<T>(em: Emitter<T>, p: ParamMap<T>, name: string, x: T, attrs: ConvAttrs = {}): T {
  const w = spectralWeight(em, p, name);
  return em.call('conv', [x, w, need(p, `${name}.bias`, name)], { stride: attrs.stride ?? 1, pad: attrs.pad ?? 0 })[0];
}

/** Spectrally normalised transposed conv with bias: weight [Ci, Co, …K] (σ over dim 0 = Ci, as PyTorch). */
export function snConvTranspose<T>(em: Emitter<T>, p: ParamMap<T>, name: string, x: T, attrs: ConvAttrs & { outputPadding?: number | number[] } = {}): T {
  const w = spectralWeight(em, p, name);
  return em.call('conv_transpose', [x, w, need(p, `${name}.bias`, name)], { stride: attrs.stride ?? 1, pad: attrs.pad ?? 0, outputPadding: attrs.outputPadding ?? 0 })[0];
}

/** Spectrally normalised linear layer: x [B, in], weight [out, in] → [B, out]. */
export function snLinear<T>(em: Emitter<T>, p: ParamMap<T>, name: string, x: T): T {
  const w = spectralWeight(em, p, name);
  const xs = em.shape(x);
  const ws = em.shape(w);
  if (xs.length !== 2 || xs[1] !== ws[1]) throw new OpError(name, `linear layer takes [B, ${ws[1]}] for weight ${fmtShape(ws)}`, [xs, ws], 'flatten the input first (reshape)');
  return em.call('matmul', [x, w, need(p, `${name}.bias`, name)], { transB: true })[0];
}

export interface BatchNormAttrs {
  training: boolean;
  eps?: number;
  momentum?: number;
}

/**
 * BatchNorm over every axis but 1 with affine γ (`weight`), β (`bias`). Training uses batch
 * statistics and replaces `running_mean`/`running_var` in the map; evaluation uses them.
 */
export function batchNorm<T>(em: Emitter<T>, p: ParamMap<T>, name: string, x: T, { training, eps = 1e-5, momentum = 0.1 }: BatchNormAttrs): T {
  const ins = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => need(p, `${name}.${k}`, name));
  const outs = em.call('batchnorm', [x, ...ins], { training, eps, momentum });
  if (training) {
    p.set(`${name}.running_mean`, outs[3]);
    p.set(`${name}.running_var`, outs[4]);
  }
  return outs[0];
}

/** Names of the trainable tensors in a map (weights and biases; not u nor running statistics). */
export const trainableNames = (names: Iterable<string>): string[] => [...names].filter((n) => /\.(weight|bias)$/.test(n));
