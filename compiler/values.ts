// The values the elaborator computes with. Compile-time values are plain JS (numbers, booleans,
// strings, null for `none`, arrays for lists and size packs); everything else is a class here.

import type * as A from '../dsl/ast.ts';
import type { Value } from './ir.ts';

/** A tensor: a value of the graph being built. */
export class GraphTensor {
  constructor(readonly v: Value) {}
  get shape(): readonly number[] {
    return this.v.shape;
  }
}

/** Several results (`return a, b`). */
export class Tuple {
  constructor(readonly items: Val[]) {}
}

/** A scalar known only at run time, computed on the host from the iteration (`iteration`, KL warm-up). */
export class HostScalar {
  constructor(readonly at: (iteration: number) => number) {}
}

export type LayerKind = 'conv' | 'conv_transpose' | 'linear' | 'batchnorm';

/** A layer or block given its compile-time parameters, waiting for tensors. */
export class Configured {
  constructor(
    readonly target: { kind: 'layer'; layer: LayerKind } | { kind: 'block'; decl: A.BlockDecl; file: string },
    readonly args: Map<string, Val>,
    /** Instance name, from a label (`conv1: conv(…)`) or the variable it is bound to. */
    public label: string | undefined,
    readonly span: A.Expr['span'],
  ) {}
}

/** A name that can be called: a block or layer (to configure) or a builtin function. */
export class Callee {
  constructor(readonly target: { kind: 'layer'; layer: LayerKind } | { kind: 'block'; decl: A.BlockDecl; file: string } | { kind: 'builtin'; name: string }) {}
}

export type Val = number | boolean | string | null | Val[] | GraphTensor | Tuple | HostScalar | Configured | Callee;

/** A lexical scope. */
export class Env {
  private vars = new Map<string, Val>();
  constructor(readonly parent?: Env) {}
  get(name: string): Val | undefined {
    return this.vars.has(name) ? this.vars.get(name) : this.parent?.get(name);
  }
  has(name: string): boolean {
    return this.vars.has(name) || !!this.parent?.has(name);
  }
  set(name: string, v: Val): void {
    this.vars.set(name, v);
  }
  /** Every name bound here and in the enclosing environments (for "did you mean"). */
  names(): string[] {
    return [...this.vars.keys(), ...(this.parent?.names() ?? [])];
  }
}

/**
 * A list's elements counted with those of the lists inside it, each time one appears, and its
 * depth: what comparing, adding, type-checking or printing it walks. A list shared by another
 * (`b = [a, a]`) is stored once, so doubling in a loop made lists of 2^30 elements in a few
 * bytes, and the first walk over one ran for a minute and ended in "Invalid string length".
 * Lists are never changed once made, so each is measured once.
 */
export function listSize(v: readonly Val[]): { elements: number; depth: number } {
  let m = measured.get(v);
  if (!m) {
    m = { elements: v.length, depth: 1 };
    for (const x of v)
      if (Array.isArray(x)) {
        const inner = listSize(x);
        m.elements += inner.elements;
        m.depth = Math.max(m.depth, inner.depth + 1);
      }
    measured.set(v, m);
  }
  return m;
}
const measured = new WeakMap<readonly Val[], { elements: number; depth: number }>();

export const typeName = (v: Val): string =>
  v === null ? 'none' : Array.isArray(v) ? 'list' : v instanceof GraphTensor ? `tensor [${v.shape.join(', ')}]` : v instanceof Tuple ? 'tuple' : v instanceof HostScalar ? 'run-time scalar' : v instanceof Configured ? 'layer or block instance' : v instanceof Callee ? 'block, layer or function' : typeof v;
