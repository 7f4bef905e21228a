// `fused`: several elementwise ops in one pass over memory. Its attrs carry a small SSA program
// over the inputs; every input is broadcast (NumPy rules) to the op's output shape and the
// program runs per output element, so intermediate values never touch memory. The compiler's
// fusion pass (compiler/fuse.ts) builds these from chains of elementwise nodes after autodiff,
// so the op has no gradient rule.
//
// Program: instruction i defines value i.
//   ['input', k]          input k at this element
//   ['const', c]          a constant
//   [unary, a]            relu | exp | softplus (as the single ops)
//   ['scale', a, α, β]    α·a + β
//   [binary, a, b]        add | sub | mul | div | relu_grad (a = x, b = dy) | softplus_grad (x, dy)
// `outputs` lists the values written out, each a tensor of `shape`.

import type { Attrs, OpDef, Shape, WasmExports } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, f32lit, grid1d, linearMain } from '../wgsl.ts';
import { WGSL_LOG1P } from '../elementwise/unary.ts';
import { WASM_RANK, broadcastStrides, collapse, contiguousStrides, gather64, offsetExpr, padForWasm } from '../elementwise/broadcast.ts';

export type FusedUnary = 'relu' | 'exp' | 'softplus';
export type FusedBinary = 'add' | 'sub' | 'mul' | 'div' | 'relu_grad' | 'softplus_grad';
export type FusedInstr = ['input', number] | ['const', number] | [FusedUnary, number] | ['scale', number, number, number] | [FusedBinary, number, number];

export interface FusedAttrs extends Attrs {
  /** The output shape; every input must broadcast to it. */
  shape: number[];
  program: FusedInstr[];
  /** Values (instruction indices) written out, in output order. */
  outputs: number[];
}

const UNARY: Record<FusedUnary, { f64: (x: number) => number; wgsl: (x: string) => string; code: number }> = {
  relu: { f64: (x) => (x > 0 ? x : 0), wgsl: (x) => `max(${x}, 0.0)`, code: 6 },
  exp: { f64: Math.exp, wgsl: (x) => `exp(${x})`, code: 7 },
  softplus: { f64: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))), wgsl: (x) => `select(log1p_(exp(${x})), ${x}, ${x} > 20.0)`, code: 8 },
};

const BINARY: Record<FusedBinary, { f64: (a: number, b: number) => number; wgsl: (a: string, b: string) => string; code: number }> = {
  add: { f64: (a, b) => a + b, wgsl: (a, b) => `${a} + ${b}`, code: 2 },
  sub: { f64: (a, b) => a - b, wgsl: (a, b) => `${a} - ${b}`, code: 3 },
  mul: { f64: (a, b) => a * b, wgsl: (a, b) => `${a} * ${b}`, code: 4 },
  div: { f64: (a, b) => a / b, wgsl: (a, b) => `${a} / ${b}`, code: 5 },
  relu_grad: { f64: (x, g) => (x > 0 ? g : 0), wgsl: (x, g) => `select(0.0, ${g}, ${x} > 0.0)`, code: 10 },
  softplus_grad: { f64: (x, g) => (x > 20 ? g : g / (1 + Math.exp(-x))), wgsl: (x, g) => `select(${g} / (1.0 + exp(-${x})), ${g}, ${x} > 20.0)`, code: 11 },
};

/** The single elementwise ops the program language covers (the fusion pass fuses exactly these). */
export const FUSIBLE_OPS: ReadonlySet<string> = new Set(['scale', ...Object.keys(UNARY), ...Object.keys(BINARY)]);

// Wasm opcodes beyond the unary/binary ones above (shared with kernel.as.ts).
const OP_LOAD = 0;
const OP_CONST = 1;
const OP_SCALE = 9;
const OP_STORE = 12;

