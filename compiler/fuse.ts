// Elementwise fusion: Graph → Graph. Connected elementwise nodes (relu, exp, softplus, scale,
// add, sub, mul, div, relu_grad, softplus_grad) are merged into one `fused` node whose program
// computes them per element, so the values passed between them never go through memory and one
// launch replaces several. A value that something outside the group still reads (or a graph
// output or update) becomes one of the fused node's outputs. Runs after autodiff; everything
// else (views, convs, reductions, in-place ops) is copied as is, so the memory planner and the
// in-place rules see an ordinary graph. BatchNorm is split first (compiler/fuse-bn.ts) so that
// its apply fuses with the adds and the activation after it.
//
// Merging two groups along a producer → consumer edge is allowed when
//  - every value the merged group exports has the group's full shape (values inside it may be
//    smaller: a per-channel term is recomputed per element, which is cheaper than a launch),
//  - the merged group still binds at most MAX_BINDINGS buffers (WebGPU's guaranteed minimum of
//    storage buffers per shader stage),
//  - no path leaves the group and comes back into it (the result must stay a DAG).

import { FUSIBLE_OPS, type FusedAttrs, type FusedInstr } from '../kernels/fused/index.ts';
import { broadcastShapes } from '../kernels/elementwise/broadcast.ts';
import { fmtShape } from '../kernels/types.ts';
import { splitBatchnorm } from './fuse-bn.ts';
import { Graph, liveNodes, type Node, type Value } from './ir.ts';

export const MAX_BINDINGS = 8;
/**
 * Bounds that keep fusion near-linear on graphs far larger than a real model's (a compile-time
 * loop of 10^4 ops took minutes here): members of one group (the paper's models make groups of at
 * most 9), and groups visited by the cycle checks of one pass (their training steps visit up to
 * 1.9·10^5; 10^6 take about a second). Past either, a merge is not made: the graph runs as it
 * is, in more launches.
 */
export const MAX_GROUP = 64;
export const MAX_CYCLE_VISITS = 1_000_000;

export interface FuseStats {
  /** Fused nodes made, and the elementwise nodes they replace. */
  groups: number;
  fusedNodes: number;
}

