// The layer library: each layer's compile-time parameters and defaults, and its lowering to
// graph IR with its parameter and state tensors (named after the instance path: `<path>.weight`,
// `.bias`, `.sn_u`, BatchNorm's `.running_mean` / `.running_var`). Layers state only their
// output sizes; input channels come from the input's shape.

import type { Span } from '../dsl/diagnostics.ts';
import { OpError, numel } from '../kernels/types.ts';
import { fail, type BuildContext } from './context.ts';
import type { Value } from './ir.ts';
import type { Init } from './model.ts';
import { GraphTensor, type LayerKind, type Val } from './values.ts';

export interface LayerDef {
  /** How it is configured, for docs: `conv(cout, k, stride = 1, …)`. */
  signature: string;
  /** Its compile-time parameters, in positional order. */
  params: string[];
  defaults: Record<string, Val>;
}

export const LAYERS: Record<LayerKind, LayerDef> = {
  conv: {
    signature: 'conv(cout, k, stride = 1, pad = 0, bias = true, sn = false)',
    params: ['cout', 'k', 'stride', 'pad', 'bias', 'sn'],
    defaults: { stride: 1, pad: 0, bias: true, sn: false },
  },
  conv_transpose: {
    signature: 'conv_transpose(cout, k, stride = 1, pad = 0, output_padding = 0, bias = true, sn = false)',
    params: ['cout', 'k', 'stride', 'pad', 'output_padding', 'bias', 'sn'],
    defaults: { stride: 1, pad: 0, output_padding: 0, bias: true, sn: false },
  },
  linear: { signature: 'linear(out, bias = true, sn = false)', params: ['out', 'bias', 'sn'], defaults: { bias: true, sn: false } },
  batchnorm: { signature: 'batchnorm(eps = 1e-5, momentum = 0.1)', params: ['eps', 'momentum'], defaults: { eps: 1e-5, momentum: 0.1 } },
};

export const LAYER_NAMES = Object.keys(LAYERS) as LayerKind[];

export const isLayer = (name: string): name is LayerKind => Object.hasOwn(LAYERS, name);

/** A layer's attributes: its defaults, then `defaults` declarations in scope, then the call's own. */
export function layerAttributes(layer: LayerKind, inScope: Map<string, Val> | undefined, given: Map<string, Val>): Map<string, Val> {
  const a = new Map<string, Val>(Object.entries(LAYERS[layer].defaults));
  for (const [k, v] of inScope ?? []) a.set(k, v);
  for (const [k, v] of given) a.set(k, v);
  return a;
}

/** Where a layer instance is: its parameters' name prefix, its owner block instance, and the spans errors point at. */
export interface LayerSite {
  /** `enc.down0.conv1`. */
  path: string;
  /** The block instance its parameters count towards (`enc.down0`), or the layer itself at model level. */
  owner: string;
  /** The call that applies it (shape errors). */
  span: Span;
  /** Where it is configured (attribute errors). */
  configSpan: Span;
}

