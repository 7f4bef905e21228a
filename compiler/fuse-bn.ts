// BatchNorm split for fusion: Graph → Graph, run by fuse() before it merges elementwise nodes.
// Each `batchnorm` becomes y = (x − mean)·scale + β written as elementwise ops on per-channel
// values viewed as [C, 1, …, 1], which the fusion pass merges with what follows — the ReLU, the
// residual and conditioning adds, the block's final activation — into one kernel, so that a
// BatchNorm's output no longer goes through memory on its way to them.
//  - eval: mean = running_mean, scale = γ·rsqrt(rv + eps), computed in the same kernel: the
//    whole BatchNorm is a per-channel affine and costs no launch of its own;
//  - training: `batchnorm_stats` reduces x to the batch mean, invstd and scale = invstd·γ (and
//    updates the running statistics) first; the apply cannot run before the statistics exist.
//
// Runs after autodiff: `batchnorm_grad` nodes already read the batchnorm's mean and invstd
// outputs, which map to those of `batchnorm_stats`. A batchnorm_grad whose dy is a relu_grad
// read by nothing else (BatchNorm → ReLU → conv: the ReLU's output is the conv's input) takes
// the ReLU's output and dy instead (its optional mask input): the ReLU's gradient is then
// computed inside BatchNorm's backward passes and never stored. Its dx cannot fuse further: it
// needs the channel sums of dy first, and it goes into a convolution's gradients.

import { Graph, liveNodes, type Value } from './ir.ts';

export function splitBatchnorm(g: Graph): Graph {
  const live = liveNodes(g);
  const out = new Graph();
  const map = new Map<number, Value>();
  const at = (v: Value) => map.get(v.id)!;
  for (const gi of g.inputs) map.set(gi.value.id, out.input(gi.name, gi.value.shape, gi.kind));
  const readers = new Map<number, number>();
  for (const n of g.nodes) if (live.has(n.id)) for (const v of n.inputs) readers.set(v.id, (readers.get(v.id) ?? 0) + 1);
  for (const v of [...g.outputs.values(), ...g.updates.values()]) readers.set(v.id, (readers.get(v.id) ?? 0) + 1);
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    const ins = n.inputs.map(at);
    const dy = n.inputs[1]?.node;
    if (n.op === 'batchnorm_grad' && ins.length === 5 && dy?.op === 'relu_grad' && readers.get(n.inputs[1].id) === 1) {
      // relu_grad(y, d) = d where y > 0: y is the mask. The relu_grad node is left dead.
      const [x, , m, st, gamma] = ins;
      const [y, d] = dy.inputs.map(at);
      out.call('batchnorm_grad', [x, d, m, st, gamma, y], n.attrs).forEach((o, k) => map.set(n.outputs[k].id, o));
      continue;
    }
    if (n.op !== 'batchnorm' || n.dynamic) {
      out.call(n.op, ins, n.attrs, n.dynamic).forEach((o, k) => map.set(n.outputs[k].id, o));
      continue;
    }
    const [x, gamma, beta, rm, rv] = ins;
    const perChannel = (v: Value) => out.call('reshape', [v], { shape: [x.shape[1], ...x.shape.slice(2).map(() => 1)] })[0];
    const one = (op: string, a: Value[], attrs = {}) => out.call(op, a, attrs)[0];
    const train = (n.attrs.training as boolean | undefined) ?? true;
    let mean: Value, scale: Value, stats: Value[] = [];
    if (train) {
      stats = out.call('batchnorm_stats', [x, gamma, rm, rv], n.attrs);
      [mean, scale] = [perChannel(stats[0]), perChannel(stats[2])];
    } else {
      // γ/√(rv + eps), recomputed per element inside the fused kernel: cheaper than a launch.
      const eps = (n.attrs.eps as number | undefined) ?? 1e-5;
      [mean, scale] = [perChannel(rm), one('mul', [one('rsqrt', [one('scale', [perChannel(rv)], { a: 1, b: eps })]), perChannel(gamma)])];
    }
    const y = one('add', [one('mul', [one('sub', [x, mean]), scale]), perChannel(beta)]);
    map.set(n.outputs[0].id, y);
    // Training outputs mean, invstd, rm', rv' are stats 0, 1, 3, 4.
    if (train) [0, 1, 3, 4].forEach((k, i) => map.set(n.outputs[i + 1].id, stats[k]));
  }
  for (const [name, v] of g.outputs) out.outputs.set(name, at(v));
  for (const [name, v] of g.updates) out.updates.set(name, at(v));
  return out;
}
