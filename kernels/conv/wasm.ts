// Wasm plans of the conv family (AssemblyScript kernels in kernel.as.ts): implicit GEMMs on the
// packed SIMD GEMM of kernels/matmul. Each plan sets the geometry (conv_geom) and makes one call.

import type { Attrs, Shape, WasmCall, WasmExports, WasmPlan, WasmSplit } from '../types.ts';
import { GEMM, MIN_SPLIT_MACS, gemmScratch, splitEven } from '../matmul/wasm.ts';
import {
  type ConvAttrs, type ConvGeom, type ConvGradWeightAttrs, type ConvTransposeAttrs, type Vec3,
  convGeom, convGradWeightGeom, convTransposeGeom, vol,
} from './geometry.ts';

/** conv_geom(image, grid, kernel, stride, pad): image index = grid index · stride + offset − pad. */
const setGeom = (k: WasmExports, image: Vec3, grid: Vec3, g: ConvGeom): void =>
  void k.conv_geom(...image, ...grid, ...g.K, ...g.stride, ...g.pad);
const geomCall = (image: Vec3, grid: Vec3, g: ConvGeom): WasmCall =>
  ['conv_geom', ...image, ...grid, ...g.K, ...g.stride, ...g.pad];

/**
 * The threaded form of a conv-family op: images split over threads. `scratchFor(b)` sizes a
 * piece of b images, `call(b0, b, io, scratch)` is its kernel call; `after` sums partials.
 */
function batchSplit(
  g: ConvGeom, threads: number, macs: number, geom: WasmCall,
  scratchFor: (b: number) => number[],
  call: (b0: number, b: number, io: number[], scratch: number[]) => WasmCall,
  after?: (io: number[], scratch: number[][]) => WasmCall[],
): WasmSplit | null {
  const parts = Math.min(threads, g.B);
  if (parts < 2 || macs < MIN_SPLIT_MACS) return null;
  const ranges = splitEven(g.B, parts);
  return {
    scratch: ranges.map(([, b]) => scratchFor(b)),
    calls: (io, scratch) => ({
      pieces: ranges.map(([b0, b], t) => [geom, call(b0, b, io, scratch[t])]),
      after: after?.(io, scratch),
    }),
  };
}

let directB = true;
/** Turns the implicit GEMMs' direct path off (tests: both paths must give the same bits). */
export const setConvDirect = (on: boolean): void => void (directB = on);

/**
 * Floats of the direct path's buffer (`rb` in kernel.as.ts: its offset table, panel bases and
 * staged image rows) for a stride-`s` conv of kernel `K` onto `grid`, or 0 for the packed path:
 * the direct one needs grid rows of whole 8-column panels, and blocks of rows wide enough.
 * Mirrors implicit_gemm's blocks and stagedFloats, which traps on a buffer too small.
 */
function directFloats(Ci: number, grid: Vec3, K: Vec3, s: Vec3): number {
  const [GD, GH, GW] = grid;
  const rows = GW <= GEMM.NC ? Math.min(Math.floor(GEMM.NC / GW), GH) : 0;
  if (!directB || GD * GH * GW === 0 || GW % GEMM.NR !== 0 || rows * GW < DIRECT_MIN_COLS) return 0;
  const stagedRow = s[2] * (GW + Math.floor((K[2] - 1) / s[2]));
  return GEMM.KC + GEMM.NC / GEMM.NR + Ci * K[0] * ((rows - 1) * s[1] + K[1]) * stagedRow;
}
/** Columns a direct block must have at least: narrower blocks repack A too often. */
const DIRECT_MIN_COLS = 256;

/**
 * directFloats of conv_transpose's phases (stride-1 convs, see kernel.as.ts): the largest, or 0
 * unless every phase takes the direct path (the kernel passes one buffer to them all).
 */
function phaseDirectFloats(g: ConvGeom): number {
  const floats = transposePhases(g).map((c) => directFloats(g.Ci, c.grid, c.K, c.s));
  return floats.includes(0) ? 0 : Math.max(0, ...floats);
}

