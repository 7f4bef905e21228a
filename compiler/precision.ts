// --precision f16-storage: the numerics of storing activations in f16 buffers, on f32 buffers.
// Graph → Graph, run after autodiff and before fusion (compiler/compile.ts): every activation and
// activation gradient a node writes is followed by `round_f16` (kernels/elementwise/pointwise.ts),
// and every reader reads the rounded value — the forward pass, the backward pass's reads of
// forward values, the outputs. Computation inside kernels stays f32. Parameters, weight
// gradients, Adam's moments, BatchNorm's batch and running statistics and the loss terms stay
// f32 (the mixed-precision convention: f32 master weights).
//
// An activation is a tensor with a batch axis. Which tensors have one is read off the same graph
// built one batch larger: exactly the values that grew, by their number of values per cell. (A
// weight gradient of shape [2, C, k, k] at batch 2 keeps its shape; the elaboration is the same
// at every batch, and is checked to be.) Values with one number per cell ([B], [B, 1]: the loss
// terms per cell, the ELBO) are loss terms and stay f32.
//
// Rounding follows every tensor of the unfused graph, so which values are rounded does not depend
// on fusion, and the rounds fuse into their producers' or consumers' pointwise kernels. Views
// are not written by any kernel and are never rounded; ops that only move, select or zero values
// (relu, relu_grad, resampling) of rounded inputs write f16 values already and are not rounded
// again (this also keeps relu_grad foldable into BatchNorm's backward, compiler/fuse-bn.ts).

import { getOp } from '../kernels/registry.ts';
import { numel } from '../kernels/types.ts';
import { Graph, liveNodes, type Value } from './ir.ts';

export const PRECISIONS = ['f32', 'f16-storage'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** A precision named on the command line, or an error naming the flag and the values allowed. */
export function parsePrecision(value: string, flag = '--precision'): Precision {
  if ((PRECISIONS as readonly string[]).includes(value)) return value as Precision;
  throw new Error(`${flag} ${value}: expected ${PRECISIONS.join(' or ')}`);
}

/** Ops whose outputs are their inputs' values moved, selected or zeroed: f16 when those are. */
const SELECTING = new Set(['relu', 'relu_grad', 'broadcast_to', 'copy', 'subsample', 'subsample_grad', 'upsample']);
/** Outputs that are not numbers: the raw Philox stream bit-cast to f32. */
const NOT_NUMBERS = new Set(['random_bits']);

/**
 * `g` with every activation it computes rounded to binary16; `other` is the same graph built at
 * a batch one larger (which tells the values with a batch axis).
 */
export function storeActivationsInF16(g: Graph, other: Graph): Graph {
  if (g.nodes.length !== other.nodes.length || g.nodes.some((n, i) => n.op !== other.nodes[i].op || n.outputs.length !== other.nodes[i].outputs.length))
    throw new Error('precision: the graph is not built the same way at two batch sizes, so its activations cannot be told apart (internal error)');
  /** Values per cell of a node's output: how many more the graph one cell larger has (0: no batch axis). */
  const perCell = (nodeIndex: number, k: number) => numel(other.nodes[nodeIndex].outputs[k].shape) - numel(g.nodes[nodeIndex].outputs[k].shape);
  const live = liveNodes(g);
  const out = new Graph();
  const map = new Map<number, Value>();
  /** Values of `out` that hold binary16 values only. */
  const f16 = new Set<number>();
  for (const gi of g.inputs) map.set(gi.value.id, out.input(gi.name, gi.value.shape, gi.kind));
  g.nodes.forEach((n, i) => {
    if (!live.has(n.id)) return;
    const ins = n.inputs.map((v) => map.get(v.id)!);
    const outs = out.call(n.op, ins, n.attrs, n.dynamic);
    const view = getOp(n.op).view === true;
    outs.forEach((o, k) => {
      let v = o;
      if (view) {
        if (f16.has(ins[0].id)) f16.add(o.id);
      } else if (perCell(i, k) > 1 && !NOT_NUMBERS.has(n.op)) {
        if (!(SELECTING.has(n.op) && ins.every((x) => f16.has(x.id)))) v = out.call('round_f16', [o])[0];
        f16.add(v.id);
      }
      map.set(n.outputs[k].id, v);
    });
  });
  for (const [name, v] of g.outputs) out.outputs.set(name, map.get(v.id)!);
  for (const [name, v] of g.updates) out.updates.set(name, map.get(v.id)!);
  return out;
}
