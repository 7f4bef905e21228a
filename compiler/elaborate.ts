// The compiler's middle: it runs a parsed model at compile time (parameters, loops and
// conditions are known then), inlines blocks, checks every shape at block boundaries and builds
// the graph IR of an entry point or of the training step for one batch size. Errors are
// diagnostics with the chain of block call sites.

import type * as A from '../dsl/ast.ts';
import { commandLineSpan, diagnostic, DiagnosticError, formatLocation, type CallSite, type DiagnosticCode, type Span } from '../dsl/diagnostics.ts';
import { didYouMean } from '../dsl/suggest.ts';
import type { LoadResult } from '../dsl/load.ts';
import { OpError, numel } from '../kernels/types.ts';
import { gradients } from './autodiff.ts';
import { Graph, type Value } from './ir.ts';
import type { EntryGraph, EntryRoles, HostScalar as HostScalarSpec, Init, InputRole, ModelInput, TensorSpec, TrainGraph } from './model.ts';
import { Callee, Configured, Env, HostScalar, Tensor, Tuple, typeName, type LayerKind, type Val } from './values.ts';

const LAYERS: Record<LayerKind, { params: string[]; defaults: Record<string, Val> }> = {
  conv: { params: ['cout', 'k', 'stride', 'pad', 'bias', 'sn'], defaults: { stride: 1, pad: 0, bias: true, sn: false } },
  conv_transpose: { params: ['cout', 'k', 'stride', 'pad', 'output_padding', 'bias', 'sn'], defaults: { stride: 1, pad: 0, output_padding: 0, bias: true, sn: false } },
  linear: { params: ['out', 'bias', 'sn'], defaults: { bias: true, sn: false } },
  batchnorm: { params: ['eps', 'momentum'], defaults: { eps: 1e-5, momentum: 0.1 } },
};
/** Entry roles the tools call (compiler/model.ts EntryRoles); an entry named so has that role unless it says `as …`. */
const ENTRY_ROLES = ['encode', 'decode', 'generate'] as const;
/** Input roles (`input x: [...] as image("membrane", "dna")`) and the data channels they may name. */
const INPUT_ROLES = ['image', 'reference', 'label'] as const;
export const DATA_CHANNELS = ['membrane', 'dna', 'structure'] as const;
const BUILTINS = new Set(['relu', 'softplus', 'exp', 'avgpool', 'upsample', 'subsample', 'flatten', 'reshape', 'sum', 'mean', 'clamp', 'randn', 'reparam', 'sse', 'kld', 'len', 'prod', 'repeat', 'given', 'adam']);

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

class Fail extends Error {
  constructor(readonly code: DiagnosticCode, readonly span: Span, message: string, readonly notes: string[] = []) {
    super(message);
  }
}

interface Scope {
  env: Env;
  /** Instance path prefix: `enc.down0`. */
  path: string;
  calls: CallSite[];
  defaults: Map<string, Map<string, Val>>;
  /** Instance names used in this block body (SC2006). */
  names: Set<string>;
  block: string;
}

interface Build {
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
class Return {
  constructor(readonly value: Val, readonly span: Span) {}
}

export class Elaborator {
  /** Every parameter and state tensor met in any build, by checkpoint name. */
  readonly specs = new Map<string, TensorSpec>();
  readonly blocks = new Map<string, { decl: A.BlockDecl; file: string }>();
  readonly models = new Map<string, { decl: A.ModelDecl | A.ModelInstance; file: string }>();
  private globals = new Env();
  private fileDefaults = new Map<string, Map<string, Map<string, Val>>>();
  readonly model: A.ModelDecl;
  /** The model as requested: an instance (`Reference2D`) or the template itself. */
  readonly name: string;
  readonly params = new Map<string, Val>();
  private modelScope!: Scope;
  private entries = new Map<string, A.EntryStmt>();
  private train?: A.TrainStmt;
  private inputs = new Map<string, A.InputStmt>();
  private inputRoles = new Map<string, InputRole>();
  private build: Build | null = null;

  constructor(readonly load: LoadResult, modelName: string | undefined, overrides: Record<string, unknown>, readonly debug: DebugOptions = {}) {
    try {
      for (const [file, prog] of load.programs) {
        const defs = new Map<string, Map<string, Val>>();
        this.fileDefaults.set(file, defs);
        for (const d of prog.decls) {
          if (d.kind === 'Block') this.blocks.set(d.name.name, { decl: d, file });
          else if (d.kind === 'Model' || d.kind === 'ModelInstance') this.models.set(d.name.name, { decl: d, file });
          else if (d.kind === 'Const') this.globals.set(d.name.name, this.evalConst(d.value));
          else if (d.kind === 'Defaults') this.addDefaults(defs, d, this.globals);
        }
      }
      const entryModels = load.programs.get(load.entry)!.decls.filter((d) => d.kind === 'Model' || d.kind === 'ModelInstance');
      const name = modelName ?? entryModels[entryModels.length - 1]?.name.name;
      if (!name || !this.models.has(name)) throw new Fail('SC2001', load.programs.get(load.entry)!.span, name ? `no model named '${name}' (models: ${[...this.models.keys()].join(', ')})` : `${load.entry} declares no model`);
      const { model, values, file } = this.resolveModel(name, overrides);
      this.model = model;
      this.name = name;
      const env = new Env(this.globals);
      for (const [k, v] of values) {
        env.set(k, v);
        this.params.set(k, v);
      }
      this.modelScope = { env, path: '', calls: [], defaults: new Map(this.fileDefaults.get(file)), names: new Set(), block: model.name.name };
      this.execModelBody(model.body, this.modelScope);
    } catch (e) {
      throw this.asDiagnostic(e);
    }
  }

  get hasTrain(): boolean {
    return !!this.train;
  }

  get entryNames(): string[] {
    return [...this.entries.keys()];
  }

  /** The model's parameters after defaults, instance defaults and overrides (SC2004, SC4001). */
  private resolveModel(name: string, overrides: Record<string, unknown>): { model: A.ModelDecl; values: Map<string, Val>; file: string } {
    const chain: (A.ModelInstance & { file: string })[] = [];
    let cur = this.models.get(name)!;
    while (cur.decl.kind === 'ModelInstance') {
      chain.push({ ...cur.decl, file: cur.file });
      const t = this.models.get(cur.decl.template.name);
      if (!t) throw new Fail('SC2001', cur.decl.template.span, `unknown model '${cur.decl.template.name}'`);
      cur = t;
    }
    const model = cur.decl;
    const env = new Env(this.globals);
    const given = new Map<string, Val>();
    // The closest instance wins: apply the template's defaults, then instances outermost-last.
    for (const inst of chain.reverse())
      for (const arg of inst.overrides) {
        if (!model.params.some((p) => p.name.name === arg.name!.name)) throw new Fail('SC2004', arg.span, `model ${model.name.name} has no parameter '${arg.name!.name}'`, [...didYouMean(arg.name!.name, model.params.map((p) => p.name.name)), `parameters: ${model.params.map((p) => p.name.name).join(', ')}`]);
        given.set(arg.name!.name, this.evalConst(arg.value));
      }
    for (const [k, v] of Object.entries(overrides)) {
      if (!model.params.some((p) => p.name.name === k)) throw new Fail('SC2004', commandLineSpan(setText(k, v)), `model ${model.name.name} has no parameter '${k}'`, [...didYouMean(k, model.params.map((p) => p.name.name)), `parameters: ${model.params.map((p) => p.name.name).join(', ')}`]);
      given.set(k, v as Val);
    }
    const values = new Map<string, Val>();
    for (const p of model.params) {
      const v = given.has(p.name.name) ? given.get(p.name.name)! : p.default ? this.evalIn(p.default, { ...this.scopeOf(env), block: model.name.name }) : undefined;
      if (v === undefined) throw new Fail('SC2005', p.span, `model parameter '${p.name.name}' has no default and was not given`);
      this.checkType(v, p.type, p.name.name, p.span, Object.hasOwn(overrides, p.name.name));
      values.set(p.name.name, v);
      env.set(p.name.name, v);
    }
    return { model, values, file: this.models.get(model.name.name)!.file };
  }