let paddedB = true;
/** Turns the packed path's padded copy off (tests: with and without it, the same bits). */
export const setConvPadded = (on: boolean): void => void (paddedB = on);

/**
 * Floats of the packed path's zero-padded copy of `images` images of size I (stage_padded in
 * kernel.as.ts) for `convs`, each a kernel K onto `grid` with stride s and pad p (a transpose's
 * phases share one copy: the widest padding any reads): 0 where none is read (the copy is x
 * itself), −1 where it would pass PADDED_MAX_FLOATS (then each tap is bounds-tested instead).
 * Mirrors need_padding.
 */
function paddedFloats(images: number, Ci: number, I: Vec3, convs: GridConv[]): number {
  if (!paddedB) return -1;
  const size = I.map((n, d) => n + Math.max(0, ...convs.map((c) => c.p[d]))
    + Math.max(0, ...convs.map((c) => (c.grid[d] - 1) * c.s[d] + c.K[d] - c.p[d] - n)));
  if (vol(size as Vec3) === vol(I)) return 0;
  const floats = images * Ci * vol(size as Vec3);
  return floats <= PADDED_MAX_FLOATS ? floats : -1;
}
/** The padded copy's limit per call (per thread's piece): 8 MiB, so that large inputs are not held twice. */
const PADDED_MAX_FLOATS = 1 << 21;

/** A kernel K onto `grid` with stride s and pad p: a conv's own geometry, or a transpose phase's. */
interface GridConv { grid: Vec3; K: Vec3; s: Vec3; p: Vec3 }
const gridConv = (g: ConvGeom): GridConv => ({ grid: g.O, K: g.K, s: g.stride, p: g.pad });

/** The kernel's last two arguments for a padded copy of `floats` (paddedFloats) in buffer `buf`. */
const paddedArgs = (floats: number, buf: number): [number, number] => [floats > 0 ? buf : 0, floats];

/** conv_transpose's output phases (taps K may be 0), as the stride-1 convs set_phase in kernel.as.ts makes of them. */
function transposePhases(g: ConvGeom): GridConv[] {
  const per = (d: number) => Array.from({ length: Math.min(g.stride[d], g.O[d]) }, (_, r) => {
    const t0 = (r + g.pad[d]) % g.stride[d];
    const k = t0 < g.K[d] ? Math.ceil((g.K[d] - t0) / g.stride[d]) : 0;
    return { grid: Math.ceil((g.O[d] - r) / g.stride[d]), k, p: k - 1 - Math.floor((r + g.pad[d] - t0) / g.stride[d]) };
  });
  return per(0).flatMap((z) => per(1).flatMap((y) => per(2).map((x) => ({
    grid: [z.grid, y.grid, x.grid] as Vec3, K: [z.k, y.k, x.k] as Vec3, s: [1, 1, 1] as Vec3, p: [z.p, y.p, x.p] as Vec3,
  }))));
}

/**
 * Few output channels (the paper's output conv: Co = 2) go to conv_small_co and
 * conv_grad_weight_small (kernel.as.ts), which run along image rows: the GEMM's tiles would run
 * mostly empty. They need stride 1 along x. Measured (one thread, batch 8, alternated with the
 * GEMM path, fastest of 15): dec.up4.conv2's weight gradient 6.6–7.6 ms against 18.1–19.7, its
 * forward 8.2–9.7 against 10.4–11.6, enc.down0.conv2's input gradient 2.7–3.0 against 3.0–3.6.
 */
const SMALL_CO = 2;
const smallCo = (g: ConvGeom): boolean => g.Co <= SMALL_CO && g.stride[2] === 1;

