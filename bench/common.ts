// What every benchmark shares: the tasks (a conv layer's forward, input gradient and weight
// gradient; a matmul), their FLOP counts, a timer (warm-up, repetitions, median) and the
// interface an engine (our backends, TensorFlow.js, ONNX Runtime) implements.

/** One 2D convolution layer, NCHW, square kernel. */
export interface ConvLayer {
  name: string;
  B: number;
  Ci: number;
  H: number;
  W: number;
  Co: number;
  K: number;
  stride: number;
  pad: number;
}

export const convOut = (l: ConvLayer): [number, number] => [
  Math.floor((l.H + 2 * l.pad - l.K) / l.stride) + 1,
  Math.floor((l.W + 2 * l.pad - l.K) / l.stride) + 1,
];

/**
 * `fwd`: y = conv(x, w); `dx`: the input gradient, conv_transpose(dy, w); `dw`: the weight
 * gradient, conv_grad_weight(x, dy). All three cost the same multiply-adds.
 */
export type ConvPass = 'fwd' | 'dx' | 'dw';

export type Task =
  | { kind: 'conv'; pass: ConvPass; layer: ConvLayer }
  | { kind: 'matmul'; M: number; N: number; K: number };

export function taskFlops(t: Task): number {
  if (t.kind === 'matmul') return 2 * t.M * t.N * t.K;
  const { B, Ci, Co, K } = t.layer;
  const [oh, ow] = convOut(t.layer);
  return 2 * B * Co * Ci * K * K * oh * ow;
}

export function taskName(t: Task): string {
  if (t.kind === 'matmul') return `matmul ${t.M}x${t.K} · ${t.K}x${t.N}`;
  return `${t.layer.name} ${t.pass}`;
}

/** A shape string that says what was run, e.g. `x[8,32,80,48] w[32,32,4,4] s2 p1`. */
export function taskShape(t: Task): string {
  if (t.kind === 'matmul') return `a[${t.M},${t.K}] b[${t.K},${t.N}]`;
  const { B, Ci, H, W, Co, K, stride, pad } = t.layer;
  return `x[${B},${Ci},${H},${W}] w[${Co},${Ci},${K},${K}] s${stride} p${pad}`;
}

export interface Timing {
  medianMs: number;
  minMs: number;
  reps: number;
  /** FLOPs of one repetition (a WebGPU batch counts every launch in it). */
  flops: number;
  gflops: number;
}

export interface TimerOptions {
  warmup: number;
  minReps: number;
  maxReps: number;
  /** Stop adding repetitions once this much time was spent (after minReps). */
  budgetMs: number;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Runs `fn` warm-up times untimed, then at least minReps timed times; reports the median. */
export async function timeIt(fn: () => unknown, flops: number, o: TimerOptions): Promise<Timing> {
  for (let i = 0; i < o.warmup; i++) await fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < o.minReps || (samples.length < o.maxReps && performance.now() - start < o.budgetMs)) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  const medianMs = median(samples);
  return { medianMs, minMs: Math.min(...samples), reps: samples.length, flops, gflops: flops / (medianMs * 1e6) };
}

export type Outcome = { ok: true; timing: Timing; note?: string } | { ok: false; reason: string };

/** Something that can run tasks: one of our backends or a peer library. */
export interface Engine {
  /** Column name, e.g. `wasm`, `tfjs-wasm`. */
  name: string;
  /** One line: version, threads, SIMD, how it was loaded. */
  describe(): string;
  run(task: Task, timer: TimerOptions): Promise<Outcome>;
  /**
   * Computes a task once on given inputs, for the cross-check against the float64 reference.
   * Inputs and output use our layouts (see taskIO), whatever the engine uses inside.
   */
  compute(task: Task, inputs: Float32Array[]): Promise<Float32Array>;
  close?(): Promise<void> | void;
}

/**
 * A task's inputs and output in our layouts: fwd (x NCHW, w [Co,Ci,K,K]) → y NCHW;
 * dx (dy NCHW, w) → dx NCHW; dw (x, dy) → dw [Co,Ci,K,K]; matmul (a [M,K], b [K,N]) → [M,N].
 */
export function taskIO(t: Task): { inputs: number[][]; output: number[] } {
  if (t.kind === 'matmul') return { inputs: [[t.M, t.K], [t.K, t.N]], output: [t.M, t.N] };
  const { B, Ci, H, W, Co, K } = t.layer;
  const [oh, ow] = convOut(t.layer);
  const x = [B, Ci, H, W];
  const y = [B, Co, oh, ow];
  const w = [Co, Ci, K, K];
  if (t.pass === 'fwd') return { inputs: [x, w], output: y };
  if (t.pass === 'dx') return { inputs: [y, w], output: x };
  return { inputs: [x, y], output: w };
}

/** out = data (of `shape`) with its axes permuted: out.shape[i] = shape[perm[i]]. */
export function permute(data: ArrayLike<number>, shape: number[], perm: number[]): Float32Array {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const stepOf = perm.map((p) => inStrides[p]); // input stride of each output axis
  const out = new Float32Array(data.length);
  const idx = new Array(shape.length).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src];
    // Advance the output index like an odometer, moving `src` by the matching input strides.
    for (let a = outShape.length - 1; a >= 0; a--) {
      idx[a]++;
      src += stepOf[a];
      if (idx[a] < outShape[a]) break;
      src -= stepOf[a] * outShape[a];
      idx[a] = 0;
    }
  }
  return out;
}

/** Deterministic inputs (uniform in [-1, 1)); the values do not matter for timing, but denormals would. */
export function fill(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return a;
}

export const errMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];