  /** `fromSet`: v came from `--set` (overrides): the error is the command line's, `span` (the declaration) a note. */
  private checkType(v: Val, t: A.TypeExpr, name: string, span: Span, fromSet = false): void {
    const ok = (v: Val, t: A.TypeExpr): boolean => {
      switch (t.kind) {
        case 'NamedType':
          return t.name === 'int' ? Number.isInteger(v) : t.name === 'float' ? typeof v === 'number' : t.name === 'bool' ? typeof v === 'boolean' : t.name === 'str' ? typeof v === 'string' : true;
        case 'ListType':
          return Array.isArray(v) && v.every((x) => ok(x, t.element));
        case 'UnionType':
          return t.options.some((o) => ok(v, o));
        case 'LiteralType':
          return v === t.value;
        default:
          return true;
      }
    };
    if (!ok(v, t) && fromSet) {
      // `--set size=64,40` is the string "64,40": offer the list in brackets when that fits.
      const items = typeof v === 'string' && t.kind === 'ListType' ? v.replace(/^\[|\]$/g, '').split(',').map((s) => { try { return JSON.parse(s) as Val; } catch { return s.trim(); } }) : undefined;
      const fix = items && ok(items, t) ? `; write ${setText(name, items).replace(/^--set (.*".*)$/, "--set '$1'")}` : '';
      throw new Fail('SC4001', commandLineSpan(setText(name, v)), `parameter '${name}' got ${JSON.stringify(v)} (${typeName(v)}), but ${name} is ${typeWords(t)}${fix}`, [`${name} is declared at ${formatLocation(span)}`]);
    }
    if (!ok(v, t)) throw new Fail('SC4001', span, `parameter '${name}' got ${JSON.stringify(v)} (${typeName(v)}), which is not of type ${typeText(t)}`);
  }

  private scopeOf(env: Env): Scope {
    return { env, path: '', calls: [], defaults: new Map(), names: new Set(), block: '' };
  }

  private evalConst(e: A.Expr): Val {
    return this.evalIn(e, this.scopeOf(this.globals));
  }

  private addDefaults(into: Map<string, Map<string, Val>>, d: A.DefaultsDecl, env: Env): void {
    for (const l of d.layers) {
      if (!(l.layer.name in LAYERS)) throw new Fail('SC2002', l.layer.span, `'${l.layer.name}' is not a layer (layers: ${Object.keys(LAYERS).join(', ')})`);
      const m = new Map(into.get(l.layer.name));
      for (const a of l.args) m.set(a.name?.name ?? '', this.evalIn(a.value, this.scopeOf(env)));
      into.set(l.layer.name, m);
    }
  }

  // ---- model body ------------------------------------------------------------------------

  private execModelBody(body: A.Stmt[], scope: Scope): void {
    for (const s of body) {
      switch (s.kind) {
        case 'Input':
          if (!s.guard || this.truthy(this.evalIn(s.guard, scope), s.guard.span)) {
            this.inputs.set(s.name.name, s);
            if (s.role) this.inputRoles.set(s.name.name, this.inputRole(s, scope));
          }
          scope.env.set(s.name.name, null);
          break;
        case 'Entry':
          this.entries.set(s.name.name, s);
          break;
        case 'Train':
          this.train = s;
          break;
        default:
          this.exec(s, scope);
      }
    }
  }

  /** `as image("membrane", "dna")` / `as reference(channels)` / `as label`; shapes are checked in `describeInputs`. */
  private inputRole(s: A.InputStmt, scope: Scope): InputRole {
    const { name, args } = s.role!;
    if (!(INPUT_ROLES as readonly string[]).includes(name.name)) throw new Fail('SC2009', name.span, `'${name.name}' is not an input role`, [`input roles: ${INPUT_ROLES.join(', ')}`]);
    if (name.name === 'label') {
      if (args.length) throw new Fail('SC2005', name.span, 'the label role takes no arguments: its classes are the width of the input');
      return { kind: 'label', classes: 0 };
    }
    const vals = args.map((a) => this.evalIn(a.value, scope));
    const channels = (vals.length === 1 && Array.isArray(vals[0]) ? vals[0] : vals) as Val[];
    const bad = channels.find((c) => typeof c !== 'string' || !(DATA_CHANNELS as readonly string[]).includes(c));
    if (!channels.length || bad !== undefined)
      throw new Fail('SC4001', args[0]?.span ?? name.span, `the ${name.name} role names its channels, in order${bad !== undefined ? `; ${JSON.stringify(bad)} is not a data channel` : ''}`, [`data channels: ${DATA_CHANNELS.map((c) => JSON.stringify(c)).join(', ')}, e.g. as ${name.name}("membrane", "dna")`]);
    return { kind: name.name as 'image' | 'reference', channels: channels as string[] };
  }

  /** The model's inputs with their roles, each role checked against the input's shape. */
  describeInputs(): ModelInput[] {
    return this.withBuild(1, false, (_b, scope) =>
      [...this.inputs.values()].map((s) => {
        const shape = this.evalShape(s.shape, scope);
        let role = this.inputRoles.get(s.name.name);
        if (role?.kind === 'label') {
          if (shape.length !== 2) throw new Fail('SC3002', s.shape.span, `a label input is [B, classes] (a one-hot row per cell), this one is ${shapeText(s.shape as A.ShapeType)}`);
          role = { kind: 'label', classes: shape[1] };
        } else if (role && (shape.length < 3 || shape[1] !== role.channels.length))
          throw new Fail('SC3001', s.role!.name.span, `input ${s.name.name} is ${shapeText(s.shape as A.ShapeType)} = [${shape.join(', ')}] but its ${role.kind} role names ${role.channels.length} channel(s) (${role.channels.join(', ')})`, ['an image input is [B, channels, ...spatial], one name per channel']);
        return { name: s.name.name, itemShape: shape.slice(1), role };
      }),
    );
  }

  /** Entry points by role (compiler/model.ts EntryRoles), each role's contract checked on its batch-2 build. */
  entryRoles(): EntryRoles {
    const roles: EntryRoles = {};
    const taken = new Map<string, string>();
    for (const [name, e] of this.entries) {
      const role = e.role?.name ?? ((ENTRY_ROLES as readonly string[]).includes(name) ? name : undefined);
      if (!role) continue;
      const span = e.role?.span ?? e.name.span;
      if (!(ENTRY_ROLES as readonly string[]).includes(role)) throw this.asDiagnostic(new Fail('SC2009', span, `'${role}' is not an entry role`, [`entry roles: ${ENTRY_ROLES.join(', ')}`]));
      if (taken.has(role)) throw this.asDiagnostic(new Fail('SC1102', span, `entries ${taken.get(role)} and ${name} both have the role ${role}`));
      taken.set(role, name);
      const g = this.buildEntry(name, 2);
      const fail = (msg: string) => this.asDiagnostic(new Fail('SC4001', span, `entry ${name} (role ${role}): ${msg}`));
      // An entry's own inputs are its parameters with a shape (debug noise inputs are not).
      const own = new Set(e.params.filter((p) => p.shape).map((p) => p.name.name));
      const latents = g.inputs.filter((i) => own.has(i.name));
      if (role === 'encode') {
        if (g.outputs.length !== 2) throw fail(`an encoder returns the posterior's mean and log-variance, ([B, L], [B, L]); this one returns ${g.outputs.length} value(s)`);
        const [m, lv] = g.outputs.map((o) => g.graph.outputs.get(o)!.shape);
        if (m.length !== 2 || m.join() !== lv.join()) throw fail(`the mean and log-variance must both be [B, L], got [${m.join(', ')}] and [${lv.join(', ')}]`);
        roles.encode = { entry: name, mean: g.outputs[0], logvar: g.outputs[1] };
      } else if (role === 'decode') {
        if (latents.length !== 1 || latents[0].shape.length !== 2) throw fail(`a decoder takes one latent code [B, L] besides the model's inputs; this one takes ${latents.length ? latents.map((l) => `${l.name} [${l.shape.join(', ')}]`).join(', ') : 'none'}`);
        if (g.outputs.length !== 1) throw fail(`a decoder returns one image, this one returns ${g.outputs.length} values`);
        roles.decode = { entry: name, latent: latents[0].name, output: g.outputs[0] };
      } else {
        if (latents.length) throw fail(`a generator takes only the model's inputs (the conditions); ${latents.map((l) => l.name).join(', ')} is not one`);
        if (g.outputs.length !== 1) throw fail(`a generator returns one image, this one returns ${g.outputs.length} values`);
        roles.generate = { entry: name, output: g.outputs[0] };
      }
    }
    return roles;
  }

