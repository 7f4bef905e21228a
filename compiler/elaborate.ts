// The compiler's middle, its entry: the model of a loaded program, its parameters resolved
// (template defaults, instance overrides, `--set`), its body run once at compile time, and then
// on request the graph IR of an entry point or of the training step for one batch size. The work
// is split by concern: compiler/interpret.ts runs the language (statements, expressions, block
// inlining), compiler/shapes.ts checks block boundaries, compiler/layers.ts and
// compiler/builtins.ts are the layer and function libraries, compiler/roles.ts the roles tools
// rely on, compiler/train-step.ts the training step. Every error is a diagnostic of
// dsl/diagnostics.ts CODES, with the chain of block call sites.

import { checkElements } from './limits.ts';
import type * as A from '../dsl/ast.ts';
import { commandLineSpan, DiagnosticError, report, type DiagnosticCode, type MessageArgs, type Span } from '../dsl/diagnostics.ts';
import type { LoadResult } from '../dsl/load.ts';
import { didYouMean } from '../dsl/suggest.ts';
import { fail, Return, type Build, type DebugOptions, type Scope } from './context.ts';
import { Interpreter } from './interpret.ts';
import type { EntryGraph, EntryRoles, InputRole, ModelInput, TensorSpec, TrainGraph } from './model.ts';
import { describeInput, entryRoles, inputRole } from './roles.ts';
import { checkShapes, evalShape } from './shapes.ts';
import { buildApply, buildEvaluate, buildGradientCheck, buildTrain, type StepContext, type StepRecord } from './train-step.ts';
import { checkType, setText } from './typecheck.ts';
import { Env, GraphTensor, Tuple, type Val } from './values.ts';

export type { DebugOptions, LayerRecord } from './context.ts';
export { DATA_CHANNELS } from './roles.ts';

export class Elaborator {
  private readonly ip: Interpreter;
  /** Every parameter and state tensor met in any build, by checkpoint name. */
  readonly specs: Map<string, TensorSpec>;
  readonly blocks: Map<string, { decl: A.BlockDecl; file: string }>;
  readonly models = new Map<string, { decl: A.ModelDecl | A.ModelInstance; file: string }>();
  readonly model: A.ModelDecl;
  /** The model as requested: an instance (`Reference2D`) or the template itself. */
  readonly name: string;
  /** The model's parameters after defaults, instance defaults and overrides. */
  readonly params: Map<string, Val>;
  private modelScope!: Scope;
  private entries = new Map<string, A.EntryStmt>();
  private train?: A.TrainStmt;
  /** The inputs whose guards hold. */
  private inputs = new Map<string, A.InputStmt>();
  /** Every input the model declares, whatever its guard: what a bare entry parameter may name. */
  private declaredInputs = new Set<string>();
  private inputRoles = new Map<string, InputRole>();
  /** The `evaluate` names and optimiser of the last training step built. */
  private step: StepRecord = {};
  private steps!: StepContext;

  constructor(
    readonly load: LoadResult,
    modelName: string | undefined,
    overrides: Record<string, unknown>,
    readonly debug: DebugOptions = {},
  ) {
    const ip = (this.ip = new Interpreter(load, debug));
    this.specs = ip.specs;
    this.blocks = ip.blocks;
    this.params = ip.params;
    try {
      for (const [file, prog] of load.programs) {
        const defs = new Map<string, Map<string, Val>>();
        ip.fileDefaults.set(file, defs);
        for (const d of prog.decls) {
          if (d.kind === 'Block') ip.blocks.set(d.name.name, { decl: d, file });
          else if (d.kind === 'Model' || d.kind === 'ModelInstance') this.models.set(d.name.name, { decl: d, file });
          else if (d.kind === 'Const') ip.globals.set(d.name.name, ip.evalConst(d.value));
          else if (d.kind === 'Defaults') ip.addDefaults(defs, d, ip.globals);
        }
      }
      const entrySpan = load.programs.get(load.entry)!.span;
      const entryModels = load.programs.get(load.entry)!.decls.filter((d) => d.kind === 'Model' || d.kind === 'ModelInstance');
      const name = modelName ?? entryModels[entryModels.length - 1]?.name.name;
      if (!name) fail('SC2013', entrySpan, { file: load.entry });
      if (!this.models.has(name)) fail('SC2012', entrySpan, { name, models: [...this.models.keys()] });
      const { model, values, file } = this.resolveModel(name, overrides);
      this.model = model;
      this.name = name;
      this.steps = {
        name,
        debug,
        specs: ip.specs,
        build: (batch, training, params, f) => this.withBuild(batch, training, (b, scope) => f(b, scope, this.bindParams(params, scope, b))),
        execBody: (body, scope) => ip.execBody(body, scope),
        tensorOf: (v, span, what) => ip.tensorOf(v, span, what),
        finishState: (b) => this.finishState(b),
      };
      const env = new Env(ip.globals);
      for (const [k, v] of values) {
        env.set(k, v);
        this.params.set(k, v);
      }
      this.modelScope = { env, path: '', calls: [], defaults: new Map(ip.fileDefaults.get(file)), names: new Set(), block: model.name.name };
      this.execModelBody(model.body, this.modelScope);
    } catch (e) {
      throw ip.asDiagnostic(e);
    }
  }