export const convWasm = (inShapes: Shape[], attrs: Attrs): WasmPlan => {
  const g = convGeom(inShapes, attrs as ConvAttrs);
  const hasBias = inShapes.length === 3;
  if (smallCo(g)) {
    const call = (B: number, x: number, w: number, bias: number, y: number): WasmCall =>
      ['conv_small_co', B, g.Ci, g.Co, x, w, hasBias ? 1 : 0, bias, y];
    const ioOf = (io: number[]) => (hasBias ? io : [io[0], io[1], 0, io[2]]);
    return {
      run: (k, bufs) => {
        const [x, w, bias, y] = ioOf(bufs);
        setGeom(k, g.S, g.O, g);
        const [fn, ...args] = call(g.B, x, w, bias, y);
        k[fn](...args);
      },
      split: (threads) => batchSplit(g, threads, g.B * vol(g.O) * g.Co * g.Ci * vol(g.K), geomCall(g.S, g.O, g), () => [],
        (b0, b, io) => {
          const [x, w, bias, y] = ioOf(io);
          return call(b, x + 4 * b0 * g.Ci * vol(g.S), w, bias, y + 4 * b0 * g.Co * vol(g.O));
        }),
    };
  }
  const N = g.B * vol(g.O); // the batch folds into the GEMM's columns
  const rb = directFloats(g.Ci, g.O, g.K, g.stride);
  const padded = (b: number) => (rb ? -1 : paddedFloats(b, g.Ci, g.S, [gridConv(g)]));
  const pf = padded(g.B);
  return {
    scratch: [gemmScratch(g.Co, N, g.Ci * vol(g.K)), g.Co * Math.min(N, GEMM.NC), rb, Math.max(0, pf)],
    run: (k, bufs) => {
      const [x, w] = bufs;
      const [bias, y, scratch, cbuf, rbuf, pbuf] = hasBias ? bufs.slice(2) : [0, ...bufs.slice(2)];
      setGeom(k, g.S, g.O, g);
      k.conv_fwd(g.B, g.Ci, g.Co, x, w, hasBias ? 1 : 0, bias, y, scratch, cbuf, rb ? rbuf : 0, rb, ...paddedArgs(pf, pbuf));
    },
    split: (threads) => batchSplit(g, threads, N * g.Co * g.Ci * vol(g.K), geomCall(g.S, g.O, g),
      (b) => [gemmScratch(g.Co, b * vol(g.O), g.Ci * vol(g.K)), g.Co * Math.min(b * vol(g.O), GEMM.NC), rb, Math.max(0, padded(b))],
      (b0, b, io, [scratch, cbuf, rbuf, pbuf]) => ['conv_fwd', b, g.Ci, g.Co, io[0] + 4 * b0 * g.Ci * vol(g.S), io[1],
        hasBias ? 1 : 0, hasBias ? io[2] : 0, io[hasBias ? 3 : 2] + 4 * b0 * g.Co * vol(g.O), scratch, cbuf, rb ? rbuf : 0, rb,
        ...paddedArgs(padded(b), pbuf)]),
  };
};

// conv_transpose's col2im form goes through a column buffer of Co·kvol × chunk floats: big
// enough for efficient GEMMs, small enough (≈4 MiB) to stay cache-friendly for the col2im.
const COL_FLOATS = 1 << 20;

