// The AST of a .vae file. Every node carries its source span. The parser builds it even from
// broken input (after error recovery): missing pieces become `Error` expressions, so tools can
// still walk it, but a compiler must not run on a tree whose parse reported errors.

import type { Span } from './diagnostics.ts';

export interface Identifier { kind: 'Identifier'; name: string; span: Span }

// ---- Types -------------------------------------------------------------------------------
/** `int`, `float`, `bool`, `str`, or another name. */
export interface NamedType { kind: 'NamedType'; name: string; span: Span }
/** `[int]`: a list of values (compile-time parameters only). */
export interface ListType { kind: 'ListType'; element: TypeExpr; span: Span }
/** `[B, C, ...S/2]`: a tensor shape; each dimension is a size expression or a spread of a pack. */
export interface ShapeType { kind: 'ShapeType'; dims: ListElement[]; span: Span }
/** A tuple of outputs: `([B, L], [B, L])`, or with every element named: `(mu: [B, L], logvar: [B, L])`. */
export interface TupleType { kind: 'TupleType'; elements: TypeExpr[]; names?: Identifier[]; span: Span }
/** `"relu" | "softplus"`: one of several string literals (or types). */
export interface UnionType { kind: 'UnionType'; options: TypeExpr[]; span: Span }
/** `"relu"` as a type: exactly that string. */
export interface LiteralType { kind: 'LiteralType'; value: string; span: Span }
export type TypeExpr = NamedType | ListType | ShapeType | TupleType | UnionType | LiteralType;

// ---- Expressions -------------------------------------------------------------------------
export interface NumberLiteral { kind: 'Number'; value: number; raw: string; isInteger: boolean; span: Span }
export interface StringLiteral { kind: 'String'; value: string; span: Span }
export interface BoolLiteral { kind: 'Bool'; value: boolean; span: Span }
export interface NoneLiteral { kind: 'None'; span: Span }
export interface NameExpr { kind: 'Name'; name: string; span: Span }
/** `[a, ...b]`: a list of values, which is also how shapes are written. */
export interface ListExpr { kind: 'List'; elements: ListElement[]; span: Span }
export interface Spread { kind: 'Spread'; argument: Expr; span: Span }
export type ListElement = Expr | Spread;
export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '**' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'and' | 'or';
export interface BinaryExpr { kind: 'Binary'; op: BinaryOp; left: Expr; right: Expr; span: Span }
export interface UnaryExpr { kind: 'Unary'; op: '-' | 'not'; operand: Expr; span: Span }
/** `name = value` or a positional `value`. */
export interface Argument { kind: 'Argument'; name?: Identifier; value: Expr; span: Span }
/** `f(args)`; curried `Down(32)(x, ref = r)` is a Call whose callee is a Call. */
export interface CallExpr { kind: 'Call'; callee: Expr; args: Argument[]; span: Span }
export interface IndexExpr { kind: 'Index'; object: Expr; index: Expr; span: Span }
/** `input |> stage`: the stage is called with `input` as its first tensor argument. Left-nested. */
export interface PipeExpr { kind: 'Pipe'; input: Expr; stage: Expr; span: Span }
/** `start..end`: the integers start, start+1, …, end−1. */
export interface RangeExpr { kind: 'Range'; start: Expr; end: Expr; span: Span }
/** `if test then a else b`. */
export interface ConditionalExpr { kind: 'Conditional'; test: Expr; then: Expr; else: Expr; span: Span }
/** An instance name: `conv1` or, in a loop, `down{i}` (base "down", index variable "i"). */
export interface InstanceName { kind: 'InstanceName'; base: string; index?: Identifier; span: Span }
/** `conv1: conv(32, k = 3)`: names the layer or block instance built by `expr`. */
export interface LabeledExpr { kind: 'Labeled'; label: InstanceName; expr: Expr; span: Span }
/** Stands for a piece that could not be parsed (only present when the parse reported errors). */
export interface ErrorExpr { kind: 'Error'; span: Span }
export type Expr =
  | NumberLiteral | StringLiteral | BoolLiteral | NoneLiteral | NameExpr | ListExpr | BinaryExpr | UnaryExpr
  | CallExpr | IndexExpr | PipeExpr | RangeExpr | ConditionalExpr | LabeledExpr | ErrorExpr;

