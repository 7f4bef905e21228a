// What the compiler's parts share while they run a model: the failure that becomes a
// diagnostic (`fail`, with a code of dsl/diagnostics.ts CODES), scopes, the state of one graph
// build, and the small interface through which the layer and builtin libraries build graphs.

import { formatMessage, type CallSite, type DiagnosticCode, type MessageArgs, type Span } from '../dsl/diagnostics.ts';
import type { Graph, Value } from './ir.ts';
import type { HostScalar as HostScalarSpec, Init } from './model.ts';
import type { Env, HostScalar, LayerKind, GraphTensor, Val } from './values.ts';

/** A compile error on its way to becoming a diagnostic (with the chain of block call sites). */
export class Fail<C extends DiagnosticCode = DiagnosticCode> extends Error {
  constructor(
    readonly code: C,
    readonly span: Span,
    /** The holes of the code's message template. */
    readonly args: MessageArgs<C>,
    readonly notes: string[] = [],
  ) {
    super(formatMessage(code, args));
  }
}

/** Stops compiling with the diagnostic `code` at `span`, its message filled from `args`. */
export function fail<C extends DiagnosticCode>(code: C, span: Span, args: MessageArgs<C>, notes?: string[]): never {
  throw new Fail(code, span, args, notes);
}

/** For tests against reference implementations: feed the noise, read intermediate values and gradients. */
export interface DebugOptions {
  /** Each `randn` becomes an input (`noise0`, `noise1`, …) instead of a draw. */
  externalNoise?: boolean;
  /** Variables of the training step to add as outputs (e.g. mu, logvar, xhat). */
  expose?: string[];
  /** Add every parameter's gradient as an output `grad/<name>`. */
  gradients?: boolean;
  /** Add every data input's gradient (x, ref, …, external noise) as an output `grad/<input name>`. */
  inputGradients?: boolean;
}

/** One layer application, for `statcell compile`'s table. */
export interface LayerRecord {
  path: string;
  layer: LayerKind;
  output: readonly number[];
  params: number;
}

export interface Scope {
  env: Env;
  /** Instance path prefix: `enc.down0`. */
  path: string;
  calls: CallSite[];
  defaults: Map<string, Map<string, Val>>;
  /** Instance names used in this block body (SC2006). */
  names: Set<string>;
  block: string;
  /**
   * Set inside a block called without an instance name (`Head(f)`): its weights would have no
   * checkpoint name, so a layer there is SC2008 at this call (with the caller's chain).
   */
  unnamed?: { block: string; span: Span; calls: CallSite[] };
}

/** The state of one graph build: an entry point or the training step, for one batch size. */
export interface Build {
  g: Graph;
  training: boolean;
  batch: number;
  /** Current graph value of every parameter / state tensor touched so far. */
  tensors: Map<string, Value>;
  hostScalars: HostScalarSpec[];
  randomDraws: number;
  log: LayerRecord[];
  loss?: { value: Val; span: Span; optimizer: Map<string, Val> };
  /** Inputs created while building (external noise). */
  extraInputs: { name: string; shape: number[] }[];
  reports: { name: string; value: Val; span: Span }[];
  /** `evaluate` values, per cell. */
  evaluations: { name: string; value: Val; span: Span }[];
}

/** Thrown to unwind a body at `return`. */
export class Return {
  constructor(
    readonly value: Val,
    readonly span: Span,
  ) {}
}

/** What the layer and builtin libraries (compiler/layers.ts, compiler/builtins.ts) build graphs with. */
export interface BuildContext {
  /** The build in progress; null while the model's declarations and body run. */
  readonly build: Build | null;
  readonly debug: DebugOptions;
  /** Adds an op to the graph; its shape rule's errors are diagnostics at `span` (SC3003, SC3011). */
  op(name: string, inputs: Value[], attrs: Record<string, unknown>, span: Span, dynamic?: Parameters<Graph['call']>[3]): Value[];
  /** The graph value of a parameter or state tensor, declared on first use (SC3012 when its shape changes). */
  param(name: string, shape: number[], kind: 'param' | 'state', init: Init, owner: string, span: Span): Value;
  /** `v` as a tensor, or SC4013 naming `what` it is. */
  tensorOf(v: Val, span: Span, what: string): GraphTensor;
  /** A run-time scalar as a [1] graph input the runtime fills each step. */
  hostInput(h: HostScalar): Value;
  /** Counts `n` steps of compile-time work (list elements made), SC4018 at `span` past the build's budget. */
  spend(n: number, span: Span): void;
}
