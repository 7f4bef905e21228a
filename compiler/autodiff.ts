// Reverse-mode autodiff on the graph IR: walk the nodes backwards and apply each op's gradient
// rule through the graph itself, so gradients are more graph (as in tinygrad and jax-js).

import { getOp } from '../kernels/registry.ts';
import { fmtShape, numel } from '../kernels/types.ts';
import type { Graph, Value } from './ir.ts';

/**
 * Gradients of the scalar `loss` with respect to each of `wrt`; zeros where `loss` does not depend
 * on one. `seed` (loss-shaped) stands for d(output)/d(loss), 1 when absent: a loss scale S gives
 * every gradient times S.
 */
export function gradients(g: Graph, loss: Value, wrt: Value[], seed?: Value): Value[] {
  if (numel(loss.shape) !== 1) throw new Error(`autodiff: the loss must hold one value, not shape ${fmtShape(loss.shape)}`);
  const nodes = g.nodes.slice(); // the backward pass appends to g.nodes; walk only the forward part
  // Values that depend on something in `wrt`: only those need gradients.
  const live = new Set<number>(wrt.map((v) => v.id));
  for (const n of nodes) if (n.inputs.some((v) => live.has(v.id))) for (const o of n.outputs) live.add(o.id);

  const grad = new Map<number, Value>([[loss.id, seed ?? g.call('fill', [], { shape: loss.shape, value: 1 })[0]]]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const dOutputs = n.outputs.map((o) => grad.get(o.id) ?? null);
    if (dOutputs.every((d) => d === null) || !n.inputs.some((v) => live.has(v.id))) continue;
    const def = getOp(n.op);
    if (!def.grad) throw new Error(`autodiff: op '${n.op}' has no gradient rule, but the loss depends on it through a value that needs a gradient`);
    const dInputs = def.grad(g, { inputs: n.inputs, outputs: n.outputs, dOutputs, attrs: n.attrs });
    for (const [j, d] of dInputs.entries()) {
      const x = n.inputs[j];
      if (!d || !live.has(x.id)) continue;
      const prev = grad.get(x.id);
      grad.set(x.id, prev ? g.call('add', [prev, d])[0] : d);
    }
  }
  return wrt.map((v) => grad.get(v.id) ?? g.call('fill', [], { shape: v.shape, value: 0 })[0]);
}
