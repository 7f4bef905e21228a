// One tiled GEMM in WGSL, C[M,N] = Σ_k A(m,k)·B(k,n), shared by matmul and the three conv ops
// (implicit GEMM: their loaders compute im2col addresses on the fly, nothing is materialised).
//
// A workgroup owns a BM×BN output tile and walks K in BK-deep slices: the threads first stage
// A[BM×BK] and B[BK×BN] in workgroup memory (each thread loads (BM·BK)/256 elements), then each
// computes a TM×TN register block from it. A thread's rows/columns are strided by the
// workgroup's extent (row = ty + i·WY) so that neighbouring threads read neighbouring words of
// the tiles (no bank conflicts) and write neighbouring outputs. Sizes are baked in as constants:
// one pipeline per shape, no uniforms, and the compiler can unroll the fixed loops.

import type { WgslPass } from '../types.ts';
import { OpError } from '../types.ts';

export interface GemmTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

export interface GemmSpec {
  /** Op name for error messages. */
  op: string;
  M: number;
  N: number;
  K: number;
  /** Module-scope WGSL: bindings and constants the snippets use. */
  decls: string;
  /** Body of `fn loadA(m: u32, k: u32) -> f32`; only called with m < M, k < K. */
  loadA: string;
  /** Body of `fn loadB(k: u32, n: u32) -> f32`; only called with k < K, n < N. */
  loadB: string;
  /** Body of `fn store(m: u32, n: u32, v: f32)`; only called with m < M, n < N. Epilogues (bias) go here. */
  store: string;
  /** Buffer indices of the bindings declared in `decls`, in binding order. */
  bindings: number[];
  /**
   * Which output index the threads of a row (local x) walk: 'n' for row-major [M,N] outputs,
   * 'm' when consecutive m are adjacent in memory (conv outputs are [B,Co,...O] with m ∋ O),
   * so the final stores are coalesced.
   */
  fastAxis?: 'm' | 'n';
  tile?: GemmTile;
}

const MAX_GROUPS = 65535;

/** 64×64 tiles with 4×4 register blocks for large problems, smaller tiles where M or N is small. */
export function chooseTile(M: number, N: number): GemmTile {
  const side = (n: number) => (n >= 48 ? 64 : n >= 24 ? 32 : 16);
  const BM = side(M);
  const BN = side(N);
  return { BM, BN, BK: 16, TM: BM / 16, TN: BN / 16 };
}

export function gemmPass(spec: GemmSpec): WgslPass {
  const { M, N, K } = spec;
  const t = spec.tile ?? chooseTile(M, N);
  if (t.BM % t.TM || t.BN % t.TN) throw new Error(`gemm: tile ${JSON.stringify(t)} does not divide into register blocks`);
  const WX = t.BN / t.TN;
  const WY = t.BM / t.TM;
  const tilesM = Math.ceil(M / t.BM);
  const tilesN = Math.ceil(N / t.BN);
  if (tilesN > MAX_GROUPS) throw new OpError(spec.op, `N = ${N} needs ${tilesN} workgroups along x, more than ${MAX_GROUPS}`, [], 'split the output channels');
  // Fold the M tiles over y and z when there are more than one dimension allows.
  const gy = Math.min(tilesM, MAX_GROUPS);
  const gz = Math.ceil(tilesM / MAX_GROUPS);
  if (gz > MAX_GROUPS) throw new OpError(spec.op, `M = ${M} is too large for one launch`, [], 'split the batch');
  const fastM = spec.fastAxis === 'm';
  // Local x walks the fast axis; the register block is TM×TN either way.
  const [lx, ly] = fastM ? [WY, WX] : [WX, WY];
  const rowOf = fastM ? 'lid.x' : 'lid.y';
  const colOf = fastM ? 'lid.y' : 'lid.x';
  const code = `${spec.decls}
const M: u32 = ${M}u;
const N: u32 = ${N}u;
const K: u32 = ${K}u;
const BM: u32 = ${t.BM}u;
const BN: u32 = ${t.BN}u;
const BK: u32 = ${t.BK}u;
const TM: u32 = ${t.TM}u;
const TN: u32 = ${t.TN}u;
const WY: u32 = ${WY}u;
const WX: u32 = ${WX}u;
const NT: u32 = ${WX * WY}u;

var<workgroup> As: array<f32, ${t.BK * t.BM}>;
var<workgroup> Bs: array<f32, ${t.BK * t.BN}>;

fn loadA(m: u32, k: u32) -> f32 {
${spec.loadA}
}
fn loadB(k: u32, n: u32) -> f32 {
${spec.loadB}
}
fn store(m: u32, n: u32, v: f32) {
${spec.store}
}

@compute @workgroup_size(${lx}, ${ly})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let m0 = (wid.y + wid.z * nwg.y) * BM;
  let n0 = wid.x * BN;
  let ty = ${rowOf};
  let tx = ${colOf};
  var acc: array<array<f32, ${t.TN}>, ${t.TM}>;
  var a: array<f32, ${t.TM}>;
  var b: array<f32, ${t.TN}>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // Stage the slices; m (resp. n) is the fast index so consecutive threads load consecutive
    // rows of the implicit matrices, which are adjacent in memory for conv activations.
    for (var l = tid; l < BK * BM; l += NT) {
      let m = m0 + l % BM;
      let k = k0 + l / BM;
      var v = 0.0;
      if (m < M && k < K) { v = loadA(m, k); }
      As[l] = v;
    }
    for (var l = tid; l < BK * BN; l += NT) {
      let n = n0 + l % BN;
      let k = k0 + l / BN;
      var v = 0.0;
      if (n < N && k < K) { v = loadB(k, n); }
      Bs[l] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < TM; i++) { a[i] = As[kk * BM + ty + i * WY]; }
      for (var j = 0u; j < TN; j++) { b[j] = Bs[kk * BN + tx + j * WX]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + ty + i * WY;
    for (var j = 0u; j < TN; j++) {
      let n = n0 + tx + j * WX;
      if (m < M && n < N) { store(m, n, acc[i][j]); }
    }
  }
}`;
  return { code, bindings: spec.bindings, workgroups: [tilesN, gy, gz] };
}
