// Structural checks on the AST that need no name resolution: which statements may appear where,
// duplicates, missing results, instance names on non-calls, named model overrides, parameter
// order. Everything needing scopes, shapes or values belongs to the compiler.

import type * as A from './ast.ts';
import { DiagnosticBag, type MessageArgs } from './diagnostics.ts';

type Context = 'block' | 'model' | 'entry' | 'train';

const allowed: Record<Context, ReadonlySet<A.Stmt['kind']>> = {
  block: new Set(['Assign', 'Return', 'For', 'If', 'Assert', 'Const', 'Defaults']),
  model: new Set(['Assign', 'For', 'If', 'Assert', 'Const', 'Defaults', 'Input', 'Entry', 'Train']),
  entry: new Set(['Assign', 'Return', 'For', 'If', 'Assert', 'Const', 'Defaults']),
  train: new Set(['Assign', 'For', 'If', 'Assert', 'Const', 'Defaults', 'Minimize', 'Report', 'Evaluate']),
};

const where: Record<Context, string> = { block: 'a block', model: 'a model body', entry: 'an entry point', train: 'a training step' };

const homes: Partial<Record<A.Stmt['kind'], string>> = {
  Return: 'blocks and entry points',
  Input: 'model bodies',
  Entry: 'model bodies',
  Train: 'model bodies',
  Minimize: 'training steps',
  Report: 'training steps',
  Evaluate: 'training steps',
};

const keywordOf: Partial<Record<A.Stmt['kind'], string>> = {
  Return: 'return', Input: 'input', Entry: 'entry', Train: 'train', Minimize: 'minimize', Report: 'report', Evaluate: 'evaluate',
};

export function checkProgram(program: A.Program, diags: DiagnosticBag): void {
  const top = new Map<string, A.Identifier>();
  for (const d of program.decls) {
    if (d.kind === 'Import' || d.kind === 'Defaults') continue;
    unique(top, d.name, 'SC1102', 'declaration', diags);
    if (d.kind === 'Const') checkExpr(d.value, diags);
    if (d.kind === 'Block') {
      checkParams(d.params, diags);
      const names = new Map<string, A.Identifier>();
      for (const p of [...d.params, ...d.inputs]) unique(names, p.name, 'SC1103', 'parameter or input', diags);
      checkBody(d.body, 'block', diags);
      if (!containsReturn(d.body)) diags.report('SC1104', d.name.span, { what: 'block', name: d.name.name }, { notes: ['end the block with: return <expression>'] });
    }
    if (d.kind === 'Model') {
      checkParams(d.params, diags);
      const names = new Map<string, A.Identifier>();
      for (const p of d.params) unique(names, p.name, 'SC1103', 'parameter', diags);
      checkBody(d.body, 'model', diags);
      const inputs = new Map<string, A.Identifier>();
      const entries = new Map<string, A.Identifier>();
      walkStmts(d.body, (s) => {
        if (s.kind === 'Input') unique(inputs, s.name, 'SC1103', 'model input', diags);
        if (s.kind === 'Entry' || s.kind === 'Train') {
          unique(entries, s.name, 'SC1102', 'entry point', diags);
          const params = new Map<string, A.Identifier>();
          for (const p of s.params) unique(params, p.name, 'SC1103', 'entry parameter', diags);
        }
      });
    }
    if (d.kind === 'ModelInstance') {
      for (const a of d.overrides) {
        if (!a.name) diags.report('SC1108', a.span, { model: d.name.name, template: d.template.name }, { notes: ['write name = value, e.g. dims = 3'] });
        checkExpr(a.value, diags);
      }
      const seen = new Map<string, A.Identifier>();
      for (const a of d.overrides) if (a.name) unique(seen, a.name, 'SC1103', 'override', diags);
    }
  }
}

function unique<C extends 'SC1102' | 'SC1103'>(seen: Map<string, A.Identifier>, id: A.Identifier, code: C, what: MessageArgs<C>['what'], diags: DiagnosticBag): void {
  const prev = seen.get(id.name);
  if (prev) diags.report(code, id.span, { what, name: id.name, line: prev.span.line, col: prev.span.col } as MessageArgs<C>, { notes: ['rename one of them'] });
  else seen.set(id.name, id);
}

function checkParams(params: A.ParamDecl[], diags: DiagnosticBag): void {
  let firstDefault: A.ParamDecl | undefined;
  for (const p of params) {
    if (p.default) {
      firstDefault ??= p;
      checkExpr(p.default, diags);
    } else if (firstDefault) {
      diags.report('SC1110', p.name.span, { name: p.name.name, after: firstDefault.name.name }, { notes: ['put parameters with defaults last, or give this one a default'] });
    }
  }
}