export const convTransposeWasm = (inShapes: Shape[], attrs: Attrs): WasmPlan => {
  const g = convTransposeGeom(inShapes, attrs as ConvTransposeAttrs);
  const hasBias = inShapes.length === 3;
  const biasArgs = (bufs: number[]) => (hasBias ? bufs.slice(2) : [0, ...bufs.slice(2)]);
  if (convTransposeForm === 'auto' && g.stride.every((s) => s === 1) && smallCo(g) && vol(g.K) <= MAX_PHASE_TAPS) {
    // One phase: a stride-1 conv of few output channels (the input gradient of enc.down0.conv2).
    const wp = g.Co * g.Ci * vol(g.K);
    const call = (B: number, x: number, w: number, bias: number, y: number, wpBuf: number): WasmCall =>
      ['conv_transpose_small_co', B, g.Ci, g.Co, x, w, hasBias ? 1 : 0, bias, y, wpBuf];
    return {
      scratch: [wp],
      run: (k, bufs) => {
        const [bias, y, wpBuf] = biasArgs(bufs);
        setGeom(k, g.O, g.S, g);
        const [fn, ...args] = call(g.B, bufs[0], bufs[1], bias, y, wpBuf);
        k[fn](...args);
      },
      split: (threads) => batchSplit(g, threads, g.B * vol(g.O) * g.Co * g.Ci * vol(g.K), geomCall(g.O, g.S, g), () => [wp],
        (b0, b, io, [wpBuf]) => {
          const [bias, y] = biasArgs(io);
          return call(b, io[0] + 4 * b0 * g.Ci * vol(g.S), io[1], bias, y + 4 * b0 * g.Co * vol(g.O), wpBuf);
        }),
    };
  }
  if (useCol2im(g)) {
    const M = g.Co * vol(g.K);
    const G = vol(g.S);
    const chunk = Math.min(G, Math.max(8, Math.floor(COL_FLOATS / M / 8) * 8));
    return {
      scratch: [gemmScratch(M, chunk, g.Ci), M * chunk],
      run: (k, bufs) => {
        const [bias, y, scratch, col] = biasArgs(bufs);
        setGeom(k, g.O, g.S, g); // the image is the output y, the grid the input x
        k.conv_transpose_col2im(g.B, g.Ci, g.Co, bufs[0], bufs[1], hasBias ? 1 : 0, bias, y, chunk, scratch, col);
      },
      split: (threads) => batchSplit(g, threads, M * G * g.B * g.Ci, geomCall(g.O, g.S, g),
        () => [gemmScratch(M, chunk, g.Ci), M * chunk],
        (b0, b, io, [scratch, col]) => ['conv_transpose_col2im', b, g.Ci, g.Co, io[0] + 4 * b0 * g.Ci * vol(g.S), io[1],
          hasBias ? 1 : 0, hasBias ? io[2] : 0, io[hasBias ? 3 : 2] + 4 * b0 * g.Co * vol(g.O), chunk, scratch, col]),
    };
  }
  // One stride-1 conv per output phase; the scratch fits the largest.
  const taps = phaseTaps(g);
  const N = g.B * g.O.reduce((a, o, i) => a * Math.ceil(o / g.stride[i]), 1);
  const rb = phaseDirectFloats(g);
  const withTaps = transposePhases(g).filter((c) => vol(c.K) > 0);
  const padded = (b: number) => (rb ? -1 : paddedFloats(b, g.Ci, g.S, withTaps));
  const pf = padded(g.B);
  return {
    scratch: [gemmScratch(g.Co, N, g.Ci * taps, false), g.Co * Math.min(N, GEMM.NC), phasePanels(g), rb, Math.max(0, pf)],
    run: (k, bufs) => {
      const [bias, y, scratch, cbuf, wp, rbuf, pbuf] = biasArgs(bufs);
      setGeom(k, g.O, g.S, g);
      k.conv_transpose(g.B, g.Ci, g.Co, bufs[0], bufs[1], hasBias ? 1 : 0, bias, y, scratch, cbuf, wp, rb ? rbuf : 0, rb, ...paddedArgs(pf, pbuf));
    },
    split: (threads) => {
      const perImage = N / g.B;
      return batchSplit(g, threads, g.B * vol(g.O) * g.Co * g.Ci * taps, geomCall(g.O, g.S, g),
        (b) => [gemmScratch(g.Co, b * perImage, g.Ci * taps, false), g.Co * Math.min(b * perImage, GEMM.NC), phasePanels(g), rb, Math.max(0, padded(b))],
        (b0, b, io, [scratch, cbuf, wp, rbuf, pbuf]) => ['conv_transpose', b, g.Ci, g.Co, io[0] + 4 * b0 * g.Ci * vol(g.S), io[1],
          hasBias ? 1 : 0, hasBias ? io[2] : 0, io[hasBias ? 3 : 2] + 4 * b0 * g.Co * vol(g.O), scratch, cbuf, wp, rb ? rbuf : 0, rb,
          ...paddedArgs(padded(b), pbuf)]);
    },
  };
};

let convTransposeForm: 'auto' | 'phase' | 'col2im' = 'auto';
/** Forces one conv_transpose form (tests and benchmarks); 'auto' picks by useCol2im. */
export const setConvTransposeForm = (f: 'auto' | 'phase' | 'col2im'): void => void (convTransposeForm = f);

