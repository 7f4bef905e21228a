// Lowering a graph to a static Program: dead-code elimination, a schedule (the graph's order),
// and a memory plan that reuses buffers by lifetime. In-place ops write into their input's
// buffer; where that input is still needed later, a copy is planned first.

import { getOp } from '../kernels/registry.ts';
import { numel } from '../kernels/types.ts';
import type { BufferSpec, Launch, Lifetime, Program } from '../runtime/program.ts';
import { liveNodes, type Graph, type Value } from './ir.ts';

export type { BufferSpec, Launch, Lifetime, Program } from '../runtime/program.ts';

/** Elements held by all buffers at once (the planned peak), and if every value had its own. */
export function memoryStats(p: Program): { planned: number; unplanned: number } {
  const planned = p.buffers.reduce((s, b) => s + b.elements, 0);
  const own = new Map<number, number>();
  for (const l of p.lifetimes) if (!l.view) own.set(l.value, l.elements);
  const inputs = p.buffers.filter((b) => b.kind !== 'temp').reduce((s, b) => s + b.elements, 0);
  const temps = [...own.values()].reduce((s, n) => s + n, 0);
  return { planned, unplanned: inputs + temps };
}

/**
 * Launches, and the bytes they read and write with each operand counted once per launch (a lower
 * bound of the memory traffic: what fusion saves is values that no longer go through memory).
 */
export function trafficStats(p: Program): { launches: number; bytes: number } {
  let elements = 0;
  for (const l of p.launches) {
    const outs = getOp(l.op).shape(l.inShapes, l.attrs);
    for (const s of [...l.inShapes, ...outs]) elements += numel(s);
  }
  return { launches: p.launches.length, bytes: elements * 4 };
}

