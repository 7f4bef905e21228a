// The training step: the `train` body run in training mode for one batch size, its loss
// differentiated on the IR and followed by one Adam node per parameter; or, for micro-batches,
// each gradient / k added to a `grad.<name>` state tensor that the separate Adam program
// (`buildApply`) consumes and zeroes. The same body in evaluation mode outputs its `evaluate`
// values (`buildEvaluate`).
//
// Loss scaling (session/loss-scale.ts) rides on the accumulating form: its loss gradient is seeded
// with the run-time input LOSS_SCALE (S) instead of 1, and each gradient enters its accumulator
// times the run-time input GRAD_SCALE (1 / (k·S)), so the accumulators hold true gradients and
// `buildGradientCheck` can tell whether any overflowed before Adam runs. The runtime feeds S = 1
// without loss scaling, which gives the same bits as before: with S a power of two, scaling is exact.

import type * as A from '../dsl/ast.ts';
import type { Span } from '../dsl/diagnostics.ts';
import { numel } from '../kernels/types.ts';
import { gradients } from './autodiff.ts';
import { fail, type Build, type DebugOptions, type Scope } from './context.ts';
import { Graph, type Value } from './ir.ts';
import type { EntryGraph, TensorSpec, TrainGraph } from './model.ts';
import type { GraphTensor, Val } from './values.ts';

type Optimizer = TrainGraph['optimizer'];

/** The accumulating step's run-time inputs: the loss gradient's seed S, and 1 / (k·S). */
export const LOSS_SCALE = '$loss_scale';
export const GRAD_SCALE = '$grad_scale';
/** The gradient check's output: the sum of every accumulated gradient, not finite when one overflowed. */
export const GRADIENT_SUM = 'gradient_sum';

/** What the step builders run the body with (compiler/elaborate.ts provides it). */
export interface StepContext {
  /** The model as requested (`Reference2D`), for messages. */
  readonly name: string;
  readonly debug: DebugOptions;
  /** Every parameter and state tensor met so far, by checkpoint name. */
  readonly specs: ReadonlyMap<string, TensorSpec>;
  /**
   * Runs `f` on a fresh build of `batch` whose step parameters are bound as graph inputs;
   * failures become diagnostics.
   */
  build<R>(batch: number, training: boolean, params: A.TensorParam[], f: (b: Build, scope: Scope, inputs: { name: string; shape: number[] }[]) => R): R;
  execBody(body: A.Stmt[], scope: Scope): void;
  tensorOf(v: Val, span: Span, what: string): GraphTensor;
  /** Writes changed state tensors (BatchNorm statistics, spectral norm's u) back as updates. */
  finishState(b: Build): void;
}

/** What a training-step build leaves for later builds: the `evaluate` names and the optimiser (for `buildApply`). */
export interface StepRecord {
  evaluation?: string[];
  optimizer?: Optimizer;
}

/**
 * The training step. With `accumulate` = k it is one of k micro-batches: instead of Adam, each
 * parameter's gradient / k is added to a state tensor `grad.<name>` that `buildApply` consumes.
 */
export function buildTrain(cx: StepContext, t: A.TrainStmt, record: StepRecord, batch: number, accumulate?: number): TrainGraph {
  return cx.build(batch, true, t.params, (b, scope, inputs) => {
    cx.execBody(t.body, scope);
    record.evaluation = b.evaluations.length ? b.evaluations.map((e) => e.name) : undefined;
    if (!b.loss) fail('SC1113', t.span, { unreached: true });
    const loss = cx.tensorOf(b.loss.value, b.loss.span, 'the loss');
    if (numel(loss.shape) !== 1) fail('SC3008', b.loss.span, { shape: loss.shape }, ['sum or average it']);
    const opt = b.loss.optimizer;
    // Each argument in the range Adam is defined on (a beta of 1 divides by zero, an infinite lr
    // from `--set lr=1e309` makes every weight NaN): checked here, at the minimize.
    const num = (k: string, d: number, ok: (v: number) => boolean, range: string) => {
      const v = opt.get(k) ?? d;
      if (typeof v !== 'number') fail('SC4014', b.loss!.span, { problem: 'not a number', argument: k });
      if (!ok(v)) fail('SC4014', b.loss!.span, { problem: 'range', argument: k, range, got: v });
      return v;
    };
    const beta = (v: number) => v >= 0 && v < 1;
    const optimizer = {
      kind: 'adam' as const,
      lr: num('lr', 2e-4, (v) => v >= 0 && Number.isFinite(v), '[0, ∞)'),
      beta1: num('beta1', 0.9, beta, '[0, 1)'),
      beta2: num('beta2', 0.999, beta, '[0, 1)'),
      eps: num('eps', 1e-8, (v) => v > 0 && Number.isFinite(v), '(0, ∞)'),
    };
    const params = [...cx.specs.values()].filter((s) => s.kind === 'param' && b.tensors.has(s.name));
    record.optimizer = optimizer;
    const dataInputs = cx.debug.inputGradients ? [...inputs, ...b.extraInputs] : [];
    const seed = accumulate ? b.g.input(LOSS_SCALE, loss.shape) : undefined;
    const gradScale = accumulate ? b.g.input(GRAD_SCALE, [1]) : undefined;
    const grads = gradients(b.g, loss.v, [...params, ...dataInputs].map((p) => b.g.inputNamed(p.name)!.value), seed);
    params.forEach((p, i) => {
      if (gradScale) {
        const acc = b.g.input(`grad.${p.name}`, p.shape, 'state');
        const [part] = b.g.call('mul', [grads[i], gradScale]);
        b.g.updates.set(`grad.${p.name}`, b.g.call('add', [acc, part])[0]);
        return;
      }
      adamUpdate(b.g, p, grads[i], optimizer);
    });
    if (cx.debug.gradients) params.forEach((p, i) => b.g.outputs.set(`grad/${p.name}`, grads[i]));
    dataInputs.forEach((d, i) => b.g.outputs.set(`grad/${d.name}`, grads[params.length + i]));
    for (const name of cx.debug.expose ?? []) b.g.outputs.set(name, cx.tensorOf(scope.env.get(name) ?? null, t.span, `exposed variable ${name}`).v);
    const metrics: string[] = [];
    for (const r of b.reports) {
      const v = cx.tensorOf(r.value, r.span, `reported value ${r.name}`);
      // A metric is one number per step: the trainer logs a tensor's first element, which would pass for it.
      if (numel(v.shape) !== 1) fail('SC3008', r.span, { shape: v.shape, reported: r.name }, [`report its mean (mean(${r.name})) or sum; per-cell values belong in \`evaluate\``]);
      b.g.outputs.set(r.name, v.v);
      metrics.push(r.name);
    }
    cx.finishState(b);
    return { graph: b.g, inputs: [...inputs, ...b.extraInputs], outputs: [...b.g.outputs.keys()], metrics, hostScalars: b.hostScalars, optimizer, layers: b.log };
  });
}