  get hasTrain(): boolean {
    return !!this.train;
  }

  get entryNames(): string[] {
    return [...this.entries.keys()];
  }

  /** The names of the training step's `evaluate` values (found on its last build). */
  get evaluation(): string[] | undefined {
    return this.step.evaluation;
  }

  /** The model's parameters after defaults, instance defaults and overrides (SC2004, SC4001). */
  private resolveModel(name: string, overrides: Record<string, unknown>): { model: A.ModelDecl; values: Map<string, Val>; file: string } {
    const chain: (A.ModelInstance & { file: string })[] = [];
    let cur = this.models.get(name)!;
    while (cur.decl.kind === 'ModelInstance') {
      // `model N = N(a = 1)`, or a longer loop of instances, would never reach a template.
      const decl = cur.decl;
      if (chain.some((c) => c.name.name === decl.name.name))
        fail('SC4019', decl.template.span, { cycle: [...chain.slice(chain.findIndex((c) => c.name.name === decl.name.name)).map((c) => `model ${c.name.name}`), `model ${decl.name.name}`] });
      chain.push({ ...cur.decl, file: cur.file });
      const t = this.models.get(cur.decl.template.name);
      if (!t) fail('SC2012', cur.decl.template.span, { name: cur.decl.template.name });
      cur = t;
    }
    const model = cur.decl;
    const env = new Env(this.ip.globals);
    const given = new Map<string, Val>();
    /** Where an instance's override wrote each value (a wrong type is the user's argument's error). */
    const valueAt = new Map<string, Span>();
    const names = model.params.map((p) => p.name.name);
    const unknown = (k: string): string[] => [...didYouMean(k, names), `parameters: ${names.join(', ')}`];
    // The closest instance wins: apply the template's defaults, then instances outermost-last.
    for (const inst of chain.reverse())
      for (const arg of inst.overrides) {
        if (!names.includes(arg.name!.name)) fail('SC2004', arg.span, { owner: `model ${model.name.name}`, name: arg.name!.name }, unknown(arg.name!.name));
        given.set(arg.name!.name, this.ip.evalConst(arg.value));
        this.ip.givenAt.set(arg.name!.name, arg.span);
        valueAt.set(arg.name!.name, arg.value.span);
      }
    for (const [k, v] of Object.entries(overrides)) {
      if (!names.includes(k)) fail('SC2004', commandLineSpan(setText(k, v)), { owner: `model ${model.name.name}`, name: k }, unknown(k));
      given.set(k, v as Val);
      this.ip.givenAt.set(k, commandLineSpan(setText(k, v)));
      valueAt.delete(k);
    }
    const values = new Map<string, Val>();
    for (const p of model.params) {
      const v = given.has(p.name.name) ? given.get(p.name.name)! : p.default ? this.ip.evalIn(p.default, { ...this.ip.scopeOf(env), block: model.name.name }) : undefined;
      if (v === undefined) fail('SC2005', p.span, { modelParameter: p.name.name });
      checkType(v, p.type, p.name.name, p.span, Object.hasOwn(overrides, p.name.name), valueAt.get(p.name.name));
      values.set(p.name.name, v);
      env.set(p.name.name, v);
    }
    return { model, values, file: this.models.get(model.name.name)!.file };
  }

  // ---- model body ------------------------------------------------------------------------

  private execModelBody(body: A.Stmt[], scope: Scope): void {
    for (const s of body) {
      switch (s.kind) {
        case 'Input':
          if (!s.guard || this.ip.truthy(this.ip.evalIn(s.guard, scope), s.guard.span)) {
            this.inputs.set(s.name.name, s);
            if (s.role) this.inputRoles.set(s.name.name, inputRole(s, (e) => this.ip.evalIn(e, scope)));
          }
          scope.env.set(s.name.name, null);
          this.declaredInputs.add(s.name.name);
          break;
        case 'Entry':
          this.entries.set(s.name.name, s);
          break;
        case 'Train':
          this.train = s;
          break;
        default:
          this.ip.exec(s, scope);
      }
    }
  }

  /** The model's inputs with their roles, each role checked against the input's shape. */
  describeInputs(): ModelInput[] {
    return this.withBuild(1, false, (_b, scope) => [...this.inputs.values()].map((s) => describeInput(s, evalShape(this.ip, s.shape, scope), this.inputRoles.get(s.name.name))));
  }

  /** Entry points by role (compiler/model.ts EntryRoles), each role's contract checked on its batch-2 build. */
  entryRoles(): EntryRoles {
    return this.guard(() => entryRoles(this.entries, this.inputRoles, (name) => this.buildEntry(name, 2)));
  }

