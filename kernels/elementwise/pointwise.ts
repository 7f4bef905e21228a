// The pointwise ops, each defined once. An entry gives the op's name, its operands and scalar
// parameters, its float64 formula, its WGSL expression, its Wasm opcode and its gradient rule.
// Everything else is generated from the table: the single ops (relu, add, …: shape rule,
// float64, WGSL plan, Wasm call; `pointwiseOps`) and the `fused` op's instruction set, float64
// interpreter and WGSL code (kernels/fused/index.ts).
//
// The AssemblyScript kernels are compiled ahead of time and cannot be generated from here: they
// repeat the opcodes (kernels/elementwise/opcodes.as.ts, exported by the module as
// OPCODE_<name>) and the formulas (pointwise.as.ts). runtime/wasm.ts compares the module's
// opcodes with OPCODES when it instantiates the module and refuses one that differs.

import type { Attrs, Emitter, GradContext, OpDef, Shape } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, f32lit, grid1d, linearMain, mapPlan } from '../wgsl.ts';
import { broadcastShapes, broadcastStrides, collapse, gather64, offsetExpr, padForWasm } from './broadcast.ts';
import { sumToShape } from '../reduce/reduce.ts';

export interface PointwiseOp {
  name: string;
  /** Tensor operands: x, or a and b. */
  arity: 1 | 2;
  /**
   * Two operands, as a single op: NumPy broadcasting (add … div), or else one shape for both
   * (an activation's gradient: x and dy). A fused program broadcasts every input anyway.
   */
  broadcast?: boolean;
  /**
   * Scalar parameters, at most 2: the single op's attrs (default when absent) and, in a fused
   * program, the numbers after the instruction's operands.
   */
  params?: readonly { name: string; default: number }[];
  /** The float64 formula; `b` is unused by unary ops, `p` holds the parameters in order. */
  f64: (a: number, b: number, p: readonly number[]) => number;
  /** The WGSL f32 expression over operand variables `v` and parameter literals `p`. */
  wgsl: (v: readonly string[], p: readonly string[]) => string;
  /** WGSL functions the expression calls. */
  wgslHelpers?: string;
  /**
   * The op's number in the Wasm kernels: the fused interpreter's instruction, and the `op`
   * argument of the single-op kernels ew_map (unary and same-shape binary) and ew_binary
   * (broadcasting). Must equal OPCODE_<name> in kernels/elementwise/opcodes.as.ts.
   */
  opcode: number;
  /** The single op's gradient rule, written in other ops. Absent: not differentiable. */
  grad?: <T>(em: Emitter<T>, ctx: GradContext<T, Attrs>) => (T | null)[];
}

/** WGSL log(1 + u) that keeps u when it is below f32 epsilon (Goldberg's trick). */
export const WGSL_LOG1P = `fn log1p_(u: f32) -> f32 {
  let w = 1.0 + u;
  return select(log(w) * (u / (w - 1.0)), u, w == 1.0);
}`;

/**
 * x rounded to the nearest IEEE binary16 value (ties to even), as a number: ±Inf from 65520 on
 * (the midpoint between binary16's largest finite value 65504 and 2^16), subnormals (multiples
 * of 2^-24) kept, ±0, ±Inf and NaN unchanged.
 */
export function roundToF16(x: number): number {
  const a = Math.abs(x);
  if (a === 0 || !Number.isFinite(a)) return x;
  if (a >= 65520) return Math.sign(x) * Infinity;
  // binary16's spacing at a: 2^(e − 10) in the binade [2^e, 2^(e+1)), 2^-24 below 2^-14.
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp; // exact: a power-of-two scaling
  const f = Math.floor(q);
  const up = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1);
  return Math.sign(x) * (up ? f + 1 : f) * ulp;
}

/**
 * WGSL round_f16_(x): roundToF16 on the f32 bits. In binary16's normal range, 13 mantissa bits
 * dropped to nearest even (a carry steps the exponent, up to 65504); below 2^-14, where its
 * values are the multiples of 2^-24, |x|·2^24 (exact) rounded to an integer by round() (ties to
 * even) and scaled back. The Wasm kernels do the same (pointwise.as.ts).
 */
