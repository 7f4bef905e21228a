// A small reverse-mode tape (micrograd/jax style) over any Emitter<T>: the float64 reference,
// a device's Eager emitter, or a symbolic one. The tape is itself an Emitter, so layers and
// gradient rules are written once. Forward calls run immediately on the inner emitter; calls
// that touch a tensor needing a gradient are recorded, and backward() walks them in reverse,
// applying each OpDef.grad rule and summing fan-in with the `add` op.
//
// In-place ops (BatchNorm's running statistics, sn_sigma's u): on a device their output shares
// the input's buffer, while the reference returns a fresh array. So that a program behaves the
// same on both, the tape treats an overwritten input as consumed: using it again afterwards, or
// overwriting a tensor that an already-recorded op may read in its backward pass, is an error
// rather than a silent difference. Overwritten tensors may not need gradients.

import { getOp } from '../kernels/registry.ts';
import type { Attrs, Emitter, Shape } from '../kernels/types.ts';
import { OpError, fmtShape } from '../kernels/types.ts';

interface Node<T> {
  op: string;
  inputs: T[];
  outputs: T[];
  attrs: Attrs;
}

export interface TapeOptions<T> {
  /**
   * The storage a tensor lives in, for alias tracking: views (reshape) and in-place outputs share
   * it. Default: the tensor object itself. For Eager tensors pass `(t) => t.buf`.
   */
  storage?: (t: T) => unknown;
}

export class Tape<T> implements Emitter<T> {
  private nodes: Node<T>[] = [];
  /** Tensors that need a gradient: watched leaves and outputs of recorded ops. */
  private tracked = new Set<T>();
  private leaves = new Set<T>();
  /** Storages read by recorded ops (their backward may read them again). */
  private readByRecorded = new Set<unknown>();
  /**
   * Alias tracking. A storage's version goes up when an op overwrites it in place; a tensor
   * remembers the version it was made at and is stale once its storage moved on. View and
   * in-place outputs are given their input's storage here, so the reference emitter (which
   * never shares memory) fails exactly where a device would compute with overwritten data.
   */
  private aliasOf = new Map<T, unknown>();
  private versions = new Map<unknown, { v: number; by: string }>();
  private madeAt = new Map<T, number>();
  private grads = new Map<T, T>();
  private baseStorage: (t: T) => unknown;

  constructor(readonly inner: Emitter<T>, opts: TapeOptions<T> = {}) {
    this.baseStorage = opts.storage ?? ((t) => t);
  }

  private storage(t: T): unknown {
    return this.aliasOf.has(t) ? this.aliasOf.get(t) : this.baseStorage(t);
  }

  private version(t: T): number {
    return this.versions.get(this.storage(t))?.v ?? 0;
  }

  /** Marks a leaf (a parameter or an input) as needing a gradient; returns it for chaining. */
  watch(t: T): T {
    this.tracked.add(t);
    this.leaves.add(t);
    return t;
  }

  needsGrad(t: T): boolean {
    return this.tracked.has(t);
  }

  shape(t: T): Shape {
    return this.inner.shape(t);
  }

