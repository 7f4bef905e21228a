// The compile-time interpreter: it runs the model language with every parameter, loop bound
// and condition known, inlining blocks (each call site's instance names prefix its parameter
// names) and checking shapes at block boundaries, while the layer and builtin libraries add the
// graph IR of the build in progress. Errors are `Fail`s, turned into diagnostics with the chain
// of block call sites (`asDiagnostic`).

import type * as A from '../dsl/ast.ts';
import { forEachExpr } from '../dsl/check.ts';
import { diagnostic, DiagnosticError, formatLocation, type CallSite, type Span } from '../dsl/diagnostics.ts';
import type { LoadResult } from '../dsl/load.ts';
import { didYouMean } from '../dsl/suggest.ts';
import { OpError } from '../kernels/types.ts';
import { arith } from './arith.ts';
import { BUILTINS, callBuiltin, isBuiltin } from './builtins.ts';
import { checkElements, checkList, MAX_BLOCK_DEPTH, MAX_ITERATIONS, MAX_LIST, MAX_NODES, MAX_STEPS } from './limits.ts';
import { Fail, fail, Return, type Build, type BuildContext, type DebugOptions, type Scope } from './context.ts';
import { Graph, type Value } from './ir.ts';
import { isLayer, LAYER_NAMES, LAYERS, layerAttributes, lowerLayer } from './layers.ts';
import type { Init, TensorSpec } from './model.ts';
import { checkShapes, matchShape, type ShapeHost } from './shapes.ts';
import { checkType } from './typecheck.ts';
import { Callee, Configured, Env, HostScalar, GraphTensor, listSize, Tuple, typeName, type LayerKind, type Val } from './values.ts';

/** A block without compile-time parameters: its one list is its tensor inputs (`Head(f)`, `f |> Head(ref = r)`). */
const takesInputsFirst = (c: Callee): boolean => c.target.kind === 'block' && c.target.decl.params.length === 0;

export class Interpreter implements BuildContext, ShapeHost {
  /** Top-level `const`s of every file. */
  readonly globals = new Env();
  readonly blocks = new Map<string, { decl: A.BlockDecl; file: string }>();
  /** Each file's top-level `defaults`, by layer. */
  readonly fileDefaults = new Map<string, Map<string, Map<string, Val>>>();
  /** Every parameter and state tensor met in any build, by checkpoint name. */
  readonly specs = new Map<string, TensorSpec>();
  /** The model's parameters after defaults and overrides. */
  readonly params = new Map<string, Val>();
  /** Where a model instance's override or `--set` gave a parameter: a failing assert reading it points there. */
  readonly givenAt = new Map<string, Span>();
  /** The build in progress. */
  build: Build | null = null;
  /** A label waiting for the layer or block call it names. */
  private pendingLabel: string | undefined;

  constructor(
    readonly load: LoadResult,
    readonly debug: DebugOptions,
  ) {}

  scopeOf(env: Env): Scope {
    return { env, path: '', calls: [], defaults: new Map(), names: new Set(), block: '' };
  }

  evalConst(e: A.Expr): Val {
    return this.evalIn(e, this.scopeOf(this.globals));
  }

  /** `defaults conv(sn = true), …` into the layer defaults `into` (SC2015 for something not a layer). */
  addDefaults(into: Map<string, Map<string, Val>>, d: A.DefaultsDecl, env: Env): void {
    for (const l of d.layers) {
      if (!isLayer(l.layer.name)) fail('SC2015', l.layer.span, { name: l.layer.name, layers: LAYER_NAMES });
      const m = new Map(into.get(l.layer.name));
      for (const a of l.args) m.set(a.name?.name ?? '', this.evalIn(a.value, this.scopeOf(env)));
      into.set(l.layer.name, m);
    }
  }

  /** Loop iterations run in the current build (MAX_ITERATIONS). */
  private iterations = 0;
  /** Work done in the current build (MAX_STEPS): expressions evaluated, list elements made. */
  private steps = 0;

  /** Counts `n` steps of work, SC4018 at `span` past MAX_STEPS. */
  spend(n: number, span: Span): void {
    this.steps += n;
    if (this.steps > MAX_STEPS)
      fail('SC4018', span, { what: 'the compile-time work of one build (expressions evaluated and list elements made)', limit: `${MAX_STEPS.toLocaleString('en-US')} steps` });
  }