function checkBody(body: A.Stmt[], ctx: Context, diags: DiagnosticBag): void {
  for (const s of body) {
    if (!allowed[ctx].has(s.kind)) {
      const kw = keywordOf[s.kind] ?? s.kind.toLowerCase();
      const home = homes[s.kind];
      diags.report('SC1101', s.span, { keyword: kw, place: where[ctx], home });
    }
    switch (s.kind) {
      case 'For': checkExpr(s.iterable, diags); checkBody(s.body, ctx, diags); break;
      case 'If': checkExpr(s.test, diags); checkBody(s.then, ctx, diags); if (s.else) checkBody(s.else, ctx, diags); break;
      case 'Entry':
        checkBody(s.body, 'entry', diags);
        if (!containsReturn(s.body)) diags.report('SC1104', s.name.span, { what: 'entry point', name: s.name.name }, { notes: ['end it with: return <expression>'] });
        break;
      case 'Train':
        checkBody(s.body, 'train', diags);
        if (!someStmt(s.body, (t) => t.kind === 'Minimize')) diags.report('SC1113', s.name.span, { step: s.name.name }, { notes: ['state it with: minimize <loss> using adam(lr = ...)'] });
        break;
      case 'Assign': case 'Const': checkExpr(s.value, diags); break;
      case 'Return': case 'Report': case 'Evaluate': s.values.forEach((v) => checkExpr(v, diags)); break;
      case 'Assert': checkExpr(s.test, diags); break;
      case 'Minimize': checkExpr(s.loss, diags); if (s.optimizer) checkExpr(s.optimizer, diags); break;
      case 'Input': if (s.guard) checkExpr(s.guard, diags); break;
      default: break;
    }
  }
}

function containsReturn(body: A.Stmt[]): boolean {
  return someStmt(body, (s) => s.kind === 'Return');
}

function someStmt(body: A.Stmt[], pred: (s: A.Stmt) => boolean): boolean {
  let found = false;
  walkStmts(body, (s) => { if (pred(s)) found = true; }, false);
  return found;
}

/** Visit statements, descending into for/if (and into entry/train bodies when `deep`). */
function walkStmts(body: A.Stmt[], fn: (s: A.Stmt) => void, deep = false): void {
  for (const s of body) {
    fn(s);
    if (s.kind === 'For') walkStmts(s.body, fn, deep);
    if (s.kind === 'If') { walkStmts(s.then, fn, deep); if (s.else) walkStmts(s.else, fn, deep); }
    if (deep && (s.kind === 'Entry' || s.kind === 'Train')) walkStmts(s.body, fn, deep);
  }
}

/** Instance names must name something built by a call (or a bare layer name): `conv1: conv(32)`. */
function checkExpr(e: A.Expr, diags: DiagnosticBag): void {
  forEachExpr(e, (x) => {
    if (x.kind !== 'Labeled') return;
    let inner = x.expr;
    while (inner.kind === 'Call') inner = inner.callee;
    if (inner.kind !== 'Name' && inner.kind !== 'Error') {
      diags.report('SC1105', x.label.span, { name: x.label.base });
    }
  });
}

export function forEachExpr(e: A.Expr | A.Spread, fn: (x: A.Expr) => void): void {
  if (e.kind === 'Spread') return forEachExpr(e.argument, fn);
  fn(e);
  switch (e.kind) {
    case 'List': e.elements.forEach((x) => forEachExpr(x, fn)); break;
    case 'Binary': forEachExpr(e.left, fn); forEachExpr(e.right, fn); break;
    case 'Unary': forEachExpr(e.operand, fn); break;
    case 'Call': forEachExpr(e.callee, fn); e.args.forEach((a) => forEachExpr(a.value, fn)); break;
    case 'Index': forEachExpr(e.object, fn); forEachExpr(e.index, fn); break;
    case 'Pipe': forEachExpr(e.input, fn); forEachExpr(e.stage, fn); break;
    case 'Range': forEachExpr(e.start, fn); forEachExpr(e.end, fn); break;
    case 'Conditional': forEachExpr(e.test, fn); forEachExpr(e.then, fn); forEachExpr(e.else, fn); break;
    case 'Labeled': forEachExpr(e.expr, fn); break;
    default: break;
  }
}