export const WGSL_ROUND_F16 = `fn round_f16_(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  let s = b & 0x80000000u;
  let a = b & 0x7fffffffu;
  if (a >= 0x7f800000u) { return x; }
  if (a >= 0x477ff000u) { return bitcast<f32>(s | 0x7f800000u); }
  if (a >= 0x38800000u) { return bitcast<f32>(s | ((a + 0xfffu + ((a >> 13u) & 1u)) & 0xffffe000u)); }
  return bitcast<f32>(s | bitcast<u32>(round(bitcast<f32>(a) * 16777216.0) * 5.9604644775390625e-8));
}`;

/** The pointwise ops, in opcode order. */
export const POINTWISE: readonly PointwiseOp[] = [
  {
    name: 'add', arity: 2, broadcast: true, opcode: 2,
    f64: (a, b) => a + b,
    wgsl: ([a, b]) => `${a} + ${b}`,
    grad: (em, { inputs: [a, b], dOutputs: [dy] }) => (dy ? [sumToShape(em, dy, em.shape(a)), sumToShape(em, dy, em.shape(b))] : [null, null]),
  },
  {
    name: 'sub', arity: 2, broadcast: true, opcode: 3,
    f64: (a, b) => a - b,
    wgsl: ([a, b]) => `${a} - ${b}`,
    // Negate after reducing: the reduced tensor is never larger than dy.
    grad: (em, { inputs: [a, b], dOutputs: [dy] }) => (dy ? [sumToShape(em, dy, em.shape(a)), em.call('scale', [sumToShape(em, dy, em.shape(b))], { a: -1, b: 0 })[0]] : [null, null]),
  },
  {
    name: 'mul', arity: 2, broadcast: true, opcode: 4,
    f64: (a, b) => a * b,
    wgsl: ([a, b]) => `${a} * ${b}`,
    grad: (em, { inputs: [a, b], dOutputs: [dy] }) => (dy ? [sumToShape(em, em.call('mul', [dy, b])[0], em.shape(a)), sumToShape(em, em.call('mul', [dy, a])[0], em.shape(b))] : [null, null]),
  },
  {
    name: 'div', arity: 2, broadcast: true, opcode: 5,
    f64: (a, b) => a / b,
    wgsl: ([a, b]) => `${a} / ${b}`,
    grad: (em, { inputs: [a, b], outputs: [y], dOutputs: [dy] }) => {
      if (!dy) return [null, null];
      const g = em.call('div', [dy, b])[0]; // dL/da = dy / b
      // dL/db = −dy·a/b² = −(dy/b)·y, using the forward output instead of squaring b.
      const gb = em.call('scale', [sumToShape(em, em.call('mul', [g, y])[0], em.shape(b))], { a: -1, b: 0 })[0];
      return [sumToShape(em, g, em.shape(a)), gb];
    },
  },
  {
    name: 'relu', arity: 1, opcode: 6,
    f64: (x) => (x > 0 ? x : 0),
    wgsl: ([x]) => `max(${x}, 0.0)`,
    // From the output (y > 0 exactly where x > 0), so that a fused relu's input, often a
    // BatchNorm's output, need not be written out for the backward pass.
    grad: (em, { outputs: [y], dOutputs: [dy] }) => [dy && em.call('relu_grad', [y, dy])[0]],
  },
  {
    name: 'exp', arity: 1, opcode: 7,
    f64: Math.exp,
    wgsl: ([x]) => `exp(${x})`,
    // dy·y reuses the forward output instead of recomputing exp.
    grad: (em, { outputs: [y], dOutputs: [dy] }) => [dy && em.call('mul', [dy, y])[0]],
  },
  {
    // PyTorch's softplus, β = 1, threshold 20.
    name: 'softplus', arity: 1, opcode: 8,
    f64: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
    wgsl: ([x]) => `select(log1p_(exp(${x})), ${x}, ${x} > 20.0)`,
    wgslHelpers: WGSL_LOG1P,
    grad: (em, { inputs: [x], dOutputs: [dy] }) => [dy && em.call('softplus_grad', [x, dy])[0]],
  },
  {
    // y = a·x + b: a multiply, then an add, on every backend.
    name: 'scale', arity: 1, opcode: 9,
    params: [{ name: 'a', default: 1 }, { name: 'b', default: 0 }],
    f64: (x, _, [a, b]) => a * x + b,
    wgsl: ([x], [a, b]) => `${x} * ${a} + ${b}`,
    grad: (em, { dOutputs: [dy], attrs: { a = 1 } }) => [dy && em.call('scale', [dy], { a, b: 0 })[0]],
  },
  {
    // dy where x > 0, else 0: the gradient of relu.
    name: 'relu_grad', arity: 2, opcode: 10,
    f64: (x, g) => (x > 0 ? g : 0),
    wgsl: ([x, g]) => `select(0.0, ${g}, ${x} > 0.0)`,
  },
  {
    // dy·σ(x), dy itself above softplus's threshold 20.
    name: 'softplus_grad', arity: 2, opcode: 11,
    f64: (x, g) => (x > 20 ? g : g / (1 + Math.exp(-x))),
    wgsl: ([x, g]) => `select(${g} / (1.0 + exp(-${x})), ${g}, ${x} > 20.0)`,
  },
  {
    // 1/√x with a correctly rounded square root and divide (WGSL's inverseSqrt may be
    // approximate): BatchNorm's eval scale γ/√(rv + eps), fused into its apply
    // (compiler/fuse-bn.ts). Not differentiable: it appears only after autodiff.
    name: 'rsqrt', arity: 1, opcode: 13,
    f64: (x) => 1 / Math.sqrt(x),
    wgsl: ([x]) => `1.0 / sqrt(${x})`,
  },
  {
    // x rounded to the nearest IEEE binary16 value, kept in f32: what an f16 buffer would hold
    // (--precision f16-storage, compiler/precision.ts). WGSL's quantizeToF16 may flush f16
    // subnormals to zero and is indeterminate beyond ±65504, so every backend rounds the f32
    // bits itself (round to nearest, ties to even; overflow to ±Inf; subnormals kept).
    name: 'round_f16', arity: 1, opcode: 14,
    f64: roundToF16,
    wgsl: ([x]) => `round_f16_(${x})`,
    wgslHelpers: WGSL_ROUND_F16,
    // Straight-through: the rounding is storage, not part of the model, so the gradient is the
    // one of the unrounded value (its true derivative is 0 almost everywhere). The precision
    // pass inserts it after autodiff, so this rule serves only graphs differentiated through it.
    grad: (_em, { dOutputs: [dy] }) => [dy],
  },
];