  /** A diagnostic at a model input's declaration, or at the model. */
  locate(code: DiagnosticCode, message: string, opts: { at?: string; notes?: string[] } = {}): DiagnosticError {
    const span = (opts.at && this.inputs.get(opts.at)?.span) || this.model.name.span;
    return new DiagnosticError([diagnostic(code, span, message, { notes: opts.notes })], this.load.sources);
  }

  /** The names of the training step's `evaluate` values (found on its last build). */
  evaluation?: string[];

  /** The training step in evaluation mode, outputting its `evaluate` values per cell. */
  buildEvaluate(batch: number): EntryGraph {
    const t = this.train;
    if (!t) throw new Error(`model ${this.model.name.name} has no training step`);
    return this.withBuild(batch, false, (b, scope) => {
      const inputs = this.bindParams(t.params, scope, b);
      this.execBody(t.body, scope);
      if (!b.evaluations.length) throw new Fail('SC5001', t.span, `the training step of ${this.name} declares no \`evaluate\``, ['add `evaluate elbo, recon, kl` with per-cell ([B]) values, the ELBO first']);
      for (const e of b.evaluations) b.g.outputs.set(e.name, this.tensorOf(e.value, e.span, `evaluated value ${e.name}`).v);
      this.finishState(b);
      return { graph: b.g, inputs: [...inputs, ...b.extraInputs], outputs: b.evaluations.map((e) => e.name), hostScalars: b.hostScalars };
    });
  }