  /** Runs `f` on a fresh build of `batch` below `base` (the model's scope), where `B` and `iteration` are bound. */
  withBuild<R>(batch: number, training: boolean, base: Scope, f: (b: Build, scope: Scope) => R): R {
    const b: Build = { g: new Graph(), training, batch, tensors: new Map(), hostScalars: [], randomDraws: 0, log: [], reports: [], evaluations: [], extraInputs: [] };
    this.build = b;
    this.iterations = 0;
    this.steps = 0;
    const env = new Env(base.env);
    env.set('B', batch);
    env.set('iteration', new HostScalar((it) => it));
    try {
      return f(b, { ...base, env, names: new Set() });
    } catch (e) {
      throw this.asDiagnostic(e);
    } finally {
      this.build = null;
    }
  }

  // ---- statements ------------------------------------------------------------------------

  execBody(body: A.Stmt[], scope: Scope): void {
    for (const s of body) this.exec(s, scope);
  }

  exec(s: A.Stmt, scope: Scope): void {
    switch (s.kind) {
      case 'Assign': {
        let v = this.evalIn(s.value, scope);
        if (s.targets.length === 1) {
          // A block whose parameters all have defaults binds as if configured: `pre = Refine` is `pre = Refine()`.
          if (v instanceof Callee && v.target.kind === 'block' && v.target.decl.params.every((p) => p.default)) v = new Configured(v.target, new Map(), undefined, s.value.span);
          // Binding an unapplied layer or block names the instance after the variable.
          if (v instanceof Configured && !v.label) v.label = s.targets[0].name;
          scope.env.set(s.targets[0].name, v);
        } else {
          const items = v instanceof Tuple ? v.items : null;
          if (!items || items.length !== s.targets.length) fail('SC4006', s.span, { names: s.targets.length, values: items ? items.length : 1 });
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
        if (!Array.isArray(it)) fail('SC4003', s.iterable.span, { what: 'a for loop', wants: 'needs a compile-time list or range', got: typeName(it) });
        for (const x of it) {
          // A budget on the loops of one build, so that a model cannot run the compiler for hours.
          if (++this.iterations > MAX_ITERATIONS) fail('SC4018', s.span, { what: 'the compile-time loop iterations of one build', limit: MAX_ITERATIONS.toLocaleString('en-US') });
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
          // The assert is in the template; what to change is the argument that the user gave.
          const read = new Set<string>();
          forEachExpr(s.test, (x) => x.kind === 'Name' && this.givenAt.has(x.name) && scope.env.get(x.name) === this.params.get(x.name) && read.add(x.name));
          const notes = [...read].map((n) => `${n} = ${JSON.stringify(this.params.get(n))} is given ${this.givenAt.get(n)!.line ? `at ${formatLocation(this.givenAt.get(n)!)}` : `by ${this.givenAt.get(n)!.file}`}`);
          fail('SC4002', s.test.span, { message: typeof msg === 'string' ? msg : undefined }, notes);
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
          if (s.optimizer.kind !== 'Call' || s.optimizer.callee.kind !== 'Name' || s.optimizer.callee.name !== 'adam') fail('SC4014', s.optimizer.span, { problem: 'not adam' });
          for (const a of s.optimizer.args) {
            if (!a.name || !['lr', 'beta1', 'beta2', 'eps'].includes(a.name.name)) fail('SC4014', a.span, { problem: 'arguments' });
            optimizer.set(a.name.name, this.evalIn(a.value, scope));
          }
        }
        b.loss = { value: this.evalIn(s.loss, scope), span: s.loss.span, optimizer };
        return;
      }
      case 'Report':
      case 'Evaluate':
        for (const e of s.values) {
          const statement: 'report' | 'evaluate' = s.kind === 'Report' ? 'report' : 'evaluate';
          if (e.kind !== 'Name') fail('SC4016', e.span, { statement });
          const value = this.evalIn(e, scope);
          if (s.kind === 'Report') this.build!.reports.push({ name: e.name, value, span: e.span });
          else {
            const t = this.tensorOf(value, e.span, `evaluated value ${e.name}`);
            if (t.shape.length !== 1 || t.shape[0] !== this.build!.batch) fail('SC3009', e.span, { batch: this.build!.batch, name: e.name, shape: t.shape }, ['sum over every axis but the batch with sum(x, keep_batch = true)']);
            this.build!.evaluations.push({ name: e.name, value, span: e.span });
          }
        }
        return;
      default:
        fail('SC1101', s.span, { keyword: s.kind.toLowerCase() });
    }
  }

  truthy(v: Val, span: Span): boolean {
    if (typeof v !== 'boolean') fail('SC4003', span, { what: 'a condition', wants: 'must be a compile-time true/false', got: typeName(v) });
    return v;
  }

  // ---- expressions -----------------------------------------------------------------------

  evalIn(e: A.Expr, scope: Scope): Val {
    this.spend(1, e.span);
    switch (e.kind) {
      case 'Number':
        if (!Number.isFinite(e.value)) fail('SC4020', e.span, { what: e.raw, value: e.value });
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
        if (isLayer(e.name)) return new Callee({ kind: 'layer', layer: e.name });
        if (isBuiltin(e.name)) return new Callee({ kind: 'builtin', name: e.name });
        fail('SC2001', e.span, { name: e.name }, didYouMean(e.name, [...scope.env.names(), ...this.blocks.keys(), ...LAYER_NAMES, ...Object.keys(BUILTINS)]));
      }
      case 'List': {
        const out: Val[] = [];
        for (const el of e.elements) {
          if (el.kind === 'Spread') {
            const v = this.evalIn(el.argument, scope);
            if (!Array.isArray(v)) fail('SC4007', el.span, { got: typeName(v) });
            if (out.length + v.length > MAX_LIST) fail('SC4018', el.span, { what: `a list of ${(out.length + v.length).toLocaleString('en-US')} elements`, limit: `${MAX_LIST.toLocaleString('en-US')} elements` });
            // One by one: `push(...v)` passes v as arguments, over V8's stack for some 10^5 elements.
            for (const x of v) out.push(x);
          } else out.push(this.evalIn(el, scope));
        }
        this.spend(out.length, e.span);
        checkList(out, e.span);
        return out;
      }
      case 'Range': {
        const a = this.evalIn(e.start, scope);
        const b = this.evalIn(e.end, scope);
        if (!Number.isInteger(a) || !Number.isInteger(b)) fail('SC4003', e.span, { what: 'a range', wants: 'needs compile-time integers' });
        if ((b as number) - (a as number) > MAX_LIST) fail('SC4018', e.span, { what: `the range ${a}..${b}`, limit: `${MAX_LIST.toLocaleString('en-US')} elements` });
        const n = Math.max(0, (b as number) - (a as number));
        this.spend(n, e.span);
        return Array.from({ length: n }, (_, i) => (a as number) + i);
      }
      case 'Conditional':
        return this.truthy(this.evalIn(e.test, scope), e.test.span) ? this.evalIn(e.then, scope) : this.evalIn(e.else, scope);
      case 'Unary': {
        const v = this.evalIn(e.operand, scope);
        if (e.op === 'not') return !this.truthy(v, e.span);
        return arith(this, '*', -1, v, e.span);
      }
      case 'Binary':
        return this.binary(e, scope);
      case 'Index': {
        const o = this.evalIn(e.object, scope);
        const i = this.evalIn(e.index, scope);
        if (!Array.isArray(o) || !Number.isInteger(i)) fail('SC4008', e.span, { object: typeName(o), index: typeName(i) });
        const k = (i as number) < 0 ? o.length + (i as number) : (i as number);
        if (k < 0 || k >= o.length) fail('SC4009', e.index.span, { index: i as number, length: o.length });
        return o[k];
      }
      case 'Labeled': {
        // The label names the first layer or block configured inside (`cond_ref: Cond(c)(ref)`).
        const idx = e.label.index ? this.evalIn({ kind: 'Name', name: e.label.index.name, span: e.label.index.span }, scope) : '';
        this.pendingLabel = `${e.label.base}${idx}`;
        const v = this.evalIn(e.expr, scope);
        if (this.pendingLabel !== undefined) {
          this.pendingLabel = undefined;
          fail('SC1105', e.label.span, {});
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
        fail('SC1001', e.span, { detail: 'this part did not parse' });
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
      case '!=': {
        // Compile-time values compare by value; a tensor printed as JSON compared equal to any other of its shape.
        const plain = (v: Val): boolean => v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || (Array.isArray(v) && v.every(plain));
        // Comparing lists walks them: work in proportion to their size.
        for (const v of [l, r]) if (Array.isArray(v)) this.spend(listSize(v).elements, e.span);
        if (l !== null && r !== null && (!plain(l) || !plain(r))) fail('SC4003', e.span, { what: 'comparison', wants: 'needs compile-time values', got: `${typeName(l)} and ${typeName(r)}` });
        return (JSON.stringify(l) === JSON.stringify(r)) === (e.op === '==');
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        if (typeof l !== 'number' || typeof r !== 'number') fail('SC4003', e.span, { what: 'comparison', wants: 'needs compile-time numbers', got: `${typeName(l)} and ${typeName(r)}` });
        return e.op === '<' ? l < r : e.op === '<=' ? l <= r : e.op === '>' ? l > r : l >= r;
      }
      default:
        return arith(this, e.op, l, r, e.span);
    }
  }

  /** `x |> stage`: the stage called with x as its first tensor input. */
  private applyStage(stage: A.Expr, x: Val, scope: Scope, span: Span): Val {
    let label: A.InstanceName | undefined;
    if (stage.kind === 'Labeled') {
      label = stage.label;
      stage = stage.expr;
    }
    let callable = this.evalIn(stage.kind === 'Call' ? stage.callee : stage, scope);
    let args = stage.kind === 'Call' ? stage.args : [];
    // `conv(32, k = 1)` and `Down(32)`: the arguments configure; x is then the input. A bare
    // `x |> Head` is `x |> Head()`; a block without parameters takes its arguments as inputs.
    if (callable instanceof Callee && callable.target.kind !== 'builtin') {
      const inputs = takesInputsFirst(callable);
      callable = this.configure(callable, inputs ? [] : args, scope, stage.span);
      if (!inputs) args = [];
    }
    if (label && callable instanceof Configured) {
      const idx = label.index ? scope.env.get(label.index.name) : '';
      callable.label = `${label.base}${idx}`;
    } else if (label) fail('SC1105', label.span, {});
    return this.invoke(callable, [x], args, scope, stage.span ?? span);
  }

  private call(e: A.CallExpr, scope: Scope): Val {
    const callee = this.evalIn(e.callee, scope);
    if (callee instanceof Callee && callee.target.kind !== 'builtin') {
      // `Head(f)` is `Head()(f)`: with nothing to configure, the first call takes the inputs.
      if (takesInputsFirst(callee) && e.args.length) return this.invoke(this.configure(callee, [], scope, e.callee.span), [], e.args, scope, e.span);
      return this.configure(callee, e.args, scope, e.span);
    }
    return this.invoke(callee, [], e.args, scope, e.span);
  }

  /** A layer's or block's first call: its compile-time parameters. */
  private configure(c: Callee, args: A.Argument[], scope: Scope, span: Span): Configured {
    const t = c.target as Exclude<Callee['target'], { kind: 'builtin' }>;
    const names = t.kind === 'layer' ? LAYERS[t.layer].params : t.decl.params.map((p) => p.name.name);
    const owner = t.kind === 'layer' ? `layer ${t.layer}` : `block ${t.decl.name.name}`;
    const given = new Map<string, Val>();
    args.forEach((a, i) => {
      const name = a.name?.name ?? names[i];
      if (name === undefined || !names.includes(name)) {
        const form = t.kind === 'layer' ? `${t.layer}(${names[0]}, …)(x)` : `${t.decl.name.name}(${names.join(', ')})(${t.decl.inputs.map((p) => p.name.name).join(', ')})`;
        const usage = `write ${form}: the compile-time parameters first, then the tensor inputs`;
        if (a.name) fail('SC2004', a.span, { owner, name: a.name.name }, [...didYouMean(a.name.name, names), `parameters: ${names.join(', ')}`]);
        fail('SC2016', a.span, { owner, takes: `${names.length} parameter(s)`, argument: i + 1 }, [`parameters: ${names.join(', ')}`, usage]);
      }
      if (given.has(name)) fail('SC2011', a.span, { owner, name });
      given.set(name, this.evalIn(a.value, scope));
    });
    const label = this.pendingLabel;
    this.pendingLabel = undefined;
    return new Configured(t, given, label, span);
  }

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
      return callBuiltin(this, f.target.name, positional, named, span);
    }
    fail('SC2002', span, { what: typeName(f) });
  }