  call(op: string, inputs: T[], attrs: Attrs = {}): T[] {
    const def = getOp(op);
    const inShapes = inputs.map((t) => this.inner.shape(t));
    for (const [i, t] of inputs.entries()) {
      if (!this.madeAt.has(t)) this.madeAt.set(t, this.version(t));
      if (this.madeAt.get(t)! < this.version(t))
        throw new OpError(op, `input ${i} was overwritten in place by ${this.versions.get(this.storage(t))!.by}; use that op's output instead`, inShapes);
    }
    const inplace = Object.entries(def.inplace ?? {}).map(([o, i]) => [Number(o), i] as const);
    for (const [, i] of inplace) {
      const t = inputs[i];
      if (this.tracked.has(t)) throw new OpError(op, `input ${i} is overwritten in place, so it cannot need a gradient`, inShapes, 'pass a tensor that is state (running statistics, u), not a watched parameter');
      if (this.readByRecorded.has(this.storage(t)))
        throw new OpError(op, `input ${i} is overwritten in place but an earlier differentiable op still needs its value for backward`, inShapes, 'copy it first or reorder the calls');
    }

    const outputs = this.inner.call(op, inputs, attrs);

    const inplaceIns = new Set(inplace.map(([, i]) => i));
    const inplaceOuts = new Set(inplace.map(([o]) => o));
    for (const [o, i] of inplace) {
      const st = this.storage(inputs[i]);
      const v = (this.versions.get(st)?.v ?? 0) + 1;
      this.versions.set(st, { v, by: `${op} (its output ${o})` });
      this.aliasOf.set(outputs[o], st);
      this.madeAt.set(outputs[o], v);
    }
    if (def.view) this.aliasOf.set(outputs[0], this.storage(inputs[0]));
    for (const t of outputs) if (!this.madeAt.has(t)) this.madeAt.set(t, this.version(t));

    if (inputs.some((t) => this.tracked.has(t))) {
      if (!def.grad) throw new OpError(op, 'has no gradient rule but an input needs a gradient', inShapes, 'do not watch the inputs of this op, or give the op a grad rule');
      this.nodes.push({ op, inputs, outputs, attrs });
      // Its backward may read these; the in-place pair is state the rule cannot rely on.
      inputs.forEach((t, i) => inplaceIns.has(i) || this.readByRecorded.add(this.storage(t)));
      outputs.forEach((t, k) => inplaceOuts.has(k) || this.readByRecorded.add(this.storage(t)));
      // An in-place output is state, never differentiated through.
      outputs.forEach((t, k) => inplaceOuts.has(k) || this.tracked.add(t));
    }
    return outputs;
  }

  /**
   * Reverse pass from `roots` with cotangents `seeds` (L = Σ_k Σ roots[k] ⊙ seeds[k]). Gradient
   * ops run on the inner emitter (no higher-order derivatives). Returns this tape for `grad()`.
   */
  backward(roots: T[], seeds: T[]): this {
    if (roots.length !== seeds.length) throw new Error(`backward: ${roots.length} roots but ${seeds.length} seeds`);
    this.grads = new Map();
    for (const [k, r] of roots.entries()) {
      const rs = this.inner.shape(r);
      const ss = this.inner.shape(seeds[k]);
      if (fmtShape(rs) !== fmtShape(ss)) throw new Error(`backward: root ${k} has shape ${fmtShape(rs)} but its seed ${fmtShape(ss)}`);
      if (!this.tracked.has(r)) throw new Error(`backward: root ${k} does not depend on any watched tensor`);
      this.accumulate(r, seeds[k], 'seed');
    }
    for (let n = this.nodes.length - 1; n >= 0; n--) {
      const node = this.nodes[n];
      const dOutputs = node.outputs.map((t) => this.grads.get(t) ?? null);
      if (dOutputs.every((d) => d === null)) continue;
      const def = getOp(node.op);
      const dInputs = def.grad!(this.inner, { inputs: node.inputs, outputs: node.outputs, dOutputs, attrs: node.attrs });
      for (const [i, t] of node.inputs.entries()) {
        const g = dInputs[i];
        if (g === null || g === undefined || !this.tracked.has(t)) continue;
        this.accumulate(t, g, node.op);
      }
      // Intermediate gradients are not kept (only leaves' are asked for): free the map entries.
      for (const t of node.outputs) if (!this.leaves.has(t)) this.grads.delete(t);
    }
    return this;
  }

  private accumulate(t: T, g: T, from: string): void {
    const ts = this.inner.shape(t);
    const gs = this.inner.shape(g);
    if (fmtShape(ts) !== fmtShape(gs)) throw new OpError(from, `gradient rule returned shape ${fmtShape(gs)} for an input of shape ${fmtShape(ts)}`, [ts, gs], 'the rule must reduce broadcast gradients back to the input shape');
    const prev = this.grads.get(t);
    this.grads.set(t, prev === undefined ? g : this.inner.call('add', [prev, g])[0]);
  }

  /** The gradient of a watched leaf after backward(); null if the loss does not depend on it. */
  grad(t: T): T | null {
    if (!this.leaves.has(t)) throw new Error('grad: ask for watched leaves only (intermediate gradients are freed during backward)');
    return this.grads.get(t) ?? null;
  }

  /** Forgets the recorded ops and gradients (watched leaves stay watched). */
  reset(): void {
    this.nodes = [];
    this.grads = new Map();
    this.readByRecorded.clear();
    this.tracked = new Set(this.leaves);
  }

  get recorded(): number {
    return this.nodes.length;
  }
}