  /** Builds one entry point (evaluation mode) or the training step for a batch size. */
  buildEntry(name: string, batch: number): EntryGraph {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`model ${this.model.name.name} has no entry '${name}' (entries: ${this.entryNames.join(', ')})`);
    return this.withBuild(batch, false, (b, scope) => {
      const inputs = this.bindParams(entry.params, scope, b);
      let result: Val = null;
      try {
        this.execBody(entry.body, scope);
      } catch (e) {
        if (!(e instanceof Return)) throw e;
        result = e.value;
      }
      const items = result instanceof Tuple ? result.items : [result];
      if (entry.output) this.checkShapes(items, entry.output, scope, entry.span, `entry ${name}`);
      const names = entry.outputNames.map((n) => n.name);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup) throw new Fail('SC1103', entry.outputNames.find((n) => n.name === dup)!.span, `entry ${name} names two outputs '${dup}'`);
      const outputs = items.map((v, i) => {
        // Unnamed outputs: the entry's name (one output) or name0, name1, …
        const out = names[i] ?? (items.length === 1 ? name : `${name}${i}`);
        b.g.outputs.set(out, this.tensorOf(v, entry.span, `the result of entry ${name}`).v);
        return out;
      });
      this.finishState(b);
      return { graph: b.g, inputs: [...inputs, ...b.extraInputs], outputs, hostScalars: b.hostScalars, layers: b.log };
    });
  }

  /** The optimiser of the last training step built (for the separate Adam program of micro-batching). */
  private optimizer?: TrainGraph['optimizer'];

  /**
   * The training step. With `accumulate` = k it is one of k micro-batches: instead of Adam, each
   * parameter's gradient / k is added to a state tensor `grad.<name>` that `buildApply` consumes.
   */
  buildTrain(batch: number, accumulate?: number): TrainGraph {
    const t = this.train;
    if (!t) throw new Error(`model ${this.model.name.name} has no training step`);
    return this.withBuild(batch, true, (b, scope) => {
      const inputs = this.bindParams(t.params, scope, b);
      this.execBody(t.body, scope);
      this.evaluation = b.evaluations.length ? b.evaluations.map((e) => e.name) : undefined;
      if (!b.loss) throw new Fail('SC1104', t.span, 'the training step never reaches `minimize`');
      const loss = this.tensorOf(b.loss.value, b.loss.span, 'the loss');
      if (numel(loss.shape) !== 1) throw new Fail('SC3001', b.loss.span, `the loss must be one number, got shape [${loss.shape.join(', ')}]`, ['sum or average it']);
      const opt = b.loss.optimizer;
      const num = (k: string, d: number) => {
        const v = opt.get(k) ?? d;
        if (typeof v !== 'number') throw new Fail('SC4001', b.loss!.span, `adam's ${k} must be a number`);
        return v;
      };
      const optimizer = { kind: 'adam' as const, lr: num('lr', 2e-4), beta1: num('beta1', 0.9), beta2: num('beta2', 0.999), eps: num('eps', 1e-8) };
      const params = [...this.specs.values()].filter((s) => s.kind === 'param' && b.tensors.has(s.name));
      this.optimizer = optimizer;
      const dataInputs = this.debug.inputGradients ? [...inputs, ...b.extraInputs] : [];
      const grads = gradients(b.g, loss.v, [...params, ...dataInputs].map((p) => b.g.inputNamed(p.name)!.value));
      params.forEach((p, i) => {
        if (accumulate) {
          const acc = b.g.input(`grad.${p.name}`, p.shape, 'state');
          const [part] = b.g.call('scale', [grads[i]], { a: 1 / accumulate, b: 0 });
          b.g.updates.set(`grad.${p.name}`, b.g.call('add', [acc, part])[0]);
          return;
        }
        this.adamUpdate(b.g, p, grads[i], optimizer);
      });
      if (this.debug.gradients) params.forEach((p, i) => b.g.outputs.set(`grad/${p.name}`, grads[i]));
      dataInputs.forEach((d, i) => b.g.outputs.set(`grad/${d.name}`, grads[params.length + i]));
      for (const name of this.debug.expose ?? []) b.g.outputs.set(name, this.tensorOf(scope.env.get(name) ?? null, t.span, `exposed variable ${name}`).v);
      const metrics: string[] = [];
      for (const r of b.reports) {
        b.g.outputs.set(r.name, this.tensorOf(r.value, r.span, `reported value ${r.name}`).v);
        metrics.push(r.name);
      }
      this.finishState(b);
      return { graph: b.g, inputs: [...inputs, ...b.extraInputs], outputs: [...b.g.outputs.keys()], metrics, hostScalars: b.hostScalars, optimizer, layers: b.log };
    });
  }

  private adamUpdate(g: Graph, p: TensorSpec, grad: Value, o: TrainGraph['optimizer']): void {
    const [m, v] = ['m', 'v'].map((w) => g.input(`adam.${w}.${p.name}`, p.shape, 'state'));
    const [p2, m2, v2] = g.call('adam', [g.inputNamed(p.name)?.value ?? g.input(p.name, p.shape, 'param'), grad, m, v], { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, step: 1 }, { step: (a) => (a.iteration ?? 0) + 1 });
    g.updates.set(p.name, p2).set(`adam.m.${p.name}`, m2).set(`adam.v.${p.name}`, v2);
  }

  /** After k accumulating micro-batches: Adam on the summed gradients, which are then zeroed. */
  buildApply(): EntryGraph {
    if (!this.optimizer) throw new Error('build a training step first');
    const g = new Graph();
    for (const p of this.specs.values()) {
      if (p.kind !== 'param') continue;
      const acc = g.input(`grad.${p.name}`, p.shape, 'state');
      this.adamUpdate(g, p, acc, this.optimizer);
      g.updates.set(`grad.${p.name}`, g.call('fill', [], { shape: [...p.shape], value: 0 })[0]);
    }
    return { graph: g, inputs: [], outputs: [], hostScalars: [] };
  }

  private withBuild<R>(batch: number, training: boolean, f: (b: Build, scope: Scope) => R): R {
    const b: Build = { g: new Graph(), training, batch, tensors: new Map(), hostScalars: [], randomDraws: 0, log: [], reports: [], evaluations: [], extraInputs: [] };
    this.build = b;
    const env = new Env(this.modelScope.env);
    env.set('B', batch);
    env.set('iteration', new HostScalar((it) => it));
    try {
      return f(b, { ...this.modelScope, env, names: new Set() });
    } catch (e) {
      throw this.asDiagnostic(e);
    } finally {
      this.build = null;
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
          if (!this.modelScope.env.has(p.name.name)) throw new Fail('SC2001', p.name.span, `'${p.name.name}' is not an input of model ${this.model.name.name}`);
          scope.env.set(p.name.name, null); // an input whose guard is false
          continue;
        }
        shapeExpr = inp.shape;
      }
      const shape = this.evalShape(shapeExpr, scope);
      scope.env.set(p.name.name, new Tensor(b.g.input(p.name.name, shape)));
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

  // ---- statements ------------------------------------------------------------------------

  private execBody(body: A.Stmt[], scope: Scope): void {
    for (const s of body) this.exec(s, scope);
  }

  private exec(s: A.Stmt, scope: Scope): void {
    switch (s.kind) {
      case 'Assign': {
        const v = this.evalIn(s.value, scope);
        if (s.targets.length === 1) {
          // Binding an unapplied layer or block names the instance after the variable.
          if (v instanceof Configured && !v.label) v.label = s.targets[0].name;
          scope.env.set(s.targets[0].name, v);
        } else {
          const items = v instanceof Tuple ? v.items : null;
          if (!items || items.length !== s.targets.length) throw new Fail('SC4001', s.span, `${s.targets.length} names but the value gives ${items ? items.length : 1}`);
          s.targets.forEach((t, i) => scope.env.set(t.name, items[i]));
        }
        return;
      }
      case 'Return': {
        const vals = s.values.map((e) => this.evalIn(e, scope));
        throw new Return(vals.length === 1 ? vals[0] : new Tuple(vals), s.span);
      }
      case 'For': {
        const it = this.evalIn(s.iterable, scope);
        if (!Array.isArray(it)) throw new Fail('SC4003', s.iterable.span, `a for loop needs a compile-time list or range, got ${typeName(it)}`);
        for (const x of it) {
          scope.env.set(s.variable.name, x);
          this.execBody(s.body, scope);
        }
        return;
      }
      case 'If':
        if (this.truthy(this.evalIn(s.test, scope), s.test.span)) this.execBody(s.then, scope);
        else if (s.else) this.execBody(s.else, scope);
        return;
      case 'Assert': {
        if (!this.truthy(this.evalIn(s.test, scope), s.test.span)) {
          const msg = s.message ? this.evalIn(s.message, scope) : null;
          throw new Fail('SC4002', s.test.span, typeof msg === 'string' ? msg : 'assertion failed');
        }
        return;
      }
      case 'Const':
        scope.env.set(s.name.name, this.evalIn(s.value, scope));
        return;
      case 'Defaults': {
        const m = new Map(scope.defaults);
        this.addDefaults(m, s, scope.env);
        scope.defaults = m;
        return;
      }
      case 'Minimize': {
        const b = this.build!;
        const optimizer = new Map<string, Val>();
        if (s.optimizer) {
          if (s.optimizer.kind !== 'Call' || s.optimizer.callee.kind !== 'Name' || s.optimizer.callee.name !== 'adam') throw new Fail('SC2002', s.optimizer.span, 'the optimiser must be adam(...)');
          for (const a of s.optimizer.args) {
            if (!a.name || !['lr', 'beta1', 'beta2', 'eps'].includes(a.name.name)) throw new Fail('SC2004', a.span, "adam takes named arguments lr, beta1, beta2, eps");
            optimizer.set(a.name.name, this.evalIn(a.value, scope));
          }
        }
        b.loss = { value: this.evalIn(s.loss, scope), span: s.loss.span, optimizer };
        return;
      }
      case 'Report':
      case 'Evaluate':
        for (const e of s.values) {
          const word = s.kind === 'Report' ? 'report' : 'evaluate';
          if (e.kind !== 'Name') throw new Fail('SC4001', e.span, `${word} names variables: \`${word} ${s.kind === 'Report' ? 'recon, kl, loss' : 'elbo, recon, kl'}\``);
          const value = this.evalIn(e, scope);
          if (s.kind === 'Report') this.build!.reports.push({ name: e.name, value, span: e.span });
          else {
            const t = this.tensorOf(value, e.span, `evaluated value ${e.name}`);
            if (t.shape.length !== 1 || t.shape[0] !== this.build!.batch) throw new Fail('SC3001', e.span, `evaluate takes one value per cell ([B] = [${this.build!.batch}]); ${e.name} is [${t.shape.join(', ')}]`, ['sum over every axis but the batch with sum(x, keep_batch = true)']);
            this.build!.evaluations.push({ name: e.name, value, span: e.span });
          }
        }
        return;
      default:
        throw new Fail('SC1101', s.span, `'${s.kind.toLowerCase()}' is not allowed here`);
    }
  }

  private truthy(v: Val, span: Span): boolean {
    if (typeof v !== 'boolean') throw new Fail('SC4003', span, `a condition must be a compile-time true/false, got ${typeName(v)}`);
    return v;
  }

  // ---- expressions -----------------------------------------------------------------------

  private evalIn(e: A.Expr, scope: Scope): Val {
    switch (e.kind) {
      case 'Number':
        return e.value;
      case 'String':
        return e.value;
      case 'Bool':
        return e.value;
      case 'None':
        return null;
      case 'Name': {
        if (scope.env.has(e.name)) return scope.env.get(e.name)!;
        if (this.blocks.has(e.name)) {
          const { decl, file } = this.blocks.get(e.name)!;
          return new Callee({ kind: 'block', decl, file });
        }
        if (e.name in LAYERS) return new Callee({ kind: 'layer', layer: e.name as LayerKind });
        if (BUILTINS.has(e.name)) return new Callee({ kind: 'builtin', name: e.name });
        throw new Fail('SC2001', e.span, `unknown name '${e.name}'`, didYouMean(e.name, [...envNames(scope.env), ...this.blocks.keys(), ...Object.keys(LAYERS), ...BUILTINS]));
      }
      case 'List': {
        const out: Val[] = [];
        for (const el of e.elements) {
          if (el.kind === 'Spread') {
            const v = this.evalIn(el.argument, scope);
            if (!Array.isArray(v)) throw new Fail('SC4001', el.span, `only a list can be spread, got ${typeName(v)}`);
            out.push(...v);
          } else out.push(this.evalIn(el, scope));
        }
        return out;
      }
      case 'Range': {
        const a = this.evalIn(e.start, scope);
        const b = this.evalIn(e.end, scope);
        if (!Number.isInteger(a) || !Number.isInteger(b)) throw new Fail('SC4003', e.span, 'a range needs compile-time integers');
        return Array.from({ length: Math.max(0, (b as number) - (a as number)) }, (_, i) => (a as number) + i);
      }
      case 'Conditional':
        return this.truthy(this.evalIn(e.test, scope), e.test.span) ? this.evalIn(e.then, scope) : this.evalIn(e.else, scope);
      case 'Unary': {
        const v = this.evalIn(e.operand, scope);
        if (e.op === 'not') return !this.truthy(v, e.span);
        return this.arith('*', -1, v, e.span);
      }
      case 'Binary':
        return this.binary(e, scope);
      case 'Index': {
        const o = this.evalIn(e.object, scope);
        const i = this.evalIn(e.index, scope);
        if (!Array.isArray(o) || !Number.isInteger(i)) throw new Fail('SC4001', e.span, `cannot index ${typeName(o)} with ${typeName(i)}`);
        const k = (i as number) < 0 ? o.length + (i as number) : (i as number);
        if (k < 0 || k >= o.length) throw new Fail('SC4001', e.index.span, `index ${i} is outside a list of ${o.length}`);
        return o[k];
      }
      case 'Labeled': {
        // The label names the first layer or block configured inside (`cond_ref: Cond(c)(ref)`).
        const idx = e.label.index ? this.evalIn({ kind: 'Name', name: e.label.index.name, span: e.label.index.span }, scope) : '';
        this.pendingLabel = `${e.label.base}${idx}`;
        const v = this.evalIn(e.expr, scope);
        if (this.pendingLabel !== undefined) {
          this.pendingLabel = undefined;
          throw new Fail('SC1105', e.label.span, 'an instance name goes before a layer or block call');
        }
        return v;
      }
      case 'Call':
        return this.call(e, scope);
      case 'Pipe': {
        const x = this.evalIn(e.input, scope);
        return this.applyStage(e.stage, x, scope, e.span);
      }
      case 'Error':
        throw new Fail('SC1001', e.span, 'this part did not parse');
    }
  }

  /** `x |> stage`: the stage called with x as its first tensor input. */
  private applyStage(stage: A.Expr, x: Val, scope: Scope, span: Span): Val {
    let label: A.InstanceName | undefined;
    if (stage.kind === 'Labeled') {
      label = stage.label;
      stage = stage.expr;
    }
    let callable: Val;
    let args: A.Argument[] = [];
    if (stage.kind === 'Call') {
      callable = this.evalIn(stage.callee, scope);
      args = stage.args;
      // `conv(32, k = 1)` and `Down(32)`: the arguments configure; x is then the input.
      if (callable instanceof Callee && callable.target.kind !== 'builtin') {
        callable = this.configure(callable, args, scope, stage.span);
        args = [];
      }
    } else callable = this.evalIn(stage, scope);
    if (label && callable instanceof Configured) {
      const idx = label.index ? scope.env.get(label.index.name) : '';
      callable.label = `${label.base}${idx}`;
    } else if (label) throw new Fail('SC1105', label.span, 'an instance name goes before a layer or block call');
    return this.invoke(callable, [x], args, scope, stage.span ?? span);
  }

  private call(e: A.CallExpr, scope: Scope): Val {
    const callee = this.evalIn(e.callee, scope);
    if (callee instanceof Callee && callee.target.kind !== 'builtin') return this.configure(callee, e.args, scope, e.span);
    return this.invoke(callee, [], e.args, scope, e.span);
  }

  /** A layer's or block's first call: its compile-time parameters. */
  private configure(c: Callee, args: A.Argument[], scope: Scope, span: Span): Configured {
    const t = c.target as Exclude<Callee['target'], { kind: 'builtin' }>;
    const names = t.kind === 'layer' ? LAYERS[t.layer].params : t.decl.params.map((p) => p.name.name);
    const what = t.kind === 'layer' ? `layer ${t.layer}` : `block ${t.decl.name.name}`;
    const given = new Map<string, Val>();
    args.forEach((a, i) => {
      const name = a.name?.name ?? names[i];
      if (name === undefined || !names.includes(name)) throw new Fail(a.name ? 'SC2004' : 'SC2005', a.span, a.name ? `${what} has no parameter '${a.name.name}'` : `${what} takes ${names.length} parameter(s), this is argument ${i + 1}`, [...(a.name ? didYouMean(a.name.name, names) : []), `parameters: ${names.join(', ')}`]);
      if (given.has(name)) throw new Fail('SC2004', a.span, `${what}: parameter '${name}' given twice`);
      given.set(name, this.evalIn(a.value, scope));
    });
    const label = this.pendingLabel;
    this.pendingLabel = undefined;
    return new Configured(t, given, label, span);
  }

  /** A label waiting for the layer or block call it names. */
  private pendingLabel: string | undefined;

  /** Calls something with tensors: a configured layer or block, or a builtin function. */
  private invoke(f: Val, leading: Val[], args: A.Argument[], scope: Scope, span: Span): Val {
    if (f instanceof Configured) return f.target.kind === 'layer' ? this.applyLayer(f, leading, args, scope, span) : this.inlineBlock(f, leading, args, scope, span);
    if (f instanceof Callee && f.target.kind === 'builtin') {
      const positional = [...leading];
      const named = new Map<string, Val>();
      for (const a of args) {
        const v = this.evalIn(a.value, scope);
        if (a.name) named.set(a.name.name, v);
        else positional.push(v);
      }
      return this.builtin(f.target.name, positional, named, span);
    }
    throw new Fail('SC2002', span, `${typeName(f)} cannot be called`);
  }

  // ---- blocks ----------------------------------------------------------------------------

  private inlineBlock(c: Configured, leading: Val[], args: A.Argument[], scope: Scope, span: Span): Val {
    const { decl, file } = c.target as { kind: 'block'; decl: A.BlockDecl; file: string };
    if (!c.label) throw new Fail('SC2008', c.span, `block ${decl.name.name} needs an instance name (\`name: ${decl.name.name}(…)\`): its parameters are named after it`);
    if (scope.names.has(c.label) && !this.isSharedInstance(scope, c)) throw new Fail('SC2006', c.span, `two instances named '${c.label}' in ${scope.block}`);
    scope.names.add(c.label);
    const site: CallSite = { block: decl.name.name, span };
    const env = new Env(this.globals);
    for (const p of decl.params) {
      const v = c.args.has(p.name.name) ? c.args.get(p.name.name)! : p.default ? this.evalIn(p.default, { ...scope, env }) : undefined;
      if (v === undefined) throw new Fail('SC2005', c.span, `block ${decl.name.name} needs parameter '${p.name.name}'`);
      this.checkType(v, p.type, p.name.name, c.span);
      env.set(p.name.name, v);
    }
    // Tensor inputs: positional then named; optional ones default to none.
    const given = new Map<string, Val>();
    leading.forEach((v, i) => decl.inputs[i] && given.set(decl.inputs[i].name.name, v));
    let pos = leading.length;
    for (const a of args) {
      const name = a.name?.name ?? decl.inputs[pos++]?.name.name;
      if (!name || !decl.inputs.some((i) => i.name.name === name)) throw new Fail(a.name ? 'SC2004' : 'SC2005', a.span, a.name ? `block ${decl.name.name} has no input '${a.name.name}'` : `block ${decl.name.name} takes ${decl.inputs.length} input(s)`, a.name ? didYouMean(a.name.name, decl.inputs.map((i) => i.name.name)) : []);
      given.set(name, this.evalIn(a.value, scope));
    }
    const inner: Scope = { env, path: scope.path ? `${scope.path}.${c.label}` : c.label, calls: [site, ...scope.calls], defaults: new Map(this.fileDefaults.get(file)), names: new Set(), block: decl.name.name };
    for (const [k, v] of scope.defaults) if (!inner.defaults.has(k)) inner.defaults.set(k, v);
    // Bind and check the input shapes at the boundary: errors there belong to the call site.
    this.annotate(scope.calls, () => {
      for (const inp of decl.inputs) {
        const v = given.has(inp.name.name) ? given.get(inp.name.name)! : null;
        if (v === null) {
          if (!inp.optional) throw new Fail('SC2005', span, `block ${decl.name.name} needs input '${inp.name.name}'`);
          env.set(inp.name.name, null);
          continue;
        }
        const t = this.tensorOf(v, span, `input '${inp.name.name}' of block ${decl.name.name}`);
        if (inp.shape) this.matchShape(t.shape, inp.shape, inner, span, `input '${inp.name.name}' of block ${decl.name.name}`);
        env.set(inp.name.name, t);
      }
    });
    let result = null as Val;
    let returnSpan = decl.span;
    // Errors inside the body, the output check at its `return` included, carry this call's chain.
    this.annotate(inner.calls, () => {
      try {
        this.execBody(decl.body, inner);
      } catch (e) {
        if (!(e instanceof Return)) throw e;
        result = e.value;
        returnSpan = e.span;
      }
      const items = result instanceof Tuple ? result.items : [result];
      this.checkShapes(items, decl.output, inner, returnSpan, `the output of block ${decl.name.name}`);
    });
    return result;
  }

  /** An instance bound to a variable (`enc = Encoder(…)`) may be called more than once. */
  private isSharedInstance(scope: Scope, c: Configured): boolean {
    for (let e: Env | undefined = scope.env; e; e = e.parent) if (e.get(c.label!) === c) return true;
    return false;
  }

  private checkShapes(items: Val[], output: A.TypeExpr, scope: Scope, span: Span, what: string): void {
    const types = output.kind === 'TupleType' ? output.elements : [output];
    if (types.length !== items.length) throw new Fail('SC3001', span, `${what}: ${items.length} value(s) returned, ${types.length} declared`);
    types.forEach((t, i) => this.matchShape(this.tensorOf(items[i], span, what).shape, t, scope, span, what));
  }

  /** Unifies a concrete shape with a declared one, binding size variables and packs (SC3001/SC3002). */
  private matchShape(shape: readonly number[], type: A.TypeExpr, scope: Scope, span: Span, what: string): void {
    if (type.kind !== 'ShapeType') return;
    const dims = type.dims;
    const spreads = dims.filter((d) => d.kind === 'Spread').length;
    const fixed = dims.length - spreads;
    if (spreads ? shape.length < fixed : shape.length !== fixed) throw new Fail('SC3002', span, `${what} has rank ${shape.length} ([${shape.join(', ')}]), the declaration ${shapeText(type)} wants ${spreads ? `at least ${fixed}` : fixed}`);
    const packLen = spreads ? (shape.length - fixed) / spreads : 0;
    let k = 0;
    const fail = (detail: string) => {
      throw new Fail('SC3001', span, `${what} has shape [${shape.join(', ')}], the declaration says ${shapeText(type)}: ${detail}`);
    };
    for (const d of dims) {
      if (d.kind === 'Spread') {
        const part = shape.slice(k, k + packLen);
        k += packLen;
        if (d.argument.kind === 'Name' && !scope.env.has(d.argument.name)) scope.env.set(d.argument.name, [...part]);
        else {
          const want = this.sizeIn(d.argument, scope, what);
          if (!Array.isArray(want) || want.length !== part.length || want.some((w, i) => w !== part[i])) fail(`...${exprText(d.argument)} is [${Array.isArray(want) ? want.join(', ') : String(want)}]`);
        }
        continue;
      }
      const got = shape[k++];
      if (d.kind === 'Name' && d.name === '_') continue;
      if (d.kind === 'Name' && !scope.env.has(d.name)) scope.env.set(d.name, got);
      else {
        const want = this.sizeIn(d, scope, what);
        if (want !== got) fail(`${exprText(d)} is ${String(want)}`);
      }
    }
  }

  /** A size expression of a declared shape; a size that does not divide names the shape it is in. */
  private sizeIn(e: A.Expr, scope: Scope, what: string): Val {
    try {
      return this.evalIn(e, scope);
    } catch (err) {
      if (err instanceof Fail && err.code === 'SC3004')
        throw new Fail('SC3004', e.span, `${what}: ${exprText(e)} is not a whole size (${err.message})`, [...err.notes, `the model's size parameter is ${JSON.stringify(this.params.get('size'))}`]);
      throw err;
    }
  }

  private evalShape(t: A.TypeExpr, scope: Scope): number[] {
    if (t.kind !== 'ShapeType') throw new Fail('SC1107', t.span, 'expected a shape');
    const out: number[] = [];
    for (const d of t.dims) {
      const v = d.kind === 'Spread' ? this.evalIn(d.argument, scope) : this.evalIn(d, scope);
      const vs = d.kind === 'Spread' ? (v as Val[]) : [v];
      for (const x of vs) {
        if (!Number.isInteger(x) || (x as number) < 0) throw new Fail('SC3005', d.span, `size ${exprText(d.kind === 'Spread' ? d.argument : d)} is ${typeName(x as Val)} here, not a size`);
        out.push(x as number);
      }
    }
    return out;
  }

  // ---- layers ----------------------------------------------------------------------------

  private param(name: string, shape: number[], kind: 'param' | 'state', init: Init, owner: string): Value {
    const b = this.build!;
    const known = this.specs.get(name);
    if (known && known.shape.join() !== shape.join()) throw new Error(`${name}: used with shapes [${known.shape.join(', ')}] and [${shape.join(', ')}]`);
    if (!known) this.specs.set(name, { name, shape, kind, init, owner });
    let v = b.tensors.get(name);
    if (!v) {
      v = b.g.input(name, shape, kind);
      b.tensors.set(name, v);
    }
    return v;
  }

  private applyLayer(c: Configured, leading: Val[], args: A.Argument[], scope: Scope, span: Span): Val {
    const layer = (c.target as { layer: LayerKind }).layer;
    if (!c.label) throw new Fail('SC2008', c.span, `layer ${layer} needs an instance name (\`name: ${layer}(…)\`): its parameters are named after it`);
    if (scope.names.has(c.label) && !this.isSharedInstance(scope, c)) throw new Fail('SC2006', c.span, `two instances named '${c.label}' in ${scope.block}`);
    scope.names.add(c.label);
    if (args.length || leading.length !== 1) throw new Fail('SC2005', span, `layer ${layer} takes one tensor`);
    const x = this.tensorOf(leading[0], span, `the input of ${layer}`);
    const a = new Map<string, Val>(Object.entries(LAYERS[layer].defaults));
    for (const [k, v] of scope.defaults.get(layer) ?? []) a.set(k, v);
    for (const [k, v] of c.args) a.set(k, v);
    const path = scope.path ? `${scope.path}.${c.label}` : c.label;
    const owner = scope.path || c.label;
    const int = (k: string, min = 0): number => {
      const v = a.get(k);
      if (!Number.isInteger(v) || (v as number) < min) throw new Fail(v === undefined ? 'SC2005' : 'SC4004', c.span, v === undefined ? `layer ${layer} needs '${k}'` : `layer ${layer}: ${k} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const g = this.build!.g;
    const b = this.build!;
    const before = b.g.inputs.length;
    const xs = x.shape;
    const weightOf = (shape: number[], init: Init, sn: boolean): Value => {
      const w = this.param(`${path}.weight`, shape, 'param', init, owner);
      if (!sn) return w;
      const uName = `${path}.sn_u`;
      this.param(uName, [shape[0]], 'state', { kind: 'unit_vector' }, owner);
      const [sigma, u2] = g.call('sn_sigma', [w, b.tensors.get(uName)!], { eps: 1e-12 });
      b.tensors.set(uName, u2);
      return g.call('div', [w, sigma])[0];
    };
    let y: Value;
    try {
      switch (layer) {
        case 'conv':
        case 'conv_transpose': {
          if (xs.length < 3) throw new Fail('SC3002', span, `${layer} takes [B, C, ...spatial], got [${xs.join(', ')}]`);
          const cout = int('cout', 1);
          const k = int('k', 1);
          const d = xs.length - 2;
          const kvol = k ** d;
          const wShape = layer === 'conv' ? [cout, xs[1], ...Array(d).fill(k)] : [xs[1], cout, ...Array(d).fill(k)];
          const fanIn = (layer === 'conv' ? xs[1] : cout) * kvol;
          const w = weightOf(wShape, { kind: 'normal', mean: 0, std: 0.02 }, a.get('sn') === true);
          const ins = [x.v, w];
          if (a.get('bias') !== false) ins.push(this.param(`${path}.bias`, [cout], 'param', { kind: 'uniform', low: -1 / Math.sqrt(fanIn), high: 1 / Math.sqrt(fanIn) }, owner));
          const attrs: Record<string, unknown> = { stride: int('stride', 1), pad: int('pad') };
          if (layer === 'conv_transpose') attrs.outputPadding = int('output_padding');
          [y] = g.call(layer, ins, attrs);
          break;
        }
        case 'linear': {
          if (xs.length !== 2) throw new Fail('SC3002', span, `linear takes [B, N], got [${xs.join(', ')}]`, ['flatten it first']);
          const out = int('out', 1);
          const bound = 1 / Math.sqrt(xs[1]);
          const w = weightOf([out, xs[1]], { kind: 'uniform', low: -bound, high: bound }, a.get('sn') === true);
          const ins = [x.v, w];
          if (a.get('bias') !== false) ins.push(this.param(`${path}.bias`, [out], 'param', { kind: 'uniform', low: -bound, high: bound }, owner));
          [y] = g.call('matmul', ins, { transB: true });
          break;
        }
        case 'batchnorm': {
          const C = xs[1];
          const gamma = this.param(`${path}.weight`, [C], 'param', { kind: 'normal', mean: 1, std: 0.02 }, owner);
          const beta = this.param(`${path}.bias`, [C], 'param', { kind: 'constant', value: 0 }, owner);
          this.param(`${path}.running_mean`, [C], 'state', { kind: 'constant', value: 0 }, owner);
          this.param(`${path}.running_var`, [C], 'state', { kind: 'constant', value: 1 }, owner);
          const eps = a.get('eps');
          const momentum = a.get('momentum');
          if (typeof eps !== 'number' || typeof momentum !== 'number') throw new Fail('SC4004', c.span, 'batchnorm: eps and momentum must be numbers');
          const outs = g.call('batchnorm', [x.v, gamma, beta, b.tensors.get(`${path}.running_mean`)!, b.tensors.get(`${path}.running_var`)!], { training: b.training, eps, momentum });
          if (b.training) {
            b.tensors.set(`${path}.running_mean`, outs[3]);
            b.tensors.set(`${path}.running_var`, outs[4]);
          }
          y = outs[0];
          break;
        }
      }
    } catch (e) {
      if (e instanceof OpError) throw new Fail('SC3001', span, e.message);
      throw e;
    }
    const params = b.g.inputs.slice(before).filter((i) => i.kind === 'param').reduce((s, i) => s + numel(i.value.shape), 0);
    b.log.push({ path, layer, output: y.shape, params });
    return new Tensor(y);
  }

  // ---- builtins and arithmetic -----------------------------------------------------------

  private op(name: string, inputs: Value[], attrs: Record<string, unknown>, span: Span, dynamic?: Parameters<Graph['call']>[3]): Value[] {
    try {
      return this.build!.g.call(name, inputs, attrs, dynamic);
    } catch (e) {
      if (e instanceof OpError) throw new Fail(name === 'add' || name === 'sub' || name === 'mul' || name === 'div' ? 'SC3003' : 'SC3001', span, e.message);
      throw e;
    }
  }

  private builtin(name: string, args: Val[], named: Map<string, Val>, span: Span): Val {
    const t = (i: number) => this.tensorOf(args[i], span, `argument ${i + 1} of ${name}`);
    const n = (i: number) => {
      const v = args[i];
      if (typeof v !== 'number') throw new Fail('SC4003', span, `argument ${i + 1} of ${name} must be a compile-time number, got ${typeName(v)}`);
      return v;
    };
    const one = (op: string, attrs: Record<string, unknown> = {}) => new Tensor(this.op(op, [t(0).v], attrs, span)[0]);
    switch (name) {
      case 'relu':
      case 'softplus':
      case 'exp':
        return one(name);
      case 'avgpool':
      case 'upsample':
        return one(name, { k: n(1) });
      case 'subsample':
        return args[0] === null ? null : one('subsample', { stride: n(1) });
      case 'flatten': {
        const s = t(0).shape;
        return one('reshape', { shape: [s[0], s.slice(1).reduce((a, b) => a * b, 1)] });
      }
      case 'reshape': {
        const shape = args[1];
        if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d))) throw new Fail('SC4001', span, 'reshape takes a list of sizes');
        return one('reshape', { shape });
      }
      case 'sum':
      case 'mean': {
        // Over every axis, or with keep_batch = true over every axis but the first (one value per cell).
        const keep = named.get('keep_batch') ?? false;
        const other = [...named.keys()].find((k) => k !== 'keep_batch');
        if (other || typeof keep !== 'boolean') throw new Fail('SC2004', span, other ? `${name} has no parameter '${other}'` : `${name}: keep_batch is true or false`, [`${name}(x) or ${name}(x, keep_batch = true)`]);
        const s = t(0).shape;
        return one(name === 'sum' ? 'reduce_sum' : 'reduce_mean', { axes: s.map((_, i) => i).slice(keep ? 1 : 0), keepdims: false });
      }
      case 'sse':
      case 'kld':
        return new Tensor(this.op(name, [t(0).v, t(1).v], {}, span)[0]);
      case 'reparam':
        return new Tensor(this.op('reparam', [t(0).v, t(1).v, t(2).v], {}, span)[0]);
      case 'randn': {
        const shape = args[0];
        if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d))) throw new Fail('SC4001', span, 'randn takes a list of sizes');
        const b = this.build!;
        if (this.debug.externalNoise) {
          const noise = { name: `noise${b.randomDraws++}`, shape: shape as number[] };
          b.extraInputs.push(noise);
          return new Tensor(b.g.input(noise.name, noise.shape));
        }
        const blocks = Math.ceil((shape as number[]).reduce((a, c) => a * c, 1) / 4);
        // Each draw of the program gets its own key; the counter moves on with the iteration.
        const seed = 0x5eed0000 + b.randomDraws++;
        return new Tensor(this.op('randn', [], { shape, seed, offset: 0 }, span, { offset: (r) => (r.draw ?? r.iteration ?? 0) * blocks })[0]);
      }
      case 'clamp': {
        const [x, lo, hi] = args;
        if (typeof lo !== 'number' || typeof hi !== 'number') throw new Fail('SC4003', span, 'clamp bounds must be compile-time numbers');
        if (typeof x === 'number') return Math.min(hi, Math.max(lo, x));
        if (x instanceof HostScalar) return new HostScalar((it) => Math.min(hi, Math.max(lo, x.at(it))));
        throw new Fail('SC4001', span, `clamp takes a number or a run-time scalar, got ${typeName(x)}`);
      }
      case 'len':
        if (!Array.isArray(args[0])) throw new Fail('SC4001', span, `len takes a list, got ${typeName(args[0])}`);
        return args[0].length;
      case 'prod':
        if (!Array.isArray(args[0])) throw new Fail('SC4001', span, `prod takes a list, got ${typeName(args[0])}`);
        return (args[0] as number[]).reduce((a, b) => a * b, 1);
      case 'repeat':
        return Array(n(1)).fill(args[0]);
      case 'given':
        return args[0] !== null && args[0] !== undefined;
      default:
        throw new Fail('SC2002', span, `${name} cannot be called here`);
    }
  }

  private binary(e: A.BinaryExpr, scope: Scope): Val {
    if (e.op === 'and' || e.op === 'or') {
      const l = this.truthy(this.evalIn(e.left, scope), e.left.span);
      if (e.op === 'and' ? !l : l) return l;
      return this.truthy(this.evalIn(e.right, scope), e.right.span);
    }
    const l = this.evalIn(e.left, scope);
    const r = this.evalIn(e.right, scope);
    switch (e.op) {
      case '==':
        return JSON.stringify(l) === JSON.stringify(r);
      case '!=':
        return JSON.stringify(l) !== JSON.stringify(r);
      case '<':
      case '<=':
      case '>':
      case '>=': {
        if (typeof l !== 'number' || typeof r !== 'number') throw new Fail('SC4003', e.span, `comparison needs compile-time numbers, got ${typeName(l)} and ${typeName(r)}`);
        return e.op === '<' ? l < r : e.op === '<=' ? l <= r : e.op === '>' ? l > r : l >= r;
      }
      default:
        return this.arith(e.op, l, r, e.span);
    }
  }

  /** + − × ÷ % ** on numbers (exact division of integers), lists (elementwise), run-time scalars and tensors. */
  private arith(op: string, l: Val, r: Val, span: Span): Val {
    if (Array.isArray(l) || Array.isArray(r)) {
      const n = Array.isArray(l) ? l.length : (r as Val[]).length;
      if (Array.isArray(l) && Array.isArray(r) && l.length !== r.length) throw new Fail('SC4001', span, `lists of lengths ${l.length} and ${r.length}`);
      return Array.from({ length: n }, (_, i) => this.arith(op, Array.isArray(l) ? l[i] : l, Array.isArray(r) ? r[i] : r, span));
    }
    if (typeof l === 'number' && typeof r === 'number') {
      switch (op) {
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
          if (Number.isInteger(l) && Number.isInteger(r)) {
            if (r === 0 || l % r !== 0) throw new Fail('SC3004', span, `${l} is not divisible by ${r}`, ['sizes divide exactly: choose an image size that every halving divides (e.g. multiples of 32 for five halvings)']);
            return l / r;
          }
          return l / r;
        case '%':
          return l % r;
        case '**':
          return l ** r;
      }
    }
    const host = (v: Val) => (v instanceof HostScalar ? v : typeof v === 'number' ? new HostScalar(() => v) : null);
    if ((l instanceof HostScalar || r instanceof HostScalar) && host(l) && host(r)) {
      const a = host(l)!;
      const b = host(r)!;
      const f = { '+': (x: number, y: number) => x + y, '-': (x: number, y: number) => x - y, '*': (x: number, y: number) => x * y, '/': (x: number, y: number) => x / y, '%': (x: number, y: number) => x % y, '**': (x: number, y: number) => x ** y }[op]!;
      return new HostScalar((it) => f(a.at(it), b.at(it)));
    }
    // Tensors: with a compile-time number use `scale`; otherwise a broadcasting op.
    const ops: Record<string, string> = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div' };
    if (!ops[op]) throw new Fail('SC4001', span, `'${op}' does not apply to ${typeName(l)} and ${typeName(r)}`);
    if (l instanceof Tensor && typeof r === 'number') {
      const attrs = op === '+' ? { a: 1, b: r } : op === '-' ? { a: 1, b: -r } : op === '*' ? { a: r, b: 0 } : { a: 1 / r, b: 0 };
      return new Tensor(this.op('scale', [l.v], attrs, span)[0]);
    }
    if (typeof l === 'number' && r instanceof Tensor && op !== '/') {
      const attrs = op === '+' ? { a: 1, b: l } : op === '-' ? { a: -1, b: l } : { a: l, b: 0 };
      return new Tensor(this.op('scale', [r.v], attrs, span)[0]);
    }
    const tv = (v: Val): Value => (v instanceof HostScalar ? this.hostInput(v) : this.tensorOf(v, span, `an operand of '${op}'`).v);
    return new Tensor(this.op(ops[op], [tv(l), tv(r)], {}, span)[0]);
  }

  /** A run-time scalar enters the graph as a [1] input the runtime fills each step. */
  private hostInput(h: HostScalar): Value {
    const b = this.build!;
    const name = `$scalar${b.hostScalars.length}`;
    b.hostScalars.push({ name, at: h.at });
    return b.g.input(name, [1]);
  }

  private tensorOf(v: Val, span: Span, what: string): Tensor {
    if (v instanceof Tensor) return v;
    throw new Fail('SC4001', span, `${what} must be a tensor, got ${typeName(v)}`);
  }

  private asDiagnostic(e: unknown): unknown {
    if (e instanceof Fail) return new DiagnosticError([diagnostic(e.code, e.span, e.message, { callStack: this.currentCalls(e), notes: e.notes })], this.load.sources);
    return e;
  }

  /** The chain of block call sites of a failure: set by the innermost block it happened in. */
  private failCalls = new WeakMap<Fail, CallSite[]>();
  private currentCalls(e: Fail): CallSite[] {
    return this.failCalls.get(e) ?? [];
  }

  private annotate(calls: CallSite[], f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof Fail && !this.failCalls.has(e)) this.failCalls.set(e, calls);
      throw e;
    }
  }
}

/** `--set name=value` as typed: strings as they are, the rest as JSON. */
const setText = (name: string, v: unknown): string => `--set ${name}=${typeof v === 'string' ? v : JSON.stringify(v)}`;

/** A type in words for `--set` errors: "an int", "a list of ints ([int])"; others by their text. */
const typeWords = (t: A.TypeExpr): string => {
  const words: Record<string, string> = { int: 'int', float: 'number', bool: 'bool (true or false)', str: 'string' };
  if (t.kind === 'NamedType' && t.name in words) return `${t.name === 'int' ? 'an' : 'a'} ${words[t.name]}`;
  if (t.kind === 'ListType' && t.element.kind === 'NamedType' && t.element.name in words) return `a list of ${words[t.element.name].split(' ')[0]}s (${typeText(t)})`;
  return `of type ${typeText(t)}`;
};

/** Every name bound in an environment chain (for "did you mean"). */
const envNames = (env: Env | undefined): string[] => (env ? [...env['vars'].keys(), ...envNames(env.parent)] : []);

const typeText = (t: A.TypeExpr): string =>
  t.kind === 'NamedType' ? t.name : t.kind === 'ListType' ? `[${typeText(t.element)}]` : t.kind === 'LiteralType' ? JSON.stringify(t.value) : t.kind === 'UnionType' ? t.options.map(typeText).join(' | ') : t.kind === 'ShapeType' ? shapeText(t) : 'tuple';

function exprText(e: A.Expr): string {
  switch (e.kind) {
    case 'Name':
      return e.name;
    case 'Number':
      return e.raw;
    case 'Binary':
      return `${exprText(e.left)}${e.op}${exprText(e.right)}`;
    default:
      return e.kind.toLowerCase();
  }
}

const shapeText = (t: A.ShapeType): string => `[${t.dims.map((d) => (d.kind === 'Spread' ? `...${exprText(d.argument)}` : exprText(d))).join(', ')}]`;