  // ---- layers and blocks -----------------------------------------------------------------

  /** A layer or labelled block instance takes its name in the calling block (SC2008, SC2006). */
  private claimInstance(c: Configured, scope: Scope, what: 'layer' | 'block', name: string): string {
    if (!c.label) fail('SC2008', c.span, { what, name });
    if (scope.names.has(c.label) && !this.isSharedInstance(scope, c)) fail('SC2006', c.span, { name: c.label, block: scope.block });
    scope.names.add(c.label);
    return c.label;
  }

  /** An instance bound to a variable (`enc = Encoder(…)`) may be called more than once. */
  private isSharedInstance(scope: Scope, c: Configured): boolean {
    for (let e: Env | undefined = scope.env; e; e = e.parent) if (e.get(c.label!) === c) return true;
    return false;
  }

  private applyLayer(c: Configured, leading: Val[], args: A.Argument[], scope: Scope, span: Span): Val {
    const layer = (c.target as { layer: LayerKind }).layer;
    const label = this.claimInstance(c, scope, 'layer', layer);
    if (scope.unnamed) {
      // The weights' checkpoint names would lack the block's segment: the call must name it.
      const u = scope.unnamed;
      const e = new Fail('SC2008', u.span, { what: 'block', name: u.block, holds: `layer ${label}: ${layer}` });
      this.failCalls.set(e, u.calls);
      throw e;
    }
    // From a pipe (`x |> l: linear(4)`) the tensor leads; from a call (`l: linear(4)(x)`) it is the argument.
    if (leading.length + args.length !== 1 || args.some((a) => a.name)) fail('SC2016', span, { owner: `layer ${layer}`, takes: 'one tensor' }, [`write ${label}: ${layer}(…)(x) or x |> ${label}: ${layer}(…)`]);
    const x = this.tensorOf(leading.length ? leading[0] : this.evalIn(args[0].value, scope), span, `the input of ${layer}`);
    const a = layerAttributes(layer, scope.defaults.get(layer), c.args);
    const path = scope.path ? `${scope.path}.${label}` : label;
    this.checkNodes(span);
    return lowerLayer(this, layer, a, x, { path, owner: scope.path || label, span, configSpan: c.span });
  }