// ---- Declarations and statements ---------------------------------------------------------
/** A compile-time parameter: `cout: int`, `beta: float = 0.5`. */
export interface ParamDecl { kind: 'Param'; name: Identifier; type: TypeExpr; default?: Expr; span: Span }
/** A tensor input of a block or entry point: `x: [B, C, ...S]`, `ref?: [B, R, ...S]`. In an entry
 * point the shape may be left out (`x`): it then refers to the model's input of that name. */
export interface TensorParam { kind: 'TensorParam'; name: Identifier; optional: boolean; shape?: TypeExpr; span: Span }

export interface ImportDecl { kind: 'Import'; path: string; pathSpan: Span; span: Span }
export interface ConstDecl { kind: 'Const'; name: Identifier; type?: TypeExpr; value: Expr; span: Span }
/** `defaults conv(sn = true), batchnorm(eps = 1e-5)`: attribute defaults for layers, for the rest
 * of the file (at top level) or of the enclosing body. */
export interface DefaultsDecl { kind: 'Defaults'; layers: LayerDefault[]; span: Span }
export interface LayerDefault { kind: 'LayerDefault'; layer: Identifier; args: Argument[]; span: Span }
export interface BlockDecl {
  kind: 'Block'; name: Identifier; params: ParamDecl[]; inputs: TensorParam[]; output: TypeExpr; body: Stmt[]; span: Span;
}
/** `model Name(params) { ... }`: a model (template) with overridable parameters. */
export interface ModelDecl { kind: 'Model'; name: Identifier; params: ParamDecl[]; body: Stmt[]; span: Span }
/** `model Target3D = StatCell(dims = 3, ...)`: a model that is another with new parameter
 * defaults. Its parameters stay overridable. */
export interface ModelInstance { kind: 'ModelInstance'; name: Identifier; template: Identifier; overrides: Argument[]; span: Span }
export type TopDecl = ImportDecl | ConstDecl | DefaultsDecl | BlockDecl | ModelDecl | ModelInstance;

export interface AssignStmt { kind: 'Assign'; targets: Identifier[]; value: Expr; span: Span }
export interface ReturnStmt { kind: 'Return'; values: Expr[]; span: Span }
export interface ForStmt { kind: 'For'; variable: Identifier; iterable: Expr; body: Stmt[]; span: Span }
export interface IfStmt { kind: 'If'; test: Expr; then: Stmt[]; else?: Stmt[]; span: Span }
export interface AssertStmt { kind: 'Assert'; test: Expr; message?: Expr; span: Span }
/** `input x: [B, n_in, ...size] as image("membrane", "dna") if conditioned`: a model input,
 * present when the guard holds, with the role the tools feed it by (image, reference, label). */
export interface InputStmt { kind: 'Input'; name: Identifier; shape: TypeExpr; role?: { name: Identifier; args: Argument[] }; guard?: Expr; span: Span }
/** `entry encode(x, ref) -> (mu: [B, L], logvar: [B, L]) { ... }`: a function the runtime can
 * call; `as decode` gives it a role other than its name. */
export interface EntryStmt {
  kind: 'Entry'; name: Identifier; params: TensorParam[]; output?: TypeExpr; outputNames: Identifier[]; role?: Identifier; body: Stmt[]; span: Span;
}
/** `train step(x) { ... minimize loss using adam(...) }`: a training step. */
export interface TrainStmt { kind: 'Train'; name: Identifier; params: TensorParam[]; body: Stmt[]; span: Span }
export interface MinimizeStmt { kind: 'Minimize'; loss: Expr; optimizer?: Expr; span: Span }
/** `report recon, kl`: values the training step hands back as metrics (by variable name). */
export interface ReportStmt { kind: 'Report'; values: Expr[]; span: Span }
/** `evaluate elbo, recon, kl`: per-cell ([B]) values of the training step that score a cell in
 * evaluation mode; the first is the ELBO (higher is better), the rest are reported beside it. */
export interface EvaluateStmt { kind: 'Evaluate'; values: Expr[]; span: Span }
export type Stmt =
  | AssignStmt | ReturnStmt | ForStmt | IfStmt | AssertStmt | InputStmt | EntryStmt | TrainStmt
  | MinimizeStmt | ReportStmt | EvaluateStmt | ConstDecl | DefaultsDecl;

export interface Program { kind: 'Program'; file: string; decls: TopDecl[]; span: Span }

export type Node = Program | TopDecl | Stmt | Expr | TypeExpr | Identifier | Argument | Spread | ParamDecl | TensorParam | LayerDefault | InstanceName;
