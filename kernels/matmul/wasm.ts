// Wasm plan of matmul (AssemblyScript kernel in kernel.as.ts): one call of the packed SIMD GEMM.

import type { Attrs, Shape, WasmCall, WasmPlan } from '../types.ts';
import { type MatmulAttrs, matmulGeom } from './float64.ts';

// The GEMM's block sizes; they must match the constants in kernel.as.ts.
export const GEMM = { MR: 4, NR: 8, KC: 256, MC: 120, NC: 1024 } as const;

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/**
 * Scratch floats `gemm_acc` needs for an M×N×K product: packed A, packed B, one edge tile, and
 * the offset table and panel bases of its in-place path for few rows (gemm_acc_direct_b).
 * `packsA` false: A comes packed already (conv_transpose's phase panels), no region for it.
 */
export function gemmScratch(M: number, N: number, K: number, packsA = true): number {
  const kc = Math.max(1, Math.min(K, GEMM.KC));
  const packA = packsA ? roundUp(Math.max(1, Math.min(M, GEMM.MC)), GEMM.MR) * kc : 0;
  const packB = kc * roundUp(Math.max(1, Math.min(N, GEMM.NC)), GEMM.NR);
  return packA + packB + GEMM.MR * GEMM.NR + GEMM.KC + GEMM.NC / GEMM.NR;
}

export const matmulWasm = (inShapes: Shape[], attrs: Attrs): WasmPlan => {
  const { M, N, K, transA, transB } = matmulGeom(inShapes, attrs as MatmulAttrs);
  const hasBias = inShapes.length === 3;
  const tA = transA ? 1 : 0;
  const tB = transB ? 1 : 0;
  return {
    scratch: [gemmScratch(M, N, K)],
    run: (k, bufs) => {
      const [a, b] = bufs;
      const bias = hasBias ? bufs[2] : 0;
      const y = bufs[hasBias ? 3 : 2];
      const scratch = bufs[hasBias ? 4 : 3];
      k.matmul(M, N, K, tA, tB, a, b, hasBias ? 1 : 0, bias, y, scratch);
    },
    // Threads take column blocks (multiples of NR) of y: bitwise the same sums as one thread.
    split: (threads) => {
      const parts = Math.min(threads, Math.floor(N / (2 * GEMM.NR)));
      if (parts < 2 || M * N * K < MIN_SPLIT_MACS) return null;
      const cols = splitEven(N, parts, GEMM.NR);
      return {
        scratch: cols.map(([, n]) => [gemmScratch(M, n, K)]),
        calls: (io, scratch) => ({
          pieces: cols.map(([j0, nj], t): WasmCall[] => [
            ['matmul_cols', M, N, K, tA, tB, io[0], io[1], hasBias ? 1 : 0, hasBias ? io[2] : 0, io[hasBias ? 3 : 2], scratch[t][0], j0, nj],
          ]),
        }),
      };
    },
  };
};

/** Below this many multiply-adds an op runs on one thread: waking the others costs more. */
export const MIN_SPLIT_MACS = 1 << 18;

/** [start, count] of `parts` near-equal ranges covering [0, n), starts multiples of `quantum`. */
export function splitEven(n: number, parts: number, quantum = 1): [number, number][] {
  const bounds = Array.from({ length: parts + 1 }, (_, i) =>
    i === parts ? n : Math.round((n * i) / parts / quantum) * quantum);
  const out: [number, number][] = [];
  for (let i = 0; i < parts; i++) if (bounds[i + 1] > bounds[i]) out.push([bounds[i], bounds[i + 1] - bounds[i]]);
  return out;
}