  private inlineBlock(c: Configured, leading: Val[], args: A.Argument[], scope: Scope, span: Span): Val {
    const { decl, file } = c.target as { kind: 'block'; decl: A.BlockDecl; file: string };
    const block = `block ${decl.name.name}`;
    // A block without weights needs no instance name; one with weights is SC2008 at its first layer.
    const label = c.label ? this.claimInstance(c, scope, 'block', decl.name.name) : undefined;
    const site: CallSite = { block: decl.name.name, span };
    // A block may call itself (with a base case); one that never stops ends here, at its call.
    if (scope.calls.length >= MAX_BLOCK_DEPTH)
      fail('SC4018', span, { what: `block calls nested ${scope.calls.length + 1} deep (${decl.name.name} ${scope.calls.some((c) => c.block === decl.name.name) ? 'calls itself' : 'is called'})`, limit: `${MAX_BLOCK_DEPTH} levels` });
    const env = new Env(this.globals);
    for (const p of decl.params) {
      const v = c.args.has(p.name.name) ? c.args.get(p.name.name)! : p.default ? this.evalIn(p.default, { ...scope, env }) : undefined;
      if (v === undefined) fail('SC2005', c.span, { owner: block, name: p.name.name, kind: 'parameter' });
      checkType(v, p.type, p.name.name, c.span);
      env.set(p.name.name, v);
    }
    // Tensor inputs: positional then named; optional ones default to none.
    const given = new Map<string, Val>();
    leading.forEach((v, i) => decl.inputs[i] && given.set(decl.inputs[i].name.name, v));
    let pos = leading.length;
    for (const a of args) {
      const name = a.name?.name ?? decl.inputs[pos++]?.name.name;
      if (!name || !decl.inputs.some((i) => i.name.name === name)) {
        if (a.name) fail('SC2004', a.span, { owner: block, name: a.name.name, input: true }, didYouMean(a.name.name, decl.inputs.map((i) => i.name.name)));
        fail('SC2016', a.span, { owner: block, takes: `${decl.inputs.length} input(s)` });
      }
      given.set(name, this.evalIn(a.value, scope));
    }
    const inner: Scope = {
      env,
      path: label === undefined ? scope.path : scope.path ? `${scope.path}.${label}` : label,
      calls: [site, ...scope.calls],
      defaults: new Map(this.fileDefaults.get(file)),
      names: new Set(),
      block: decl.name.name,
      unnamed: label === undefined ? { block: decl.name.name, span: c.span, calls: scope.calls } : scope.unnamed,
    };
    for (const [k, v] of scope.defaults) if (!inner.defaults.has(k)) inner.defaults.set(k, v);
    // Bind and check the input shapes at the boundary: errors there belong to the call site.
    this.annotate(scope.calls, () => {
      for (const inp of decl.inputs) {
        const v = given.has(inp.name.name) ? given.get(inp.name.name)! : null;
        if (v === null) {
          if (!inp.optional) fail('SC2005', span, { owner: block, name: inp.name.name, kind: 'input' });
          env.set(inp.name.name, null);
          continue;
        }
        const t = this.tensorOf(v, span, `input '${inp.name.name}' of ${block}`);
        if (inp.shape) matchShape(this, t.shape, inp.shape, inner, span, `input '${inp.name.name}' of ${block}`);
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
      checkShapes(this, items, decl.output, inner, returnSpan, `the output of ${block}`);
    });
    return result;
  }

  // ---- the graph -------------------------------------------------------------------------

  op(name: string, inputs: Value[], attrs: Record<string, unknown>, span: Span, dynamic?: Parameters<Graph['call']>[3]): Value[] {
    this.checkNodes(span);
    try {
      const outs = this.build!.g.call(name, inputs, attrs, dynamic);
      for (const o of outs) checkElements(o.shape, span);
      return outs;
    } catch (e) {
      if (e instanceof OpError) fail(name === 'add' || name === 'sub' || name === 'mul' || name === 'div' ? 'SC3003' : 'SC3011', span, { reason: e.message });
      throw e;
    }
  }

  /** SC4018 at `span` when the build's graph has reached MAX_NODES (layers add theirs directly, a few per call). */
  private checkNodes(span: Span): void {
    if (this.build!.g.nodes.length >= MAX_NODES) fail('SC4018', span, { what: 'the graph of one build', limit: `${MAX_NODES.toLocaleString('en-US')} ops` });
  }

  param(name: string, shape: number[], kind: 'param' | 'state', init: Init, owner: string, span: Span): Value {
    const b = this.build!;
    checkElements(shape, span);
    const known = this.specs.get(name);
    if (known && known.shape.join() !== shape.join())
      fail('SC3012', span, { name, first: known.shape, second: shape }, ['an instance used more than once (bound to a variable) takes inputs of one shape']);
    if (!known) this.specs.set(name, { name, shape, kind, init, owner });
    let v = b.tensors.get(name);
    if (!v) {
      v = b.g.input(name, shape, kind);
      b.tensors.set(name, v);
    }
    return v;
  }

  /** A run-time scalar enters the graph as a [1] input the runtime fills each step. */
  hostInput(h: HostScalar): Value {
    const b = this.build!;
    const name = `$scalar${b.hostScalars.length}`;
    b.hostScalars.push({ name, at: h.at });
    return b.g.input(name, [1]);
  }

  tensorOf(v: Val, span: Span, what: string): GraphTensor {
    if (v instanceof GraphTensor) return v;
    fail('SC4013', span, { what, got: typeName(v) });
  }

  // ---- diagnostics -----------------------------------------------------------------------

  /** A `Fail` as a DiagnosticError with its chain of block call sites; anything else as it is. */
  asDiagnostic(e: unknown): unknown {
    if (e instanceof Fail) return new DiagnosticError([diagnostic(e.code, e.span, e.message, { callStack: this.failCalls.get(e) ?? [], notes: e.notes })], this.load.sources);
    return e;
  }

  /** The chain of block call sites of a failure: set by the innermost block it happened in. */
  private failCalls = new WeakMap<Fail, CallSite[]>();

  private annotate(calls: CallSite[], f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof Fail && !this.failCalls.has(e)) this.failCalls.set(e, calls);
      throw e;
    }
  }
}