  /** A diagnostic at a model input's declaration, or at the model. */
  locate<C extends DiagnosticCode>(code: C, args: MessageArgs<C>, opts: { at?: string; notes?: string[] } = {}): DiagnosticError {
    const span = (opts.at && this.inputs.get(opts.at)?.span) || this.model.name.span;
    return new DiagnosticError([report(code, span, args, { notes: opts.notes })], this.load.sources);
  }

  // ---- builds ----------------------------------------------------------------------------

  /** Builds one entry point (evaluation mode) for a batch size. */
  buildEntry(name: string, batch: number): EntryGraph {
    const entry = this.entries.get(name);
    if (!entry) throw this.locate('SC5001', { need: 'entry name', model: this.name, name, entries: this.entryNames }, { notes: didYouMean(name, this.entryNames) });
    return this.withBuild(batch, false, (b, scope) => {
      const inputs = this.bindParams(entry.params, scope, b);
      let result: Val = null;
      try {
        this.ip.execBody(entry.body, scope);
      } catch (e) {
        if (!(e instanceof Return)) throw e;
        result = e.value;
      }
      const items = result instanceof Tuple ? result.items : [result];
      if (entry.output) checkShapes(this.ip, items, entry.output, scope, entry.span, `entry ${name}`);
      const names = entry.outputNames.map((n) => n.name);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup) fail('SC1112', entry.outputNames.find((n) => n.name === dup)!.span, { entry: name, name: dup });
      const outputs = items.map((v, i) => {
        // Unnamed outputs: the entry's name (one output) or name0, name1, …
        const out = names[i] ?? (items.length === 1 ? name : `${name}${i}`);
        b.g.outputs.set(out, this.ip.tensorOf(v, entry.span, `the result of entry ${name}`).v);
        return out;
      });
      this.finishState(b);
      return { graph: b.g, inputs: [...inputs, ...b.extraInputs], outputs, hostScalars: b.hostScalars, layers: b.log };
    });
  }

  /**
   * The training step. With `accumulate` = k it is one of k micro-batches: instead of Adam, each
   * parameter's gradient / k is added to a state tensor `grad.<name>` that `buildApply` consumes.
   */
  buildTrain(batch: number, accumulate?: number): TrainGraph {
    return buildTrain(this.steps, this.trainStmt(), this.step, batch, accumulate);
  }

  /** After k accumulating micro-batches: Adam on the summed gradients, which are then zeroed. */
  buildApply(): EntryGraph {
    this.trainStmt();
    if (!this.step.optimizer) throw new Error('build a training step first');
    return buildApply(this.specs, this.step.optimizer);
  }

  /** Whether any accumulated gradient overflowed (loss scaling): their sum, finite when none did. */
  buildGradientCheck(): EntryGraph {
    this.trainStmt();
    return buildGradientCheck(this.specs);
  }

  /** The training step in evaluation mode, outputting its `evaluate` values per cell. */
  buildEvaluate(batch: number): EntryGraph {
    return buildEvaluate(this.steps, this.trainStmt(), batch);
  }

  /** The model's `train` step (SC5001 at the model when it has none). */
  private trainStmt(): A.TrainStmt {
    if (!this.train) throw this.locate('SC5001', { need: 'training step', model: this.name });
    return this.train;
  }

  private withBuild<R>(batch: number, training: boolean, f: (b: Build, scope: Scope) => R): R {
    return this.ip.withBuild(batch, training, this.modelScope, f);
  }

  /** Failures outside a build as diagnostics. */
  private guard<R>(f: () => R): R {
    try {
      return f();
    } catch (e) {
      throw this.ip.asDiagnostic(e);
    }
  }

  /** Entry parameters: a shape makes a new input; a bare name is the model input of that name. */
  private bindParams(params: A.TensorParam[], scope: Scope, b: Build): { name: string; shape: number[] }[] {
    const inputs: { name: string; shape: number[] }[] = [];
    for (const p of params) {
      let shapeExpr = p.shape;
      if (!shapeExpr) {
        const inp = this.inputs.get(p.name.name);
        if (!inp) {
          if (!this.declaredInputs.has(p.name.name)) fail('SC2014', p.name.span, { name: p.name.name, model: this.model.name.name });
          scope.env.set(p.name.name, null); // an input whose guard is false
          continue;
        }
        shapeExpr = inp.shape;
      }
      const shape = evalShape(this.ip, shapeExpr, scope);
      checkElements(shape, shapeExpr.span);
      scope.env.set(p.name.name, new GraphTensor(b.g.input(p.name.name, shape)));
      inputs.push({ name: p.name.name, shape });
    }
    return inputs;
  }

  /** State tensors changed by the build (BatchNorm running statistics, spectral norm's u) are written back. */
  private finishState(b: Build): void {
    for (const [name, v] of b.tensors) {
      const input = b.g.inputNamed(name)!;
      if (v !== input.value) b.g.updates.set(name, v);
    }
  }
}