/** Lowers one application of a layer to `x`, declaring its tensors and logging it for `statcell compile`. */
export function lowerLayer(cx: BuildContext, layer: LayerKind, a: Map<string, Val>, x: GraphTensor, site: LayerSite): GraphTensor {
  const { path, owner, span, configSpan } = site;
  const int = (k: string, min = 0): number => {
    const v = a.get(k);
    if (!Number.isInteger(v) || (v as number) < min) {
      if (v === undefined) fail('SC2005', configSpan, { owner: `layer ${layer}`, name: k });
      fail('SC4004', configSpan, { layer, attribute: k, min, got: JSON.stringify(v) });
    }
    return v as number;
  };
  const b = cx.build!;
  const g = b.g;
  const before = b.g.inputs.length;
  const xs = x.shape;
  const param = (name: string, shape: number[], kind: 'param' | 'state', init: Init) => cx.param(name, shape, kind, init, owner, span);
  const weightOf = (shape: number[], init: Init, sn: boolean): Value => {
    const w = param(`${path}.weight`, shape, 'param', init);
    if (!sn) return w;
    const uName = `${path}.sn_u`;
    param(uName, [shape[0]], 'state', { kind: 'unit_vector' });
    const [sigma, u2] = g.call('sn_sigma', [w, b.tensors.get(uName)!], { eps: 1e-12 });
    // As PyTorch's spectral_norm: the power iteration's vector is kept only in training, so an
    // entry (encode, decode, generate, evaluate) leaves the model's state as it found it.
    if (b.training) b.tensors.set(uName, u2);
    return g.call('div', [w, sigma])[0];
  };
  let y: Value;
  try {
    switch (layer) {
      case 'conv':
      case 'conv_transpose': {
        if (xs.length < 3) fail('SC3002', span, { layer, takes: '[B, C, ...spatial]', shape: xs });
        const cout = int('cout', 1);
        const k = int('k', 1);
        const d = xs.length - 2;
        const kvol = k ** d;
        const wShape = layer === 'conv' ? [cout, xs[1], ...Array(d).fill(k)] : [xs[1], cout, ...Array(d).fill(k)];
        const fanIn = (layer === 'conv' ? xs[1] : cout) * kvol;
        const w = weightOf(wShape, { kind: 'normal', mean: 0, std: 0.02 }, a.get('sn') === true);
        const ins = [x.v, w];
        if (a.get('bias') !== false) ins.push(param(`${path}.bias`, [cout], 'param', { kind: 'uniform', low: -1 / Math.sqrt(fanIn), high: 1 / Math.sqrt(fanIn) }));
        const attrs: Record<string, unknown> = { stride: int('stride', 1), pad: int('pad') };
        if (layer === 'conv_transpose') attrs.outputPadding = int('output_padding');
        [y] = g.call(layer, ins, attrs);
        break;
      }
      case 'linear': {
        if (xs.length !== 2) fail('SC3002', span, { layer, takes: '[B, N]', shape: xs }, ['flatten it first']);
        const out = int('out', 1);
        const bound = 1 / Math.sqrt(xs[1]);
        const w = weightOf([out, xs[1]], { kind: 'uniform', low: -bound, high: bound }, a.get('sn') === true);
        const ins = [x.v, w];
        if (a.get('bias') !== false) ins.push(param(`${path}.bias`, [out], 'param', { kind: 'uniform', low: -bound, high: bound }));
        [y] = g.call('matmul', ins, { transB: true });
        break;
      }
      case 'batchnorm': {
        const C = xs[1];
        const gamma = param(`${path}.weight`, [C], 'param', { kind: 'normal', mean: 1, std: 0.02 });
        const beta = param(`${path}.bias`, [C], 'param', { kind: 'constant', value: 0 });
        param(`${path}.running_mean`, [C], 'state', { kind: 'constant', value: 0 });
        param(`${path}.running_var`, [C], 'state', { kind: 'constant', value: 1 });
        const eps = a.get('eps');
        const momentum = a.get('momentum');
        if (typeof eps !== 'number' || typeof momentum !== 'number') fail('SC4004', configSpan, { layer: 'batchnorm', numbers: 'eps and momentum' });
        const outs = g.call('batchnorm', [x.v, gamma, beta, b.tensors.get(`${path}.running_mean`)!, b.tensors.get(`${path}.running_var`)!], { training: b.training, eps, momentum });
        if (b.training) {
          b.tensors.set(`${path}.running_mean`, outs[3]);
          b.tensors.set(`${path}.running_var`, outs[4]);
        }
        y = outs[0];
        break;
      }
    }
  } catch (e) {
    if (e instanceof OpError) fail('SC3010', span, { reason: e.message });
    throw e;
  }
  const params = b.g.inputs.slice(before).filter((i) => i.kind === 'param').reduce((s, i) => s + numel(i.value.shape), 0);
  b.log.push({ path, layer, output: y.shape, params });
  return new GraphTensor(y);
}