export function lower(g: Graph): Program {
  const live = liveNodes(g);
  const order = g.nodes.filter((n) => live.has(n.id));
  const end = order.length;
  // Launch index after which each value is dead (graph outputs and updates live to the end).
  const death = new Map<number, number>();
  order.forEach((n, i) => {
    for (const o of n.outputs) death.set(o.id, i);
    for (const v of n.inputs) death.set(v.id, i);
  });
  for (const v of [...g.outputs.values(), ...g.updates.values()]) death.set(v.id, end);

  const buffers: BufferSpec[] = [];
  const inputs = new Map<string, number>();
  const bufOf = new Map<number, number>();
  for (const gi of g.inputs) {
    const b = buffers.push({ elements: numel(gi.value.shape), kind: gi.kind, name: gi.name }) - 1;
    bufOf.set(gi.value.id, b);
    inputs.set(gi.name, b);
  }
  const updateOf = new Map<number, string>([...g.updates].map(([name, v]) => [v.id, name]));

  const launches: Launch[] = [];
  const lifetimes: Lifetime[] = [];
  const alive = new Map<number, { v: Value; from: number; view?: boolean }>();
  // Indexes that keep each launch's work independent of the graph's size (a scan of every live
  // value per launch, and of every free buffer per allocation, made lowering quadratic: minutes
  // for a graph of 10^5 ops): the live values on each buffer, those dying at each launch (in the
  // order they were bound), and the free temp buffers by size (sizes sorted, each size's
  // buffers in the order they were freed).
  const onBuffer = new Map<number, Set<Value>>();
  const dying = new Map<number, Value[]>();
  const sizes: number[] = [];
  const freeOf = new Map<number, { bs: number[]; head: number }>();
  /** The index of the first size ≥ `elements`. */
  const sizeIndex = (elements: number): number => {
    let lo = 0;
    let hi = sizes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sizes[mid] < elements) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // The smallest free buffer that fits, the first freed of equal ones.
  const take = (elements: number): number => {
    const i = sizeIndex(elements);
    if (i === sizes.length) return buffers.push({ elements, kind: 'temp' }) - 1;
    const q = freeOf.get(sizes[i])!;
    const b = q.bs[q.head++];
    if (q.head === q.bs.length) {
      freeOf.delete(sizes[i]);
      sizes.splice(i, 1);
    }
    return b;
  };
  const free = (b: number) => {
    const elements = buffers[b].elements;
    if (!freeOf.has(elements)) {
      freeOf.set(elements, { bs: [], head: 0 });
      sizes.splice(sizeIndex(elements), 0, elements);
    }
    freeOf.get(elements)!.bs.push(b);
  };
  const bind = (v: Value, b: number, at: number, view = false) => {
    bufOf.set(v.id, b);
    alive.set(v.id, { v, from: at, ...(view ? { view } : {}) });
    if (!onBuffer.has(b)) onBuffer.set(b, new Set());
    onBuffer.get(b)!.add(v);
    const d = death.get(v.id)!;
    if (d < end) {
      if (!dying.has(d)) dying.set(d, []);
      dying.get(d)!.push(v);
    }
  };
  /** Does a value other than `except` still need buffer `b` after launch `at`? */
  const neededAfter = (b: number, at: number, except: Value): boolean => {
    for (const v of onBuffer.get(b) ?? []) if (v.id !== except.id && death.get(v.id)! > at) return true;
    return death.get(except.id)! > at;
  };

  order.forEach((n, at) => {
    const def = getOp(n.op);
    const ins = n.inputs.map((v) => bufOf.get(v.id)!);
    if (def.view) bind(n.outputs[0], ins[0], at, true);
    else {
      const outs = n.outputs.map((o, k) => {
        const j = def.inplace?.[k];
        if (j === undefined) return take(numel(o.shape));
        const b = ins[j];
        const newValueOf = updateOf.get(o.id);
        // Overwrite the input only when nothing reads it afterwards and, for a graph input, when
        // this output is that input's new value; otherwise work on a copy.
        const inPlace = !neededAfter(b, at, n.inputs[j]) && (buffers[b].kind === 'temp' || (newValueOf !== undefined && inputs.get(newValueOf) === b));
        if (inPlace) return b;
        const c = take(numel(n.inputs[j].shape));
        launches.push({ op: 'copy', attrs: {}, inShapes: [n.inputs[j].shape], inputs: [b], outputs: [c] });
        ins[j] = c;
        return c;
      });
      n.outputs.forEach((o, k) => bind(o, outs[k], at));
      launches.push({ op: n.op, attrs: n.attrs, inShapes: n.inputs.map((v) => v.shape), inputs: ins, outputs: outs, ...(n.dynamic ? { dynamic: n.dynamic } : {}) });
    }
    // Retire what died here; a temp buffer returns to the pool when its last value is gone.
    for (const { id } of dying.get(at) ?? []) {
      const { v, from, view } = alive.get(id)!;
      alive.delete(id);
      const b = bufOf.get(id)!;
      const users = onBuffer.get(b)!;
      users.delete(v);
      lifetimes.push({ value: id, buffer: b, from, to: at, elements: numel(v.shape), ...(view ? { view } : {}) });
      if (buffers[b].kind === 'temp' && users.size === 0) free(b);
    }
  });
  for (const [id, { v, from, view }] of alive) lifetimes.push({ value: id, buffer: bufOf.get(id)!, from, to: end, elements: numel(v.shape), ...(view ? { view } : {}) });

  // New values of state and parameters that did not land in place are copied back at the end.
  for (const [name, v] of g.updates) {
    const dst = inputs.get(name);
    if (dst === undefined) throw new Error(`graph: update of unknown input '${name}'`);
    const src = bufOf.get(v.id)!;
    if (src !== dst) launches.push({ op: 'copy', attrs: {}, inShapes: [v.shape], inputs: [src], outputs: [dst] });
  }
  const outputs = new Map([...g.outputs].map(([name, v]) => [name, { buffer: bufOf.get(v.id)!, shape: v.shape }]));
  return { buffers, launches, inputs, outputs, lifetimes };
}