/** One Adam step of parameter `p` on `grad`, with its moment state tensors `adam.m.<name>`, `adam.v.<name>`. */
function adamUpdate(g: Graph, p: TensorSpec, grad: Value, o: Optimizer): void {
  const [m, v] = ['m', 'v'].map((w) => g.input(`adam.${w}.${p.name}`, p.shape, 'state'));
  const [p2, m2, v2] = g.call('adam', [g.inputNamed(p.name)?.value ?? g.input(p.name, p.shape, 'param'), grad, m, v], { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, step: 1 }, { step: (a) => (a.iteration ?? 0) + 1 });
  g.updates.set(p.name, p2).set(`adam.m.${p.name}`, m2).set(`adam.v.${p.name}`, v2);
}

/** After k accumulating micro-batches: Adam on the summed gradients, which are then zeroed. */
export function buildApply(specs: ReadonlyMap<string, TensorSpec>, optimizer: Optimizer): EntryGraph {
  const g = new Graph();
  for (const p of specs.values()) {
    if (p.kind !== 'param') continue;
    const acc = g.input(`grad.${p.name}`, p.shape, 'state');
    adamUpdate(g, p, acc, optimizer);
    g.updates.set(`grad.${p.name}`, g.call('fill', [], { shape: [...p.shape], value: 0 })[0]);
  }
  return { graph: g, inputs: [], outputs: [], hostScalars: [] };
}

/**
 * One number that is finite exactly when every accumulated gradient is: the sum of them all (an
 * Inf or NaN anywhere survives every sum; a finite sum beyond f32's range reads as overflow too).
 */
export function buildGradientCheck(specs: ReadonlyMap<string, TensorSpec>): EntryGraph {
  const g = new Graph();
  let sum: Value | undefined;
  for (const p of specs.values()) {
    if (p.kind !== 'param') continue;
    const [s] = g.call('reduce_sum', [g.input(`grad.${p.name}`, p.shape, 'state')], { keepdims: false });
    sum = sum ? g.call('add', [sum, s])[0] : s;
  }
  if (!sum) throw new Error('gradient check: the model has no parameters');
  g.outputs.set(GRADIENT_SUM, sum);
  return { graph: g, inputs: [], outputs: [GRADIENT_SUM], hostScalars: [] };
}

/** The training step in evaluation mode, outputting its `evaluate` values per cell. */
export function buildEvaluate(cx: StepContext, t: A.TrainStmt, batch: number): EntryGraph {
  return cx.build(batch, false, t.params, (b, scope, inputs) => {
    cx.execBody(t.body, scope);
    if (!b.evaluations.length) fail('SC5001', t.span, { need: 'evaluate', model: cx.name }, ['add `evaluate elbo, recon, kl` with per-cell ([B]) values, the ELBO first']);
    for (const e of b.evaluations) b.g.outputs.set(e.name, cx.tensorOf(e.value, e.span, `evaluated value ${e.name}`).v);
    cx.finishState(b);
    return { graph: b.g, inputs: [...inputs, ...b.extraInputs], outputs: b.evaluations.map((e) => e.name), hostScalars: b.hostScalars };
  });
}
