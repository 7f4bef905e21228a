// The graph IR: a static dataflow graph whose values all have known shapes. Building it goes
// through the same Emitter interface the ops' gradient rules use, so autodiff is just the
// rules applied to this emitter.

import { getOp } from '../kernels/registry.ts';
import type { Attrs, Emitter, Shape } from '../kernels/types.ts';
import type { DynamicAttrs, InputKind } from '../runtime/program.ts';

// Input kinds and run-time attributes are part of the Program contract (runtime/program.ts).
export type { DynamicAttrs, InputKind };

export interface Value {
  readonly id: number;
  readonly shape: Shape;
  /** The node that computes it; null for graph inputs. */
  readonly node: Node | null;
  readonly index: number;
}


export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: Value[];
  readonly attrs: Attrs;
  readonly outputs: Value[];
  readonly dynamic?: DynamicAttrs;
}

export interface GraphInput {
  name: string;
  kind: InputKind;
  value: Value;
}

export class Graph implements Emitter<Value> {
  readonly nodes: Node[] = [];
  readonly inputs: GraphInput[] = [];
  /** Named results a caller reads back. */
  readonly outputs = new Map<string, Value>();
  /** New values of state/param inputs, written back after each run (input name → value). */
  readonly updates = new Map<string, Value>();
  private nextId = 0;
  /** Inputs by name: a search of the list per input made a model of 10^4 layers take minutes. */
  private byName = new Map<string, GraphInput>();

  input(name: string, shape: Shape, kind: InputKind = 'input'): Value {
    if (this.byName.has(name)) throw new Error(`graph: input '${name}' declared twice`);
    const value: Value = { id: this.nextId++, shape: [...shape], node: null, index: 0 };
    const gi = { name, kind, value };
    this.inputs.push(gi);
    this.byName.set(name, gi);
    return value;
  }

  inputNamed(name: string): GraphInput | undefined {
    return this.byName.get(name);
  }

  call(op: string, inputs: Value[], attrs: Attrs = {}, dynamic?: DynamicAttrs): Value[] {
    const shapes = getOp(op).shape(inputs.map((v) => v.shape), attrs);
    const outputs: Value[] = [];
    const node: Node = { id: this.nodes.length, op, inputs: [...inputs], attrs, outputs, ...(dynamic ? { dynamic } : {}) };
    for (const [index, shape] of shapes.entries()) outputs.push({ id: this.nextId++, shape, node, index });
    this.nodes.push(node);
    return outputs;
  }

  shape(v: Value): Shape {
    return v.shape;
  }
}

/** Nodes that an output or an update depends on: what lowering keeps. */
export function liveNodes(g: Graph): Set<number> {
  const keep = new Set<number>();
  const stack = [...g.outputs.values(), ...g.updates.values()];
  while (stack.length) {
    const v = stack.pop()!;
    if (!v.node || keep.has(v.node.id)) continue;
    keep.add(v.node.id);
    stack.push(...v.node.inputs);
  }
  return keep;
}