/** The fused op's instructions that are not pointwise ops, and their Wasm opcodes. */
export const FUSED_SPECIAL = { input: 0, const: 1, store: 12 } as const;

const BY_NAME: ReadonlyMap<string, PointwiseOp> = new Map(POINTWISE.map((op) => [op.name, op]));

/** The table entry of a pointwise op, undefined for any other name. */
export const pointwiseOp = (name: string): PointwiseOp | undefined => BY_NAME.get(name);

/** Every opcode of the Wasm kernels by name: the pointwise ops and the fused op's specials. */
export const OPCODES: ReadonlyMap<string, number> = new Map([...Object.entries(FUSED_SPECIAL), ...POINTWISE.map((op) => [op.name, op.opcode] as [string, number])]);

// The table's own consistency, checked once at load.
{
  const seen = new Map<number, string>();
  for (const [name, code] of OPCODES) {
    if (seen.has(code)) throw new Error(`pointwise: opcode ${code} is given to both '${seen.get(code)}' and '${name}'`);
    seen.set(code, name);
  }
  if (BY_NAME.size !== POINTWISE.length) throw new Error('pointwise: an op name appears twice in the table');
  for (const op of POINTWISE)
    if ((op.params?.length ?? 0) > 2 || (op.broadcast && op.arity !== 2)) throw new Error(`pointwise: '${op.name}' has more than 2 parameters or broadcasts with one operand`);
}

/** The parameter values of a single op's attrs, defaults filled in. */
function paramValues(op: PointwiseOp, attrs: Attrs): number[] {
  return (op.params ?? []).map((p) => (attrs[p.name] === undefined ? p.default : (attrs[p.name] as number)));
}

/** Throws unless the parameters of a single op's attrs are finite numbers. */
function checkParams(op: PointwiseOp, s: Shape[], attrs: Attrs): void {
  const params = op.params ?? [];
  if (!params.length) return;
  const vals = paramValues(op, attrs);
  if (vals.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    const names = params.map((p) => p.name);
    throw new OpError(
      op.name,
      `attrs ${names.join(' and ')} must be finite numbers, got ${params.map((p, i) => `${p.name}=${vals[i]}`).join(', ')}`,
      s,
      `Pass e.g. {${params.map((p) => `${p.name}: ${p.default}`).join(', ')}}`,
    );
  }
}

