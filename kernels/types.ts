// The contract every op module fulfils: a shape rule, a float64 implementation (the oracle), a gradient rule
// written against an abstract emitter, a WGSL plan and a Wasm call. Backends and the
// compiler only ever see ops through this interface.

export type Shape = readonly number[];
export type Attrs = Record<string, unknown>;

export const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);
export const fmtShape = (s: Shape): string => `[${s.join(', ')}]`;

/** An op's error: names the op, the shapes involved and what to do about it. */
export class OpError extends Error {
  constructor(op: string, problem: string, shapes: Shape[] = [], hint = '') {
    const got = shapes.length ? ` (input shapes ${shapes.map(fmtShape).join(', ')})` : '';
    super(`${op}: ${problem}${got}${hint ? `. ${hint}` : ''}`);
    this.name = 'OpError';
  }
}

/**
 * What a gradient rule builds with. The same rule runs eagerly on the float64 oracle, eagerly
 * on a device, or symbolically inside the compiler's graph IR.
 */
export interface Emitter<T> {
  call(op: string, inputs: T[], attrs?: Attrs): T[];
  shape(t: T): Shape;
}

export interface GradContext<T, A> {
  inputs: T[];
  outputs: T[];
  /** Upstream gradients, one per output; null where an output gets no gradient. */
  dOutputs: (T | null)[];
  attrs: A;
}

/**
 * One compute dispatch. `bindings` index into the launch's buffers laid out as
 * [...inputs, ...outputs, ...scratch]; the pass declares them as @group(0) @binding(0..n-1)
 * in that order, and, when `uniform` is given, a uniform buffer at @binding(n).
 * The entry point is `main`.
 */
export interface WgslPass {
  code: string;
  bindings: number[];
  workgroups: [number, number, number];
  uniform?: ArrayBuffer;
  /**
   * FLOPs (2 × multiply-adds) the pass executes, counting multiplies by zero a loader
   * supplies (padding, a dilated input): what the GEMM really does, for the bench's counter.
   */
  flops?: number;
}

/**
 * What a WGSL generator may use beyond core WebGPU: the device's optional features as the
 * backend detected them (runtime/webgpu.ts), never assumed. Ops that use none ignore it.
 */
export interface WgslTarget {
  /** 'subgroups': `enable subgroups;` and subgroupAdd & co. (any subgroup size the spec allows, 4…128). */
  subgroups: boolean;
}

/** Core WGSL only: what generators emit when no device is given (printing, counting FLOPs). */
export const CORE_WGSL: WgslTarget = { subgroups: false };

export interface WgslPlan {
  passes: WgslPass[];
  /** Extra device buffers (sizes in f32 elements) the passes need; allocated once per launch. */
  scratch?: number[];
}

/** The AssemblyScript module's exports: kernels take byte offsets into the one shared memory. */
export type WasmExports = Record<string, (...args: number[]) => number | void>;

export interface WasmPlan {
  /** Extra arena buffers (sizes in f32 elements). */
  scratch?: number[];
  /** `bufs` are byte offsets laid out as [...inputs, ...outputs, ...scratch]. */
  run(k: WasmExports, bufs: number[]): void;
  /**
   * Optional multithreaded form (runtime/wasm-threads.ts): null when not worth splitting for
   * `threads` threads, else the scratch of each piece and, given the byte offsets of the inputs
   * and outputs and of each piece's scratch, each piece's kernel calls (piece 0 on the calling
   * thread) and calls the caller makes once all pieces are done (e.g. summing partial results).
   */
  split?(threads: number): WasmSplit | null;
}

/** A kernel call by export name, serialisable for a worker thread. */
export type WasmCall = [fn: string, ...args: number[]];

export interface WasmSplit {
  scratch: number[][];
  calls(io: number[], scratch: number[][]): { pieces: WasmCall[][]; after?: WasmCall[] };
}

export interface OpDef<A extends Attrs = Attrs> {
  name: string;
  /** Output shapes; throws OpError on inputs or attributes the op cannot take. */
  shape(inShapes: Shape[], attrs: A): Shape[];
  /** Plain float64 semantics: the ground truth for both backends. */
  float64(inputs: Float64Array[], inShapes: Shape[], attrs: A): Float64Array[];
  /** Gradients w.r.t. each input (null where none), built from other ops. Absent: not differentiable. */
  grad?<T>(em: Emitter<T>, ctx: GradContext<T, A>): (T | null)[];
  /**
   * Outputs written into an input's buffer (output index → input index), e.g. Adam's state or
   * BatchNorm's running statistics. Devices bind that buffer once, read_write; the reference
   * stays pure and returns the new values as ordinary outputs.
   */
  inplace?: Record<number, number>;
  /** A view (reshape): output 0 shares input 0's buffer and no kernel runs. */
  view?: boolean;
  wgsl(inShapes: Shape[], attrs: A, target?: WgslTarget): WgslPlan;
  wasm(inShapes: Shape[], attrs: A): WasmPlan;
}

/** Cache key of a launch: the op, its input shapes and its attributes. */
export const launchKey = (op: string, inShapes: Shape[], attrs: Attrs): string =>
  `${op}|${inShapes.map(fmtShape).join('')}|${JSON.stringify(attrs)}`;
