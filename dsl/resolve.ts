// Static name resolution over the loaded files: every name an expression reads must be bound
// somewhere it can see, whether or not the parameters of a compile ever run that code (a
// misspelled layer in a branch taken only when `conditioned = true`, a block never called).
// Unknown names are SC2001 with "did you mean"; a model instance of an unknown model SC2012, an
// override the model lacks SC2004; an entry parameter without a shape that names no input SC2014.
//
// The scopes mirror how compiler/interpret.ts runs the language, and are generous where it is
// dynamic, so that nothing the compiler accepts is reported:
//   - globals: the blocks and top-level consts of every loaded file (the compiler keeps one
//     table for them all), and the prelude (layers and builtin functions, given by the compiler);
//   - a block: its parameters, its tensor inputs, the size variables its input and output shapes
//     bind (`x: [B, C, ...S]` binds B, C and S), and every name assigned anywhere in its body;
//   - a model: its parameters, its inputs and every name its body assigns (entries and training
//     steps excluded), for the body and for everything nested in it;
//   - an entry or training step: the model's names, `B` and `iteration`, its parameters, the size
//     variables its output shape binds, and every name its body assigns.
// A name bound anywhere in a body counts everywhere in it (the loop variable after the loop, a
// name assigned in one branch of an `if` read after it): order is the compiler's business.

import type * as A from './ast.ts';
import { bySource, MAX_RENDERED_DIAGNOSTICS, report, type Diagnostic, type DiagnosticBag, type DiagnosticCode, type MessageArgs, type Span } from './diagnostics.ts';
import { didYouMean } from './suggest.ts';

/** Names that a build binds in every entry point and training step. */
const BUILD_NAMES = ['B', 'iteration'];

class Scope {
  readonly names = new Set<string>();
  constructor(readonly parent?: Scope) {}
  has(name: string): boolean {
    return this.names.has(name) || !!this.parent?.has(name);
  }
  add(name: string): void {
    this.names.add(name);
  }
  /** Every name visible here, innermost first (as the compiler lists them for "did you mean"). */
  all(): string[] {
    return [...this.names, ...(this.parent?.all() ?? [])];
  }
}

/**
 * Reports every unknown name of `programs` (all the files of one load: their blocks, consts and
 * models see one another). `prelude`: the names every file sees besides its own (the compiler's
 * layers and builtin functions). Run it only on programs that parsed and loaded without errors.
 */
export function resolveNames(programs: Iterable<A.Program>, prelude: Iterable<string>, diags: DiagnosticBag): void {
  const progs = [...programs];
  const global = new Scope();
  const blocks: string[] = [];
  const models = new Map<string, A.ModelDecl | A.ModelInstance>();
  for (const p of progs)
    for (const d of p.decls) {
      if (d.kind === 'Const') global.add(d.name.name);
      if (d.kind === 'Block') blocks.push(d.name.name);
      if (d.kind === 'Model' || d.kind === 'ModelInstance') models.set(d.name.name, d);
    }
  const preludeNames = [...prelude];
  const top = new Scope(global);
  for (const n of [...blocks, ...preludeNames]) top.add(n);
  // "Did you mean": what is in scope first, then blocks, layers and functions, as the compiler offers them.
  const r = new Resolver((scope) => {
    const seen = new Set<string>();
    for (let s: Scope | undefined = scope; s; s = s.parent) if (s !== top) for (const n of s.names) seen.add(n);
    return [...seen, ...blocks, ...preludeNames];
  });

  for (const p of progs)
    for (const d of p.decls) {
      switch (d.kind) {
        case 'Const': r.expr(d.value, top); break;
        case 'Defaults': r.defaults(d, top); break;
        case 'Block': r.block(d, top); break;
        case 'Model': r.model(d, top); break;
        case 'ModelInstance': r.instance(d, top, models); break;
        default: break;
      }
    }
  r.flush(diags);
}

/** A model's name and the names of its inputs (every `input`, whatever its guard). */
interface ModelInfo {
  name: string;
  inputs: string[];
}

/** An unknown name found; its notes ("did you mean") are computed only if it is rendered. */
interface Finding {
  diagnostic: Diagnostic;
  notes: () => string[];
}

class Resolver {
  private readonly findings: Finding[] = [];
  constructor(readonly candidates: (scope: Scope) => string[]) {}

  private find<C extends DiagnosticCode>(code: C, span: Span, args: MessageArgs<C>, notes: () => string[]): void {
    this.findings.push({ diagnostic: report(code, span, args), notes });
  }