/**
 * Which conv_transpose form: the phases pack ≈ Ci·kvol im2col values per input position, col2im
 * moves ≈ 3·Co·kvol column values (zero, GEMM, scatter) and runs one GEMM per image. Measured
 * (CPU ms, batch 8, the paper's 2D shapes): col2im wins clearly only when Co is small next to Ci
 * (Co = 2, Ci = 32: 2.9 vs 11.4); at Co = Ci/2 the two are within ±10% except at 5×3 images, where
 * the phases win (12.4 vs 15.6); with stride 2 and Co = Ci the phases win (13.6 vs 19.0).
 */
export function useCol2im(g: ConvGeom): boolean {
  // The phase form keeps tables of at most MAX_PHASE_TAPS taps and MAX_PHASES phases (kernel.as.ts).
  if (vol(g.K) > MAX_PHASE_TAPS || g.stride.reduce((a, s, i) => a * Math.min(s, g.O[i]), 1) > MAX_PHASES) return true;
  if (convTransposeForm !== 'auto') return convTransposeForm === 'col2im';
  return 4 * g.Co <= g.Ci;
}

const MAX_PHASE_TAPS = 4096;
const MAX_PHASES = 64;
/** Floats of conv_transpose's phase weights, packed in whole row panels (phase_panels in kernel.as.ts). */
const phasePanels = (g: ConvGeom): number => Math.ceil(g.Co / GEMM.MR) * GEMM.MR * g.Ci * vol(g.K);

/** Taps of conv_transpose's largest output phase. */
const phaseTaps = (g: ConvGeom): number => g.K.reduce((a, k, i) => a * Math.ceil(k / g.stride[i]), 1);

/**
 * conv_grad_weight sums over the batch. Its terms are grouped in fixed chunks of images that
 * depend on the geometry alone, never on the thread count: each chunk's GEMM gives a partial,
 * and dw = ((c0 + c1) + c2) + … in chunk order on every path. So 1, 2 or 3 threads (any count)
 * give the same bits, and a run resumed on another machine continues exactly (issue 11; splitting
 * the batch by thread count made 1- and 2-thread training differ after one step). A chunk spans
 * at least GW_MIN_COLS GEMM columns (images · grid) so its GEMM is not all packing, and there are
 * at most GW_CHUNKS chunks, which bounds the extra passes of adds (and this op's parallelism).
 */
const GW_CHUNKS = 8;
const GW_MIN_COLS = 64;

/** [first image, images] of conv_grad_weight's fixed chunks. */
export function gradWeightChunks(B: number, grid: number): [number, number][] {
  const per = Math.max(Math.ceil(GW_MIN_COLS / grid), Math.ceil(B / GW_CHUNKS));
  const out: [number, number][] = [];
  for (let b0 = 0; b0 < B; b0 += per) out.push([b0, Math.min(per, B - b0)]);
  return out;
}

/**
 * conv_grad_weight's direct path (grad_weight_direct in kernel.as.ts) for chunks of at most
 * `images` images: its buffer's floats and the staged rows per (ci, kd) a KC block of positions
 * can need, or [0, 0] for the packed path. Worth it where the grid rows are long enough that
 * staging their image rows (about one value per input) beats packing im2col (kvol per input).
 */
export function gradWeightDirect(g: ConvGeom, images: number): [number, number] {
  const [GD, GH, GW] = g.O;
  if (!directB || GW < GRAD_WEIGHT_DIRECT_MIN_WIDTH || images * vol(g.O) === 0) return [0, 0];
  // A block spans at most `rows` grid rows, in at most as many runs (one per slice it touches),
  // each run of n rows staging (n − 1)·SH + KH image rows.
  const rows = Math.min(Math.floor((GEMM.KC - 1) / GW) + 2, images * GD * GH);
  const runs = Math.min(rows, Math.floor((rows - 2) / GH) + 2);
  const ny = Math.max((rows - 1) * g.stride[1] + g.K[1], (rows - runs) * g.stride[1] + runs * g.K[1]);
  const stagedRow = g.stride[2] * (GW + Math.floor((g.K[2] - 1) / g.stride[2]));
  const N = g.Ci * vol(g.K);
  const floats = GEMM.KC + Math.ceil(N / 4) * 4 + GEMM.KC * Math.ceil(g.Co / GEMM.NR) * GEMM.NR + GEMM.MR * GEMM.NR + N * g.Co
    + g.Ci * g.K[0] * ny * stagedRow;
  return [floats, ny];
}
const GRAD_WEIGHT_DIRECT_MIN_WIDTH = 8;

