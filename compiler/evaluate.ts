// Evaluates a graph node by node on any emitter: on the float64 oracle it is the ground truth
// that compiled programs are checked against.

import type { Emitter } from '../kernels/types.ts';
import type { Graph } from './ir.ts';

export function evaluate<T>(g: Graph, em: Emitter<T>, feeds: Map<string, T>): { values: Map<number, T>; outputs: Map<string, T>; updates: Map<string, T> } {
  const values = new Map<number, T>();
  for (const gi of g.inputs) {
    const t = feeds.get(gi.name);
    if (t === undefined) throw new Error(`evaluate: no value fed for input '${gi.name}'`);
    values.set(gi.value.id, t);
  }
  for (const n of g.nodes) {
    const outs = em.call(n.op, n.inputs.map((v) => values.get(v.id)!), n.attrs);
    n.outputs.forEach((o, k) => values.set(o.id, outs[k]));
  }
  const pick = (m: Map<string, { id: number }>) => new Map([...m].map(([name, v]) => [name, values.get(v.id)!]));
  return { values, outputs: pick(g.outputs), updates: pick(g.updates) };
}