  /**
   * Reports the findings in source order. "Did you mean" compares a name with every name in
   * scope, so it is computed only for the findings that are rendered (the first by position): a
   * generated file with thousands of unknown names among thousands of bound ones would otherwise
   * take quadratic time.
   */
  flush(diags: DiagnosticBag): void {
    const sorted = [...this.findings].sort((a, b) => bySource(a.diagnostic.span, b.diagnostic.span));
    sorted.forEach((f, i) => diags.add(i < MAX_RENDERED_DIAGNOSTICS ? { ...f.diagnostic, notes: f.notes() } : f.diagnostic));
  }

  defaults(d: A.DefaultsDecl, scope: Scope): void {
    for (const l of d.layers) for (const a of l.args) this.expr(a.value, scope);
  }

  block(d: A.BlockDecl, outer: Scope): void {
    const scope = new Scope(outer);
    for (const p of d.params) scope.add(p.name.name);
    for (const i of d.inputs) scope.add(i.name.name);
    // Shapes bind their size variables on first sight (compiler/shapes.ts matchShape), inputs and output alike.
    const shapes = [...d.inputs.flatMap((i) => (i.shape ? [i.shape] : [])), d.output];
    for (const t of shapes) bindShape(t, scope);
    bindBody(d.body, scope, false);
    for (const p of d.params) if (p.default) this.expr(p.default, scope);
    for (const t of shapes) this.shape(t, scope, true);
    this.body(d.body, scope);
  }

  model(d: A.ModelDecl, outer: Scope): void {
    const scope = new Scope(outer);
    for (const p of d.params) scope.add(p.name.name);
    bindBody(d.body, scope, false);
    for (const p of d.params) if (p.default) this.expr(p.default, scope);
    // Input shapes are evaluated in builds, where the batch size B is bound.
    const build = new Scope(scope);
    for (const n of BUILD_NAMES) build.add(n);
    const inputs = d.body.flatMap((st) => (st.kind === 'Input' ? [st.name.name] : []));
    this.body(d.body, scope, build, { name: d.name.name, inputs });
  }

  instance(d: A.ModelInstance, scope: Scope, models: Map<string, A.ModelDecl | A.ModelInstance>): void {
    for (const a of d.overrides) this.expr(a.value, scope);
    if (!models.has(d.template.name)) {
      this.find('SC2012', d.template.span, { name: d.template.name }, () => didYouMean(d.template.name, models.keys()));
      return;
    }
    // The template the chain of instances ends in (a cycle is SC4019, the compiler's).
    const seen = new Set<string>([d.name.name]);
    let t = models.get(d.template.name)!;
    while (t.kind === 'ModelInstance') {
      if (seen.has(t.name.name) || !models.has(t.template.name)) return;
      seen.add(t.name.name);
      t = models.get(t.template.name)!;
    }
    const names = t.params.map((p) => p.name.name);
    for (const a of d.overrides) {
      if (a.name && !names.includes(a.name.name))
        this.find('SC2004', a.span, { owner: `model ${t.name.name}`, name: a.name.name }, () => [...didYouMean(a.name!.name, names), `parameters: ${names.join(', ')}`]);
    }
  }

  /** A body's statements; `build`: the scope of a model's input shapes (with B bound); `model`: the model they are in. */
  body(body: A.Stmt[], scope: Scope, build?: Scope, model?: ModelInfo): void {
    for (const s of body) {
      switch (s.kind) {
        case 'Assign': case 'Const': this.expr(s.value, scope); break;
        case 'Return': case 'Report': case 'Evaluate': for (const v of s.values) this.expr(v, scope); break;
        case 'For': this.expr(s.iterable, scope); this.body(s.body, scope, build, model); break;
        case 'If': this.expr(s.test, scope); this.body(s.then, scope, build, model); if (s.else) this.body(s.else, scope, build, model); break;
        case 'Assert': this.expr(s.test, scope); if (s.message) this.expr(s.message, scope); break;
        case 'Defaults': this.defaults(s, scope); break;
        case 'Minimize':
          this.expr(s.loss, scope);
          // `using adam(…)`: the callee names the optimiser, not a function in scope (another name is
          // the compiler's SC4014, which says what is allowed).
          if (s.optimizer?.kind === 'Call' && s.optimizer.callee.kind === 'Name') for (const a of s.optimizer.args) this.expr(a.value, scope);
          else if (s.optimizer && s.optimizer.kind !== 'Name') this.expr(s.optimizer, scope);
          break;
        case 'Input':
          this.shape(s.shape, build ?? scope, false);
          if (s.role) for (const a of s.role.args) this.expr(a.value, scope);
          if (s.guard) this.expr(s.guard, scope);
          break;
        case 'Entry': case 'Train': if (model) this.step(s, scope, model); break;
      }
    }
  }

