// CST → AST: a Chevrotain visitor that turns the parser's concrete tree into the typed nodes of
// ast.ts, each with its source span. After error recovery the CST can lack children; every
// method tolerates that and puts `Error` nodes where something is missing.

import type { CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { DiagnosticBag, joinSpans, type Span } from './diagnostics.ts';
import { getParser } from './parser.ts';

type Children = Record<string, (CstNode | IToken)[] | undefined>;
/** Where a type appears decides how `[ ... ]` reads: a list of values, or a tensor shape. */
type TypeContext = 'value' | 'shape';
/** Which parameter list is being read. */
type ListKind = 'params' | 'inputs' | 'entry';

const BaseVisitor = getParser().getBaseCstVisitorConstructor();

function isToken(x: CstNode | IToken | undefined): x is IToken {
  return x !== undefined && 'image' in x;
}

export class AstBuilder extends BaseVisitor {
  /** The last good position seen, used for nodes that recovery left without a location. */
  private last: Span;

  constructor(private readonly file: string, private readonly diags: DiagnosticBag) {
    super();
    this.last = { file, line: 1, col: 1, endLine: 1, endCol: 1, offset: 0, endOffset: 0 };
    this.validateVisitor();
  }

  /** Like the base visitor's, but hands each method its own node too (for its span). */
  override visit(cst: CstNode | CstNode[], param?: unknown): any {
    const n = Array.isArray(cst) ? cst[0] : cst;
    if (!n) return undefined;
    return (this as unknown as Record<string, (c: Children, p: unknown, self: CstNode) => unknown>)[n.name](n.children as Children, param, n);
  }

  // ---- helpers ----
  private tokenSpan(t: IToken | undefined): Span {
    if (!t || t.isInsertedInRecovery || Number.isNaN(t.startOffset) || t.startLine === undefined || Number.isNaN(t.startLine)) return this.here();
    const s: Span = {
      file: this.file, line: t.startLine, col: t.startColumn!, endLine: t.endLine!, endCol: t.endColumn! + 1,
      offset: t.startOffset, endOffset: t.endOffset! + 1,
    };
    this.last = s;
    return s;
  }

  private nodeSpan(n: CstNode | undefined): Span {
    const l = n?.location;
    if (!l || Number.isNaN(l.startOffset) || Number.isNaN(l.endOffset ?? NaN) || l.startLine === undefined || Number.isNaN(l.startLine)) return this.here();
    const s: Span = {
      file: this.file, line: l.startLine, col: l.startColumn!, endLine: l.endLine!, endCol: l.endColumn! + 1,
      offset: l.startOffset, endOffset: l.endOffset! + 1,
    };
    this.last = s;
    return s;
  }

  /** A zero-width span just after the last good position. */
  private here(): Span {
    const l = this.last;
    return { file: this.file, line: l.endLine, col: l.endCol, endLine: l.endLine, endCol: l.endCol, offset: l.endOffset, endOffset: l.endOffset };
  }

  private tok(ctx: Children, key: string, i = 0): IToken | undefined {
    const x = ctx[key]?.[i];
    return isToken(x) ? x : undefined;
  }

  private node(ctx: Children, key: string, i = 0): CstNode | undefined {
    const x = ctx[key]?.[i];
    return x && !isToken(x) ? x : undefined;
  }

  private nodes(ctx: Children, key: string): CstNode[] {
    return (ctx[key] ?? []).filter((x): x is CstNode => !isToken(x));
  }

  private ident(t: IToken | undefined): A.Identifier {
    const usable = t && !t.isInsertedInRecovery && !Number.isNaN(t.startOffset);
    return { kind: 'Identifier', name: usable ? t.image : '<missing>', span: this.tokenSpan(t) };
  }

  private expr(n: CstNode | undefined): A.Expr {
    return n ? (this.visit(n) as A.Expr) : { kind: 'Error', span: this.here() };
  }

  private type(n: CstNode | undefined, tc: TypeContext): A.TypeExpr {
    return n ? (this.visit(n, tc) as A.TypeExpr) : { kind: 'NamedType', name: '<missing>', span: this.here() };
  }

  private stmts(body: CstNode | undefined): A.Stmt[] {
    return body ? (this.visit(body) as A.Stmt[]) : [];
  }

  // ---- declarations ----
  program(ctx: Children): A.Program {
    const decls = this.nodes(ctx, 'topDecl').map((n) => this.visit(n) as A.TopDecl).filter((d) => d !== undefined);
    const span = decls.length ? joinSpans(decls[0].span, decls[decls.length - 1].span) : this.here();
    return { kind: 'Program', file: this.file, decls, span };
  }

  topDecl(ctx: Children): A.TopDecl | undefined {
    const child = Object.values(ctx).flat()[0];
    return child && !isToken(child) ? (this.visit(child) as A.TopDecl) : undefined;
  }

  importDecl(ctx: Children, _p: unknown, self?: CstNode): A.ImportDecl {
    const t = this.tok(ctx, 'path');
    return { kind: 'Import', path: t ? unquote(t.image) : '', pathSpan: this.tokenSpan(t), span: this.nodeSpan(self) };
  }

  constDecl(ctx: Children): A.ConstDecl {
    const name = this.ident(this.tok(ctx, 'name'));
    const typeNode = this.node(ctx, 'type');
    const value = this.expr(this.node(ctx, 'value'));
    return { kind: 'Const', name, type: typeNode ? this.type(typeNode, 'value') : undefined, value, span: joinSpans(this.tokenSpan(this.tok(ctx, 'Const')), value.span) };
  }

  defaultsDecl(ctx: Children): A.DefaultsDecl {
    const layers = this.nodes(ctx, 'layerDefault').map((n) => this.visit(n) as A.LayerDefault);
    const start = this.tokenSpan(this.tok(ctx, 'Defaults'));
    return { kind: 'Defaults', layers, span: layers.length ? joinSpans(start, layers[layers.length - 1].span) : start };
  }

  layerDefault(ctx: Children): A.LayerDefault {
    const layer = this.ident(this.tok(ctx, 'layer'));
    const argList = this.node(ctx, 'argList');
    const args = argList ? (this.visit(argList) as A.Argument[]) : [];
    return { kind: 'LayerDefault', layer, args, span: joinSpans(layer.span, this.nodeSpan(argList)) };
  }

  blockDecl(ctx: Children): A.BlockDecl {
    const name = this.ident(this.tok(ctx, 'name'));
    const lists = this.nodes(ctx, 'lists');
    // One list: tensor inputs only. Two: compile-time parameters, then tensor inputs.
    const params = lists.length === 2 ? (this.visit(lists[0], 'params') as A.ParamDecl[]) : [];
    const inputs = lists.length >= 1 ? (this.visit(lists[lists.length - 1], 'inputs') as A.TensorParam[]) : [];
    const output = this.type(this.node(ctx, 'output'), 'shape');
    const bodyNode = this.node(ctx, 'body');
    const body = this.stmts(bodyNode);
    return { kind: 'Block', name, params, inputs, output, body, span: joinSpans(this.tokenSpan(this.tok(ctx, 'Block')), this.nodeSpan(bodyNode)) };
  }

  modelDecl(ctx: Children, _p: unknown, self?: CstNode): A.ModelDecl | A.ModelInstance {
    const name = this.ident(this.tok(ctx, 'name'));
    const span = this.nodeSpan(self);
    if (this.tok(ctx, 'Equals')) {
      const template = this.ident(this.tok(ctx, 'template'));
      const argList = this.node(ctx, 'argList');
      const overrides = argList ? (this.visit(argList) as A.Argument[]) : [];
      return { kind: 'ModelInstance', name, template, overrides, span };
    }
    const list = this.node(ctx, 'paramList');
    const params = list ? (this.visit(list, 'params') as A.ParamDecl[]) : [];
    return { kind: 'Model', name, params, body: this.stmts(this.node(ctx, 'body')), span };
  }

  paramList(ctx: Children, kind: ListKind): (A.ParamDecl | A.TensorParam)[] {
    return this.nodes(ctx, 'param').map((n) => this.visit(n, kind) as A.ParamDecl | A.TensorParam);
  }

  param(ctx: Children, kind: ListKind, self?: CstNode): A.ParamDecl | A.TensorParam {
    const name = this.ident(this.tok(ctx, 'name'));
    const span = this.nodeSpan(self);
    const typeNode = this.node(ctx, 'type');
    const defNode = this.node(ctx, 'default');
    const question = this.tok(ctx, 'Question');
    if (kind === 'params') {
      if (question) this.diags.report('SC1114', this.tokenSpan(question), { name: name.name }, { notes: ['give it a default value instead: name: type = value'] });
      if (!typeNode) this.diags.report('SC1106', name.span, { what: 'parameter', name: name.name }, { notes: [`write ${name.name}: int (or float, bool, str, [int], "a" | "b")`] });
      const type = typeNode ? this.type(typeNode, 'value') : ({ kind: 'NamedType', name: '<missing>', span: name.span } as const);
      return { kind: 'Param', name, type, default: defNode ? this.expr(defNode) : undefined, span };
    }
    if (defNode) this.diags.report('SC1111', this.nodeSpan(defNode), { name: name.name }, { notes: ["mark it optional with '?' instead"] });
    if (!typeNode && kind === 'inputs') this.diags.report('SC1106', name.span, { what: 'block input', name: name.name }, { notes: [`write ${name.name}: [B, C, ...S]`] });
    return { kind: 'TensorParam', name, optional: question !== undefined, shape: typeNode ? this.type(typeNode, 'shape') : undefined, span };
  }

  body(ctx: Children): A.Stmt[] {
    return this.nodes(ctx, 'statement').map((n) => this.visit(n) as A.Stmt | undefined).filter((s): s is A.Stmt => s !== undefined);
  }

  statement(ctx: Children): A.Stmt | undefined {
    const child = Object.values(ctx).flat()[0];
    return child && !isToken(child) ? (this.visit(child) as A.Stmt) : undefined; // `;` gives nothing
  }

  assignStmt(ctx: Children, _p: unknown, self?: CstNode): A.AssignStmt {
    const targets = (ctx.targets ?? []).filter(isToken).map((t) => this.ident(t));
    return { kind: 'Assign', targets, value: this.expr(this.node(ctx, 'value')), span: this.nodeSpan(self) };
  }

  returnStmt(ctx: Children, _p: unknown, self?: CstNode): A.ReturnStmt {
    return { kind: 'Return', values: this.nodes(ctx, 'values').map((n) => this.expr(n)), span: this.nodeSpan(self) };
  }

  forStmt(ctx: Children, _p: unknown, self?: CstNode): A.ForStmt {
    return {
      kind: 'For', variable: this.ident(this.tok(ctx, 'variable')), iterable: this.expr(this.node(ctx, 'iterable')),
      body: this.stmts(this.node(ctx, 'body')), span: this.nodeSpan(self),
    };
  }

  ifStmt(ctx: Children, _p: unknown, self?: CstNode): A.IfStmt {
    const elseIf = this.node(ctx, 'elseIf');
    const elseBody = this.node(ctx, 'else');
    return {
      kind: 'If', test: this.expr(this.node(ctx, 'test')), then: this.stmts(this.node(ctx, 'then')),
      else: elseIf ? [this.visit(elseIf) as A.IfStmt] : elseBody ? this.stmts(elseBody) : undefined,
      span: this.nodeSpan(self),
    };
  }

  assertStmt(ctx: Children, _p: unknown, self?: CstNode): A.AssertStmt {
    const m = this.node(ctx, 'message');
    return { kind: 'Assert', test: this.expr(this.node(ctx, 'test')), message: m ? this.expr(m) : undefined, span: this.nodeSpan(self) };
  }

  inputStmt(ctx: Children, _p: unknown, self?: CstNode): A.InputStmt {
    const g = this.node(ctx, 'guard');
    const role = this.tok(ctx, 'role');
    const roleArgs = this.node(ctx, 'roleArgs');
    return {
      kind: 'Input', name: this.ident(this.tok(ctx, 'name')), shape: this.type(this.node(ctx, 'shape'), 'shape'),
      role: role ? { name: this.ident(role), args: roleArgs ? (this.visit(roleArgs) as A.Argument[]) : [] } : undefined,
      guard: g ? this.expr(g) : undefined, span: this.nodeSpan(self),
    };
  }

  entryStmt(ctx: Children, _p: unknown, self?: CstNode): A.EntryStmt {
    const list = this.node(ctx, 'paramList');
    const out = this.node(ctx, 'output');
    const role = this.tok(ctx, 'role');
    const output = out ? this.type(out, 'shape') : undefined;
    const single = out ? this.outputName(out) : undefined;
    return {
      kind: 'Entry', name: this.ident(this.tok(ctx, 'name')), params: list ? (this.visit(list, 'entry') as A.TensorParam[]) : [],
      output, outputNames: single ? [single] : output?.kind === 'TupleType' ? (output.names ?? []) : [],
      role: role ? this.ident(role) : undefined, body: this.stmts(this.node(ctx, 'body')), span: this.nodeSpan(self),
    };
  }

  trainStmt(ctx: Children, _p: unknown, self?: CstNode): A.TrainStmt {
    const list = this.node(ctx, 'paramList');
    return {
      kind: 'Train', name: this.ident(this.tok(ctx, 'name')), params: list ? (this.visit(list, 'entry') as A.TensorParam[]) : [],
      body: this.stmts(this.node(ctx, 'body')), span: this.nodeSpan(self),
    };
  }

  minimizeStmt(ctx: Children, _p: unknown, self?: CstNode): A.MinimizeStmt {
    const o = this.node(ctx, 'optimizer');
    return { kind: 'Minimize', loss: this.expr(this.node(ctx, 'loss')), optimizer: o ? this.expr(o) : undefined, span: this.nodeSpan(self) };
  }

  reportStmt(ctx: Children, _p: unknown, self?: CstNode): A.ReportStmt {
    return { kind: 'Report', values: this.nodes(ctx, 'values').map((n) => this.expr(n)), span: this.nodeSpan(self) };
  }

  evaluateStmt(ctx: Children, _p: unknown, self?: CstNode): A.EvaluateStmt {
    return { kind: 'Evaluate', values: this.nodes(ctx, 'values').map((n) => this.expr(n)), span: this.nodeSpan(self) };
  }

  /** `name: type` → its type; the name is read by `outputName`. */
  outputType(ctx: Children, tc: TypeContext): A.TypeExpr {
    return this.type(this.node(ctx, 'type'), tc);
  }

  private outputName(n: CstNode): A.Identifier | undefined {
    const name = (n.children.name as IToken[] | undefined)?.[0];
    return name ? this.ident(name) : undefined;
  }

  // ---- types ----
  typeExpr(ctx: Children, tc: TypeContext, self?: CstNode): A.TypeExpr {
    const options = this.nodes(ctx, 'options').map((n) => this.type(n, tc));
    if (options.length === 1) return options[0];
    if (options.length === 0) return { kind: 'NamedType', name: '<missing>', span: this.here() };
    return { kind: 'UnionType', options, span: this.nodeSpan(self) };
  }

  typeAtom(ctx: Children, tc: TypeContext, self?: CstNode): A.TypeExpr {
    const span = this.nodeSpan(self);
    const lit = this.tok(ctx, 'literal');
    if (lit) return { kind: 'LiteralType', value: unquote(lit.image), span };
    const name = this.tok(ctx, 'name');
    if (name) {
      if (tc === 'shape') this.diags.report('SC1107', span, { problem: 'name as shape', name: name.image });
      return { kind: 'NamedType', name: name.image, span };
    }
    const tuple = this.nodes(ctx, 'tuple');
    if (tuple.length) {
      const names = tuple.map((n) => this.outputName(n));
      const named = names.filter((n): n is A.Identifier => n !== undefined);
      if (named.length && named.length < names.length) this.diags.report('SC1107', span, { problem: 'partly named tuple' });
      return { kind: 'TupleType', elements: tuple.map((n) => this.type(n, tc)), ...(named.length === names.length ? { names: named } : {}), span };
    }
    const list = this.node(ctx, 'list');
    const elements = list ? (this.visit(list) as A.ListExpr).elements : [];
    if (tc === 'shape') return { kind: 'ShapeType', dims: elements, span };
    // A value list type names its element type: [int], [[float]].
    const el = elements[0];
    if (elements.length !== 1 || el.kind === 'Spread' || (el.kind !== 'Name' && el.kind !== 'List' && el.kind !== 'String')) {
      this.diags.report('SC1107', span, { problem: 'list element' }, { notes: ['tensor shapes belong to tensor inputs, not to compile-time parameters'] });
      return { kind: 'ListType', element: { kind: 'NamedType', name: '<missing>', span }, span };
    }
    return { kind: 'ListType', element: exprToType(el), span };
  }

  // ---- expressions ----
  expression(ctx: Children): A.Expr {
    let e = this.expr(this.node(ctx, 'input'));
    for (const stage of this.nodes(ctx, 'stages')) {
      const s = this.expr(stage);
      e = { kind: 'Pipe', input: e, stage: s, span: joinSpans(e.span, s.span) };
    }
    return e;
  }

  rangeExpr(ctx: Children): A.Expr {
    const [a, b] = this.nodes(ctx, 'operands').map((n) => this.expr(n));
    if (!this.tok(ctx, 'DotDot')) return a ?? this.expr(undefined);
    const end = b ?? this.expr(undefined);
    return { kind: 'Range', start: a, end, span: joinSpans(a.span, end.span) };
  }

  private binaryChain(ctx: Children): A.Expr {
    const operands = this.nodes(ctx, 'operands').map((n) => this.expr(n));
    const ops = (ctx.ops ?? []).filter(isToken);
    let e = operands[0] ?? this.expr(undefined);
    for (let i = 0; i < ops.length; i++) {
      const right = operands[i + 1] ?? this.expr(undefined);
      e = { kind: 'Binary', op: ops[i].image as A.BinaryOp, left: e, right, span: joinSpans(e.span, right.span) };
    }
    return e;
  }

  orExpr(ctx: Children): A.Expr { return this.binaryChain(ctx); }
  andExpr(ctx: Children): A.Expr { return this.binaryChain(ctx); }
  comparison(ctx: Children): A.Expr {
    const ops = (ctx.ops ?? []).filter(isToken);
    if (ops.length > 1) {
      this.diags.report('SC1005', this.tokenSpan(ops[1]), { first: ops[0].image, second: ops[1].image }, { notes: ['write a < b and b < c'] });
    }
    return this.binaryChain(ctx);
  }
  additive(ctx: Children): A.Expr { return this.binaryChain(ctx); }
  multiplicative(ctx: Children): A.Expr { return this.binaryChain(ctx); }

  private prefix(ctx: Children, self?: CstNode): A.Expr {
    const operand = this.expr(this.node(ctx, 'operand'));
    const op = this.tok(ctx, 'op');
    if (!op) return operand;
    return { kind: 'Unary', op: op.image as '-' | 'not', operand, span: joinSpans(this.tokenSpan(op), operand.span) };
  }

  notExpr(ctx: Children, _p: unknown, self?: CstNode): A.Expr { return this.prefix(ctx, self); }
  unary(ctx: Children, _p: unknown, self?: CstNode): A.Expr { return this.prefix(ctx, self); }

  power(ctx: Children): A.Expr {
    const base = this.expr(this.node(ctx, 'base'));
    const expNode = this.node(ctx, 'exponent');
    if (!expNode) return base;
    const exponent = this.expr(expNode);
    return { kind: 'Binary', op: '**', left: base, right: exponent, span: joinSpans(base.span, exponent.span) };
  }

  postfixExpr(ctx: Children): A.Expr {
    let e = this.expr(this.node(ctx, 'atom'));
    for (const s of this.nodes(ctx, 'suffixes')) {
      const end = this.nodeSpan(s);
      if (s.name === 'argList') e = { kind: 'Call', callee: e, args: this.visit(s) as A.Argument[], span: joinSpans(e.span, end) };
      else e = { kind: 'Index', object: e, index: this.visit(s) as A.Expr, span: joinSpans(e.span, end) };
    }
    return e;
  }

  argList(ctx: Children): A.Argument[] {
    return this.nodes(ctx, 'args').map((n) => this.visit(n) as A.Argument);
  }

  argument(ctx: Children): A.Argument {
    const nameTok = this.tok(ctx, 'name');
    const name = nameTok ? this.ident(nameTok) : undefined;
    const value = this.expr(this.node(ctx, 'value'));
    return { kind: 'Argument', name, value, span: name ? joinSpans(name.span, value.span) : value.span };
  }

  indexSuffix(ctx: Children): A.Expr {
    return this.expr(this.node(ctx, 'index'));
  }

  atom(ctx: Children, _p: unknown, self?: CstNode): A.Expr {
    const span = this.nodeSpan(self);
    const sub = this.node(ctx, 'labeled') ?? this.node(ctx, 'listExpr') ?? this.node(ctx, 'conditional');
    if (sub) return this.visit(sub) as A.Expr;
    const paren = this.node(ctx, 'paren');
    if (paren) return this.expr(paren);
    let t: IToken | undefined;
    if ((t = this.tok(ctx, 'NumberLit'))) return { kind: 'Number', value: Number(t.image), raw: t.image, isInteger: /^\d+$/.test(t.image), span };
    if ((t = this.tok(ctx, 'StringLit'))) return { kind: 'String', value: unquote(t.image), span };
    if (this.tok(ctx, 'True')) return { kind: 'Bool', value: true, span };
    if (this.tok(ctx, 'False')) return { kind: 'Bool', value: false, span };
    if (this.tok(ctx, 'None')) return { kind: 'None', span };
    if ((t = this.tok(ctx, 'Identifier')) && !t.isInsertedInRecovery) return { kind: 'Name', name: t.image, span };
    return { kind: 'Error', span };
  }

  labeled(ctx: Children, _p: unknown, self?: CstNode): A.LabeledExpr {
    const base = this.tok(ctx, 'base');
    const indexTok = this.tok(ctx, 'index');
    const rbrace = this.tok(ctx, 'RBrace');
    const baseSpan = this.tokenSpan(base);
    const index = indexTok ? this.ident(indexTok) : undefined;
    const label: A.InstanceName = { kind: 'InstanceName', base: base?.image ?? '<missing>', index, span: rbrace ? joinSpans(baseSpan, this.tokenSpan(rbrace)) : baseSpan };
    const expr = this.expr(this.node(ctx, 'expr'));
    return { kind: 'Labeled', label, expr, span: this.nodeSpan(self) };
  }

  listExpr(ctx: Children, _p: unknown, self?: CstNode): A.ListExpr {
    return { kind: 'List', elements: this.nodes(ctx, 'elements').map((n) => this.visit(n) as A.ListElement), span: this.nodeSpan(self) };
  }

  listElement(ctx: Children, _p: unknown, self?: CstNode): A.ListElement {
    const value = this.expr(this.node(ctx, 'value'));
    return this.tok(ctx, 'Ellipsis') ? { kind: 'Spread', argument: value, span: this.nodeSpan(self) } : value;
  }

  conditional(ctx: Children, _p: unknown, self?: CstNode): A.ConditionalExpr {
    return {
      kind: 'Conditional', test: this.expr(this.node(ctx, 'test')), then: this.expr(this.node(ctx, 'then')),
      else: this.expr(this.node(ctx, 'else')), span: this.nodeSpan(self),
    };
  }
}

function exprToType(e: A.Expr): A.TypeExpr {
  if (e.kind === 'Name') return { kind: 'NamedType', name: e.name, span: e.span };
  if (e.kind === 'String') return { kind: 'LiteralType', value: e.value, span: e.span };
  if (e.kind === 'List' && e.elements.length === 1 && e.elements[0].kind !== 'Spread') return { kind: 'ListType', element: exprToType(e.elements[0]), span: e.span };
  return { kind: 'NamedType', name: '<invalid>', span: e.span };
}

/** The value of a string token: drop the quotes (an unterminated one has only the first) and
 * resolve the escapes \" \\ \n \t. */
export function unquote(image: string): string {
  const inner = image.length >= 2 && image.endsWith('"') && !image.endsWith('\\"') ? image.slice(1, -1) : image.slice(1);
  return inner.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}