export const convGradWeightWasm = (inShapes: Shape[], attrs: Attrs): WasmPlan => {
  const g = convGradWeightGeom(inShapes, attrs as ConvGradWeightAttrs);
  const nw = g.Co * g.Ci * vol(g.K);
  const chunks = gradWeightChunks(g.B, vol(g.O));
  const small = smallCo(g);
  const [rb, ny] = small ? [0, 0] : gradWeightDirect(g, chunks[0][1]);
  const gemm = rb || small ? 0 : gemmScratch(g.Co, g.Ci * vol(g.K), chunks[0][1] * vol(g.O));
  // The packed path's padded copy, one chunk's images at a time.
  const padded = (b: number) => (gemm ? paddedFloats(b, g.Ci, g.S, [gridConv(g)]) : -1);
  const pf = padded(chunks[0][1]);
  const chunkPadded = (b: number) => (pf < 0 ? -1 : padded(b)); // a last, smaller chunk stays on the first's path
  // Chunk j's sums: into dw for the first chunk, else into `part`.
  const chunkCall = ([b0, b]: [number, number], x: number, dy: number, out: number, scratch: number, pbuf: number): WasmCall => {
    const xb = x + 4 * b0 * g.Ci * vol(g.S), dyb = dy + 4 * b0 * g.Co * vol(g.O);
    return small ? ['conv_grad_weight_small', b, g.Ci, g.Co, xb, dyb, out]
      : ['conv_grad_weight', b, g.Ci, g.Co, xb, dyb, out, rb ? 0 : scratch, rb ? scratch : 0, rb, ny, ...paddedArgs(chunkPadded(b), pbuf)];
  };
  const scratchFloats = rb || gemm;
  return {
    scratch: chunks.length > 1 ? [scratchFloats, Math.max(0, pf), nw] : [scratchFloats, Math.max(0, pf)],
    run: (k, [x, dy, dw, scratch, pbuf, part]) => {
      setGeom(k, g.S, g.O, g);
      chunks.forEach((c, j) => {
        const [fn, ...args] = chunkCall(c, x, dy, j === 0 ? dw : part, scratch, pbuf);
        k[fn](...args);
        if (j > 0) k.vec_add(dw, part, nw);
      });
    },
    // Threads take contiguous runs of chunks, each chunk but the first into its own partial; the
    // caller then adds the partials in chunk order: the same sums as `run`.
    split: (threads) => {
      const parts = Math.min(threads, chunks.length);
      if (parts < 2 || nw * g.B * vol(g.O) < MIN_SPLIT_MACS) return null;
      const runs = splitEven(chunks.length, parts);
      return {
        scratch: runs.map(([j0, n]) => [scratchFloats, Math.max(0, pf), ...Array.from({ length: n - (j0 === 0 ? 1 : 0) }, () => nw)]),
        calls: (io, scratch) => {
          const [x, dy, dw] = io;
          // Where chunk j's result goes: dw, or its partial in its piece's scratch.
          const outOf = (j: number): number => {
            const t = runs.findIndex(([j0, n]) => j >= j0 && j < j0 + n);
            const [j0] = runs[t];
            return j === 0 ? dw : scratch[t][2 + j - j0 - (j0 === 0 ? 1 : 0)];
          };
          return {
            pieces: runs.map(([j0, n], t): WasmCall[] => [geomCall(g.S, g.O, g), ...chunks.slice(j0, j0 + n).map((c, i) => chunkCall(c, x, dy, outOf(j0 + i), scratch[t][0], scratch[t][1]))]),
            after: chunks.slice(1).map((_, i): WasmCall => ['vec_add', dw, outOf(i + 1), nw]),
          };
        },
      };
    },
  };
};