/** Checks the attrs against the input shapes; returns the output shape. */
function check(inShapes: Shape[], attrs: FusedAttrs): number[] {
  const bad = (problem: string, hint = '') => new OpError('fused', problem, inShapes, hint);
  const { shape, program, outputs } = attrs;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`attr shape must be an array of integers ≥ 0, got ${JSON.stringify(shape)}`);
  if (!Array.isArray(program) || !program.length) throw bad('attr program must be a non-empty list of instructions');
  if (!Array.isArray(outputs) || !outputs.length) throw bad('attr outputs must list at least one value');
  inShapes.forEach((s, k) => {
    const lead = shape.length - s.length;
    if (lead < 0 || s.some((d, i) => d !== 1 && d !== shape[lead + i]))
      throw bad(`input ${k} ${fmtShape(s)} does not broadcast to the output shape ${fmtShape(shape)}`, 'Each input axis must equal the output axis (matched from the right) or be 1');
  });
  const ref = (i: number, at: number, what: string) => {
    if (!Number.isInteger(i) || i < 0 || i >= at) throw bad(`instruction ${at} (${what}) refers to value ${i}; only values 0..${at - 1} are defined before it`);
  };
  program.forEach((ins, at) => {
    const [op, ...args] = ins as [string, ...number[]];
    if (op === 'input') {
      if (!Number.isInteger(args[0]) || args[0] < 0 || args[0] >= inShapes.length) throw bad(`instruction ${at} loads input ${args[0]} but the op has ${inShapes.length} inputs`);
    } else if (op === 'const') {
      if (!Number.isFinite(args[0])) throw bad(`instruction ${at}: const needs a finite number, got ${args[0]}`);
    } else if (op === 'scale') {
      ref(args[0], at, op);
      if (!Number.isFinite(args[1]) || !Number.isFinite(args[2])) throw bad(`instruction ${at}: scale needs finite α and β, got ${args[1]}, ${args[2]}`);
    } else if (op in UNARY) ref(args[0], at, op);
    else if (op in BINARY) {
      ref(args[0], at, op);
      ref(args[1], at, op);
    } else throw bad(`instruction ${at} has unknown op '${op}'`, `Known: input, const, scale, ${[...FUSIBLE_OPS].filter((o) => o !== 'scale').join(', ')}`);
  });
  for (const o of outputs) if (!Number.isInteger(o) || o < 0 || o >= program.length) throw bad(`output value ${o} is not an instruction of the program (0..${program.length - 1})`);
  return [...shape];
}

/** The collapsed iteration space: output dims and each input's strides along them. */
function space(inShapes: Shape[], shape: number[]) {
  return collapse(shape, inShapes.map((s) => broadcastStrides(s, shape)));
}

/** Float64 semantics: every input broadcast to the output shape, the program run per element. */
function float64(inputs: Float64Array[], inShapes: Shape[], attrs: FusedAttrs): Float64Array[] {
  const shape = check(inShapes, attrs);
  const n = numel(shape);
  const vals: Float64Array[] = [];
  for (const ins of attrs.program) {
    const [op, a, b, c] = ins as [string, number, number, number];
    let v: Float64Array;
    if (op === 'input') v = gather64(inputs[a], shape, broadcastStrides(inShapes[a], shape));
    else if (op === 'const') v = new Float64Array(n).fill(a);
    else if (op === 'scale') v = vals[a].map((x) => b * x + c);
    else if (op in UNARY) v = vals[a].map(UNARY[op as FusedUnary].f64);
    else {
      const f = BINARY[op as FusedBinary].f64;
      const x = vals[a];
      const y = vals[b];
      v = x.map((xi, i) => f(xi, y[i]));
    }
    vals.push(v);
  }
  // Outputs are copies: one value may be written out twice.
  return attrs.outputs.map((o) => vals[o].slice());
}

/** One WGSL shader: each invocation loads its inputs once, evaluates the program, stores the outputs. */
function wgsl(inShapes: Shape[], attrs: FusedAttrs) {
  const shape = check(inShapes, attrs);
  const n = numel(shape);
  const c = space(inShapes, shape);
  const nIn = inShapes.length;
  const decl = [
    ...inShapes.map((_, k) => `@group(0) @binding(${k}) var<storage, read> X${k}: array<f32>;`),
    ...attrs.outputs.map((_, j) => `@group(0) @binding(${nIn + j}) var<storage, read_write> Y${j}: array<f32>;`),
  ];
  const body = attrs.program.map((ins, i) => {
    const [op, a, b, cc] = ins as [string, number, number, number];
    let e: string;
    if (op === 'input') e = `X${a}[${offsetExpr(c.dims, c.strides[a], 'i')}]`;
    else if (op === 'const') e = f32lit(a);
    else if (op === 'scale') e = `v${a} * ${f32lit(b)} + ${f32lit(cc)}`;
    else if (op in UNARY) e = UNARY[op as FusedUnary].wgsl(`v${a}`);
    else e = BINARY[op as FusedBinary].wgsl(`v${a}`, `v${b}`);
    return `  let v${i}: f32 = ${e};`;
  });
  const stores = attrs.outputs.map((o, j) => `  Y${j}[i] = v${o};`);
  const usesLog1p = attrs.program.some(([op]) => op === 'softplus');
  return {
    passes: [
      {
        bindings: [...Array(nIn + attrs.outputs.length).keys()],
        workgroups: grid1d(n),
        code: `${decl.join('\n')}
${usesLog1p ? WGSL_LOG1P : ''}
${linearMain()} {
  let i = ${LINEAR_INDEX};
  if (i >= ${n}u) { return; }
${body.join('\n')}
${stores.join('\n')}
}`,
      },
    ],
  };
}

/** Elements per chunk of the Wasm interpreter: one register holds one chunk. */
export const WASM_CHUNK = 1024;

/**
 * Register allocation for the Wasm stack machine: each value gets a register, freed after its
 * last use (stores of outputs come right after the value is defined, so they never extend a life).
 */