export function fuse(source: Graph, stats?: FuseStats): Graph {
  const g = splitBatchnorm(source);
  const live = liveNodes(g);
  const nodes = g.nodes.filter((n) => live.has(n.id));
  const pos = new Map(nodes.map((n, i) => [n.id, i]));
  const consumers = new Map<number, Node[]>();
  for (const n of nodes)
    for (const v of n.inputs) {
      if (!consumers.has(v.id)) consumers.set(v.id, []);
      consumers.get(v.id)!.push(n);
    }
  const pinned = new Set([...g.outputs.values(), ...g.updates.values()].map((v) => v.id));
  const fusible = (n: Node) => FUSIBLE_OPS.has(n.op) && !n.dynamic;

  // Union-find over node ids; each root holds its group's members (in graph order) and shape.
  const parent = new Map<number, number>();
  const members = new Map<number, Node[]>();
  const shapeOf = new Map<number, number[]>();
  const find = (id: number): number => {
    let r = id;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(id, r);
    return r;
  };
  for (const n of nodes) {
    parent.set(n.id, n.id);
    members.set(n.id, [n]);
    shapeOf.set(n.id, [...n.outputs[0].shape]);
  }

  /** Values of `group` read outside it, and the external values it reads. */
  const boundary = (group: Node[]) => {
    const inside = new Set(group.map((n) => n.id));
    const exported: Value[] = [];
    const inputs = new Map<number, Value>();
    for (const n of group) {
      for (const v of n.inputs) if (!v.node || !inside.has(v.node.id)) inputs.set(v.id, v);
      for (const o of n.outputs) if (pinned.has(o.id) || (consumers.get(o.id) ?? []).some((c) => !inside.has(c.id))) exported.push(o);
    }
    return { exported, inputs: [...inputs.values()] };
  };

  /**
   * Would merging make a cycle: a path from the group through outside nodes back into it? The
   * walk is over groups, not nodes: entering another group reaches all of its members, since
   * that group becomes one launch too. Past the pass's budget of visits it answers yes.
   */
  let visits = 0;
  const cyclic = (group: Node[]): boolean => {
    const inside = new Set(group.map((n) => n.id));
    const seen = new Set<number>();
    const stack: number[] = []; // groups reached, to walk on from
    /** Reaches node c: true when it is inside again. */
    const reach = (c: Node): boolean => {
      if (inside.has(c.id)) return true;
      const r = find(c.id);
      if (!seen.has(r)) {
        seen.add(r);
        stack.push(r);
      }
      return false;
    };
    for (const n of group) for (const o of n.outputs) for (const c of consumers.get(o.id) ?? []) if (!inside.has(c.id)) reach(c);
    while (stack.length) {
      if (++visits > MAX_CYCLE_VISITS) return true;
      for (const m of members.get(stack.pop()!)!) for (const o of m.outputs) for (const c of consumers.get(o.id) ?? []) if (reach(c)) return true;
    }
    return false;
  };

  const tryMerge = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb || members.get(ra)!.length + members.get(rb)!.length > MAX_GROUP) return;
    let shape: number[];
    try {
      shape = broadcastShapes('fuse', shapeOf.get(ra)!, shapeOf.get(rb)!);
    } catch {
      return;
    }
    const group = [...members.get(ra)!, ...members.get(rb)!].sort((x, y) => pos.get(x.id)! - pos.get(y.id)!);
    const { exported, inputs } = boundary(group);
    if (exported.some((v) => fmtShape(v.shape) !== fmtShape(shape))) return;
    if (inputs.length + exported.length > MAX_BINDINGS) return;
    if (cyclic(group)) return;
    parent.set(rb, ra);
    members.set(ra, group);
    shapeOf.set(ra, shape);
    members.delete(rb);
  };

  for (const c of nodes) {
    if (!fusible(c)) continue;
    for (const v of c.inputs) if (v.node && live.has(v.node.id) && fusible(v.node)) tryMerge(v.node.id, c.id);
  }

  // Emit: each group at its last member's place in the original order, pulling in whatever it
  // needs first (an outside node may sit between two members in the original order).
  const out = new Graph();
  const map = new Map<number, Value>();
  for (const gi of g.inputs) map.set(gi.value.id, out.input(gi.name, gi.value.shape, gi.kind));
  const done = new Set<number>();
  const emit = (root: number): void => {
    if (done.has(root)) return;
    done.add(root);
    const group = members.get(root)!;
    const inside = new Set(group.map((n) => n.id));
    for (const n of group) for (const v of n.inputs) if (v.node && !inside.has(v.node.id)) emit(find(v.node.id));
    if (group.length === 1) {
      const [n] = group;
      const outs = out.call(n.op, n.inputs.map((v) => map.get(v.id)!), n.attrs, n.dynamic);
      n.outputs.forEach((o, k) => map.set(o.id, outs[k]));
      return;
    }
    const { exported, inputs } = boundary(group);
    const attrs = program(group, inputs, exported, shapeOf.get(root)!);
    const outs = out.call('fused', inputs.map((v) => map.get(v.id)!), attrs);
    exported.forEach((o, k) => map.set(o.id, outs[k]));
    if (stats) {
      stats.groups++;
      stats.fusedNodes += group.length;
    }
  };
  const last = new Map<number, number>();
  for (const n of nodes) last.set(find(n.id), n.id);
  for (const n of nodes) if (last.get(find(n.id)) === n.id) emit(find(n.id));

  for (const [name, v] of g.outputs) out.outputs.set(name, lookup(map, v, name));
  for (const [name, v] of g.updates) out.updates.set(name, lookup(map, v, name));
  return out;
}

function lookup(map: Map<number, Value>, v: Value, name: string): Value {
  const m = map.get(v.id);
  if (!m) throw new Error(`fuse: output '${name}' lost its value (internal error)`);
  return m;
}

/** The fused node's attrs: one instruction per external input (at first use) and per member. */
function program(group: Node[], inputs: Value[], exported: Value[], shape: number[]): FusedAttrs {
  const prog: FusedInstr[] = [];
  const at = new Map<number, number>();
  const operand = (v: Value): number => {
    let i = at.get(v.id);
    if (i === undefined) {
      i = prog.push(['input', inputs.findIndex((x) => x.id === v.id)]) - 1;
      at.set(v.id, i);
    }
    return i;
  };
  for (const n of group) {
    const args = n.inputs.map(operand);
    let ins: FusedInstr;
    if (n.op === 'scale') ins = ['scale', args[0], (n.attrs.a as number | undefined) ?? 1, (n.attrs.b as number | undefined) ?? 0];
    else if (args.length === 1) ins = [n.op as 'relu', args[0]];
    else ins = [n.op as 'add', args[0], args[1]];
    at.set(n.outputs[0].id, prog.push(ins) - 1);
  }
  return { shape, program: prog, outputs: exported.map((v) => at.get(v.id)!) };
}
