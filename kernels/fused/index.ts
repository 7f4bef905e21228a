// `fused`: several elementwise ops in one pass over memory. Its attrs carry a small SSA program
// over the inputs; every input is broadcast (NumPy rules) to the op's output shape and the
// program runs per output element, so intermediate values never touch memory. The compiler's
// fusion pass (compiler/fuse.ts) builds these from chains of elementwise nodes after autodiff,
// so the op has no gradient rule.
//
// Program: instruction i defines value i.
//   ['input', k]               input k at this element
//   ['const', c]               a constant
//   [op, a, (b), (p, q)]       a pointwise op of kernels/elementwise/pointwise.ts on values a (and
//                              b), then its parameters: ['relu', a], ['add', a, b],
//                              ['scale', a, α, β] (α·a + β), ['relu_grad', x, dy], …
// `outputs` lists the values written out, each a tensor of `shape`.

import type { Attrs, OpDef, Shape, WasmExports } from '../types.ts';
import { OpError, fmtShape, numel } from '../types.ts';
import { LINEAR_INDEX, f32lit, grid1d, linearMain } from '../wgsl.ts';
import { FUSED_SPECIAL, POINTWISE, pointwiseOp, type PointwiseOp } from '../elementwise/pointwise.ts';
import { WASM_RANK, broadcastStrides, collapse, contiguousStrides, gather64, offsetExpr, padForWasm } from '../elementwise/broadcast.ts';

/** An instruction: ['input', k], ['const', c] or [pointwise op, ...operands, ...parameters]. */
export type FusedInstr = ['input', number] | ['const', number] | [op: string, ...args: number[]];

export interface FusedAttrs extends Attrs {
  /** The output shape; every input must broadcast to it. */
  shape: number[];
  program: FusedInstr[];
  /** Values (instruction indices) written out, in output order. */
  outputs: number[];
}

/** The single elementwise ops the program language covers (the fusion pass fuses exactly these). */
export const FUSIBLE_OPS: ReadonlySet<string> = new Set(POINTWISE.map((op) => op.name));