/** The collapsed iteration space of a broadcasting `out = a ∘ b`: dims plus strides of [a, b]. */
function broadcastPlan(op: string, [a, b]: Shape[]) {
  const out = broadcastShapes(op, a, b);
  return { out, c: collapse(out, [broadcastStrides(a, out), broadcastStrides(b, out)]) };
}

/** The single op of a table entry. */
function singleOp(op: PointwiseOp): OpDef<Attrs> {
  const { name, opcode } = op;
  const wgslHelpers = op.wgslHelpers ?? '';
  const shape = (s: Shape[], attrs: Attrs): Shape[] => {
    if (op.arity === 1) {
      if (s.length !== 1) throw new OpError(name, `takes 1 input, got ${s.length}`, s);
      checkParams(op, s, attrs);
      return [s[0]];
    }
    if (op.broadcast) {
      if (s.length !== 2) throw new OpError(name, `takes 2 inputs, got ${s.length}`, s);
      return [broadcastShapes(name, s[0], s[1])];
    }
    if (s.length !== 2 || fmtShape(s[0]) !== fmtShape(s[1])) throw new OpError(name, 'x and dy must have the same shape', s);
    checkParams(op, s, attrs);
    return [s[0]];
  };

  if (op.broadcast)
    return {
      name,
      shape,
      grad: op.grad,
      float64: ([a, b], s, attrs) => {
        const { c } = broadcastPlan(name, s);
        const p = paramValues(op, attrs);
        const ga = gather64(a, c.dims, c.strides[0]);
        const gb = gather64(b, c.dims, c.strides[1]);
        return [ga.map((v, i) => op.f64(v, gb[i], p))];
      },
      wgsl: (s, attrs) => {
        const { out, c } = broadcastPlan(name, s);
        const n = numel(out);
        return {
          passes: [
            {
              bindings: [0, 1, 2],
              workgroups: grid1d(n),
              code: `@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${wgslHelpers ? `${wgslHelpers}\n` : ''}${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
  let a = A[${offsetExpr(c.dims, c.strides[0], 'i')}];
  let b = B[${offsetExpr(c.dims, c.strides[1], 'i')}];
  Y[i] = ${op.wgsl(['a', 'b'], paramValues(op, attrs).map(f32lit))};
}`,
            },
          ],
        };
      },
      wasm: (s) => {
        const c = padForWasm(name, broadcastPlan(name, s).c, s);
        const args = [...c.dims, ...c.strides[0], ...c.strides[1]];
        return { run: (k, [a, b, y]) => void k.ew_binary(opcode, a, b, y, ...args) };
      },
    };

  // One shape in, one out: a map over the elements.
  return {
    name,
    shape,
    grad: op.grad,
    float64: (inputs, _s, attrs) => {
      const p = paramValues(op, attrs);
      if (op.arity === 1) return [inputs[0].map((v) => op.f64(v, 0, p))];
      const [x, dy] = inputs;
      return [dy.map((g, i) => op.f64(x[i], g, p))];
    },
    wgsl: ([s], attrs) => {
      const p = paramValues(op, attrs).map(f32lit);
      if (op.arity === 1) return mapPlan(numel(s), ['X'], 'Y', `let x = X[i];\n  Y[i] = ${op.wgsl(['x'], p)};`, wgslHelpers);
      return mapPlan(numel(s), ['X', 'DY'], 'DX', `let x = X[i];\n  let g = DY[i];\n  DX[i] = ${op.wgsl(['x', 'g'], p)};`, wgslHelpers);
    },
    wasm: ([s], attrs) => {
      const [p = 0, q = 0] = paramValues(op, attrs);
      const n = numel(s);
      // ew_map(op, a, b, y, n, p, q): a unary op reads its one operand as both a and b.
      if (op.arity === 1) return { run: (k, [x, y]) => void k.ew_map(opcode, x, x, y, n, p, q) };
      return { run: (k, [x, dy, dx]) => void k.ew_map(opcode, x, dy, dx, n, p, q) };
    },
  };
}

/** The single ops, one per table entry. */
export const pointwiseOps: OpDef<any>[] = POINTWISE.map(singleOp);