function allocate(program: FusedInstr[], outputs: number[]): { reg: number[]; count: number; stores: Map<number, number[]> } {
  const last = program.map((_, i) => i);
  program.forEach((ins, i) => {
    const [op, a, b] = ins as [string, number, number];
    if (op === 'input' || op === 'const') return;
    last[a] = i;
    if (op in BINARY) last[b] = i;
  });
  const stores = new Map<number, number[]>();
  outputs.forEach((o, j) => stores.set(o, [...(stores.get(o) ?? []), j]));
  const free: number[] = [];
  const reg: number[] = [];
  let count = 0;
  program.forEach((ins, i) => {
    const [op, a, b] = ins as [string, number, number];
    // Operands dying here hand their register back first: the kernels may write in place.
    if (op !== 'input' && op !== 'const') {
      if (last[a] === i && !free.includes(reg[a])) free.push(reg[a]);
      if (op in BINARY && last[b] === i && !free.includes(reg[b])) free.push(reg[b]);
    }
    reg[i] = free.length ? free.pop()! : count++;
    // A value nothing reads (an output only, or dead) frees its register once stored.
    if (last[i] === i) free.push(reg[i]);
  });
  return { reg, count, stores };
}

/**
 * The Wasm plan: a descriptor (header, iteration space, input pointers and strides, output
 * pointers, instructions) and a register file live in one scratch buffer; the descriptor is
 * written on the first run (the buffer offsets are known only then) and the kernel
 * `fused_run(desc)` interprets it chunk by chunk.
 */
function wasm(inShapes: Shape[], attrs: FusedAttrs) {
  const shape = check(inShapes, attrs);
  const c = padForWasm('fused', space(inShapes, shape), inShapes);
  const iter = contiguousStrides(c.dims);
  const nIn = inShapes.length;
  const nOut = attrs.outputs.length;
  const { reg, count, stores } = allocate(attrs.program, attrs.outputs);
  const code: number[] = [];
  const f32bits = (x: number) => new Int32Array(Float32Array.of(x).buffer)[0];
  attrs.program.forEach((ins, i) => {
    const [op, a, b, cc] = ins as [string, number, number, number];
    // A computed output value is written straight into its output (word 5: output + 1); an
    // input passed through, or a value written out twice, is copied by a store.
    const outs = stores.get(i) ?? [];
    const direct = op === 'input' || !outs.length ? 0 : outs[0] + 1;
    if (op === 'input') code.push(OP_LOAD, reg[i], a, 0, 0, 0);
    else if (op === 'const') code.push(OP_CONST, reg[i], f32bits(a), 0, 0, direct);
    else if (op === 'scale') code.push(OP_SCALE, reg[i], reg[a], f32bits(b), f32bits(cc), direct);
    else if (op in UNARY) code.push(UNARY[op as FusedUnary].code, reg[i], reg[a], 0, 0, direct);
    else code.push(BINARY[op as FusedBinary].code, reg[i], reg[a], reg[b], 0, direct);
    for (const j of outs.slice(direct ? 1 : 0)) code.push(OP_STORE, j, reg[i], 0, 0, 0);
  });
  // Layout in words: registers (count·CHUNK floats, 16-byte aligned at the buffer start), the
  // registers' chunk pointers (count), then the descriptor: header [nInstr, n, regs, nIn, nOut,
  // count, -, -], dims[8], inputs 8 words each [ptr, contiguous, strides×6], output pointers,
  // instructions 6 words each [op, reg, a, b, c, output + 1].
  const regWords = count * WASM_CHUNK + count;
  const IN = 16;
  const OUT = IN + 8 * nIn;
  const INS = OUT + nOut;
  const desc = new Int32Array(INS + code.length);
  desc.set([code.length / 6, numel(shape), 0, nIn, nOut, count]);
  desc.set(c.dims, 8);
  c.strides.forEach((s, k) => {
    if (s[WASM_RANK - 1] > 1) throw new OpError('fused', `input ${k}'s innermost stride is ${s[WASM_RANK - 1]}, expected 0 or 1`, inShapes);
    desc[IN + 8 * k + 1] = s.every((x, d) => x === iter[d] || c.dims[d] === 1) ? 1 : 0;
    desc.set(s, IN + 8 * k + 2);
  });
  desc.set(code, INS);
  let written = '';
  return {
    scratch: [regWords + desc.length],
    run: (k: WasmExports, bufs: number[]) => {
      const scratch = bufs[nIn + nOut];
      const d = scratch + regWords * 4;
      const key = bufs.join();
      if (key !== written) {
        desc[2] = scratch;
        for (let i = 0; i < nIn; i++) desc[IN + 8 * i] = bufs[i];
        for (let j = 0; j < nOut; j++) desc[OUT + j] = bufs[nIn + j];
        for (let w = 0; w < desc.length; w++) k.fused_poke(d + 4 * w, desc[w]);
        written = key;
      }
      k.fused_run(d);
    },
  };
}

export const fused: OpDef<FusedAttrs> = {
  name: 'fused',
  shape: (s, attrs) => {
    const out = check(s, attrs);
    return attrs.outputs.map(() => out);
  },
  float64,
  wgsl,
  wasm,
};

export const fusedOps: OpDef<any>[] = [fused];