/** A pointwise instruction split into its op, operand values and parameters. */
function decode(ins: FusedInstr): { pw: PointwiseOp; operands: number[]; params: number[] } {
  const [op, ...args] = ins as [string, ...number[]];
  const pw = pointwiseOp(op)!;
  return { pw, operands: args.slice(0, pw.arity), params: args.slice(pw.arity) };
}

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
  // Ops listed by instruction form (with parameters, unary, binary), each in opcode order.
  const form = (op: PointwiseOp) => (op.params?.length ? 0 : op.arity);
  const known = [...POINTWISE].sort((x, y) => form(x) - form(y) || x.opcode - y.opcode).map((op) => op.name);
  program.forEach((ins, at) => {
    const [op, ...args] = ins as [string, ...number[]];
    if (op === 'input') {
      if (!Number.isInteger(args[0]) || args[0] < 0 || args[0] >= inShapes.length) throw bad(`instruction ${at} loads input ${args[0]} but the op has ${inShapes.length} inputs`);
      return;
    }
    if (op === 'const') {
      if (!Number.isFinite(args[0])) throw bad(`instruction ${at}: const needs a finite number, got ${args[0]}`);
      return;
    }
    const pw = pointwiseOp(op);
    if (!pw) throw bad(`instruction ${at} has unknown op '${op}'`, `Known: input, const, ${known.join(', ')}`);
    const names = (pw.params ?? []).map((p) => p.name);
    if (args.length !== pw.arity + names.length)
      throw bad(`instruction ${at}: ${op} takes ${pw.arity} operand${pw.arity > 1 ? 's' : ''}${names.length ? ` and then ${names.join(', ')}` : ''}, got ${args.length} numbers`);
    for (let k = 0; k < pw.arity; k++) ref(args[k], at, op);
    const params = args.slice(pw.arity);
    if (params.some((p) => !Number.isFinite(p))) throw bad(`instruction ${at}: ${op} needs finite ${names.join(' and ')}, got ${params.join(', ')}`);
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
    const [op, a] = ins as [string, number];
    let v: Float64Array;
    if (op === 'input') v = gather64(inputs[a], shape, broadcastStrides(inShapes[a], shape));
    else if (op === 'const') v = new Float64Array(n).fill(a);
    else {
      const { pw, operands, params } = decode(ins);
      const x = vals[operands[0]];
      const y = vals[operands[pw.arity - 1]];
      v = x.map((xi, i) => pw.f64(xi, y[i], params));
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
    const [op, a] = ins as [string, number];
    let e: string;
    if (op === 'input') e = `X${a}[${offsetExpr(c.dims, c.strides[a], 'i')}]`;
    else if (op === 'const') e = f32lit(a);
    else {
      const { pw, operands, params } = decode(ins);
      e = pw.wgsl(operands.map((v) => `v${v}`), params.map(f32lit));
    }
    return `  let v${i}: f32 = ${e};`;
  });
  const stores = attrs.outputs.map((o, j) => `  Y${j}[i] = v${o};`);
  const helpers = new Set(attrs.program.map(([op]) => pointwiseOp(op)?.wgslHelpers ?? ''));
  helpers.delete('');
  return {
    passes: [
      {
        bindings: [...Array(nIn + attrs.outputs.length).keys()],
        workgroups: grid1d(n),
        code: `${decl.join('\n')}
${[...helpers].join('\n')}
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
/** Words per instruction of the Wasm descriptor (kernel.as.ts). */
const INSTR_WORDS = 8;

/**
 * Register allocation for the Wasm stack machine: each value gets a register, freed after its
 * last use (stores of outputs come right after the value is defined, so they never extend a life).
 */
function allocate(program: FusedInstr[], outputs: number[]): { reg: number[]; count: number; stores: Map<number, number[]> } {
  const operandsOf = (ins: FusedInstr) => (ins[0] === 'input' || ins[0] === 'const' ? [] : decode(ins).operands);
  const last = program.map((_, i) => i);
  program.forEach((ins, i) => {
    for (const a of operandsOf(ins)) last[a] = i;
  });
  const stores = new Map<number, number[]>();
  outputs.forEach((o, j) => stores.set(o, [...(stores.get(o) ?? []), j]));
  const free: number[] = [];
  const reg: number[] = [];
  let count = 0;
  program.forEach((ins, i) => {
    // Operands dying here hand their register back first: the kernels may write in place.
    for (const a of operandsOf(ins)) if (last[a] === i && !free.includes(reg[a])) free.push(reg[a]);
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
    const [op, a] = ins as [string, number];
    // A computed output value is written straight into its output (word 6: output + 1); an
    // input passed through, or a value written out twice, is copied by a store.
    const outs = stores.get(i) ?? [];
    const direct = op === 'input' || !outs.length ? 0 : outs[0] + 1;
    if (op === 'input') code.push(FUSED_SPECIAL.input, reg[i], a, 0, 0, 0, 0, 0);
    else if (op === 'const') code.push(FUSED_SPECIAL.const, reg[i], f32bits(a), 0, 0, 0, direct, 0);
    else {
      // A unary op names its operand twice (words 2 and 3); parameters go in words 4 and 5.
      const { pw, operands, params } = decode(ins);
      const [p = 0, q = 0] = params.map(f32bits);
      code.push(pw.opcode, reg[i], reg[operands[0]], reg[operands[pw.arity - 1]], p, q, direct, 0);
    }
    for (const j of outs.slice(direct ? 1 : 0)) code.push(FUSED_SPECIAL.store, j, reg[i], 0, 0, 0, 0, 0);
  });
  // Layout in words: registers (count·CHUNK floats, 16-byte aligned at the buffer start), the
  // registers' chunk pointers (count), then the descriptor: header [nInstr, n, regs, nIn, nOut,
  // count, -, -], dims[8], inputs 8 words each [ptr, contiguous, strides×6], output pointers,
  // instructions INSTR_WORDS each [op, reg, a, b, p, q, output + 1, -] (a store: [op, output,
  // value's register, …]; p, q as f32 bits).
  const regWords = count * WASM_CHUNK + count;
  const IN = 16;
  const OUT = IN + 8 * nIn;
  const INS = OUT + nOut;
  const desc = new Int32Array(INS + code.length);
  desc.set([code.length / INSTR_WORDS, numel(shape), 0, nIn, nOut, count]);
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