  /** An entry point or the training step, in a build below the model's scope. */
  step(s: A.EntryStmt | A.TrainStmt, scopeOfModel: Scope, model: ModelInfo): void {
    const scope = new Scope(scopeOfModel);
    for (const n of BUILD_NAMES) scope.add(n);
    for (const p of s.params) scope.add(p.name.name);
    const output = s.kind === 'Entry' ? s.output : undefined;
    if (output) bindShape(output, scope);
    bindBody(s.body, scope, true);
    for (const p of s.params) {
      if (p.shape) this.shape(p.shape, scope, false);
      // A bare name is the model's input of that name (whatever its guard says).
      else if (!model.inputs.includes(p.name.name)) this.find('SC2014', p.name.span, { name: p.name.name, model: model.name }, () => didYouMean(p.name.name, model.inputs));
    }
    if (output) this.shape(output, scope, true);
    this.body(s.body, scope);
  }

  /** The names a type reads. `pattern`: a bare size name or `...name` binds it (already done), so only the rest is read. */
  shape(t: A.TypeExpr, scope: Scope, pattern: boolean): void {
    switch (t.kind) {
      case 'ShapeType':
        for (const d of t.dims) {
          const e = d.kind === 'Spread' ? d.argument : d;
          if (pattern && e.kind === 'Name') continue;
          this.expr(e, scope);
        }
        break;
      case 'TupleType': for (const e of t.elements) this.shape(e, scope, pattern); break;
      case 'ListType': this.shape(t.element, scope, pattern); break;
      case 'UnionType': for (const o of t.options) this.shape(o, scope, pattern); break;
      default: break;
    }
  }

  expr(root: A.Expr | A.Spread, scope: Scope): void {
    // An explicit stack: a long chain of operators must not overflow the call stack here.
    const stack: (A.Expr | A.Spread)[] = [root];
    while (stack.length) {
      const e = stack.pop()!;
      switch (e.kind) {
        case 'Name':
          if (e.name !== '_' && !scope.has(e.name)) this.find('SC2001', e.span, { name: e.name }, () => didYouMean(e.name, this.candidates(scope)));
          break;
        case 'Spread': stack.push(e.argument); break;
        case 'List': for (let i = e.elements.length - 1; i >= 0; i--) stack.push(e.elements[i]); break;
        case 'Binary': stack.push(e.right, e.left); break;
        case 'Unary': stack.push(e.operand); break;
        case 'Call': for (let i = e.args.length - 1; i >= 0; i--) stack.push(e.args[i].value); stack.push(e.callee); break;
        case 'Index': stack.push(e.index, e.object); break;
        case 'Pipe': stack.push(e.stage, e.input); break;
        case 'Range': stack.push(e.end, e.start); break;
        case 'Conditional': stack.push(e.else, e.then, e.test); break;
        case 'Labeled':
          stack.push(e.expr);
          if (e.label.index) stack.push({ kind: 'Name', name: e.label.index.name, span: e.label.index.span });
          break;
        default: break;
      }
    }
  }
}

/** The size variables a shape pattern binds: a bare name (`B`) or a spread of one (`...S`); `_` binds nothing. */
function bindShape(t: A.TypeExpr, scope: Scope): void {
  if (t.kind === 'TupleType') for (const e of t.elements) bindShape(e, scope);
  if (t.kind !== 'ShapeType') return;
  for (const d of t.dims) {
    const e = d.kind === 'Spread' ? d.argument : d;
    if (e.kind === 'Name' && e.name !== '_') scope.add(e.name);
  }
}

/** Every name a body binds, in nested for/if bodies too (entries and training steps are scopes of their own). */
function bindBody(body: A.Stmt[], scope: Scope, inStep: boolean): void {
  for (const s of body) {
    switch (s.kind) {
      case 'Assign': for (const t of s.targets) scope.add(t.name); break;
      case 'Const': scope.add(s.name.name); break;
      case 'For': scope.add(s.variable.name); bindBody(s.body, scope, inStep); break;
      case 'If': bindBody(s.then, scope, inStep); if (s.else) bindBody(s.else, scope, inStep); break;
      case 'Input': if (!inStep) scope.add(s.name.name); break;
      default: break;
    }
  }
}
