// One tiled GEMM in WGSL, C[M,N] = Σ_k A(m,k)·B(k,n), shared by matmul and the three conv ops
// (implicit GEMM: their loaders compute im2col addresses on the fly, nothing is materialised).
//
// A workgroup owns a BM×BN output tile and walks K in BK-deep slices: the threads first stage
// A[BM×BK] and B[BK×BN] in workgroup memory (each thread loads (BM·BK)/256 elements), then each
// computes a TM×TN register block from it. A thread's rows/columns are strided by the
// workgroup's extent (row = ty + i·WY) so that neighbouring threads read neighbouring words of
// the tiles (no bank conflicts) and write neighbouring outputs. Sizes are baked in as constants:
// one pipeline per shape, no uniforms, and the compiler can unroll the fixed loops.

import type { WgslPass, WgslPlan } from '../types.ts';
import { OpError } from '../types.ts';
import { LINEAR_INDEX, grid1d, linearMain } from '../wgsl.ts';

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
  /** Body of `fn loadA(m: u32, k: u32) -> f32`; only called with m < M, k < K. Unused when loadA4 is given. */
  loadA: string;
  /** Body of `fn loadB(k: u32, n: u32) -> f32`; only called with k < K, n < N. */
  loadB: string;
  /**
   * Optional vec4 loaders, used instead of loadA/loadB where the layout has 4 adjacent elements
   * along one axis: body of `fn loadA4(m: u32, k: u32) -> vec4<f32>` giving A at 4 consecutive
   * indices of `vecA` ('k': A(m,k..k+3); 'm': A(m..m+3,k)). The caller must ensure that axis's
   * size is a multiple of 4, so an aligned group of 4 is all in range or all out.
   */
  loadA4?: string;
  vecA?: 'm' | 'k';
  /** Likewise `fn loadB4(k: u32, n: u32) -> vec4<f32>` along `vecB` ('k' or 'n'). */
  loadB4?: string;
  vecB?: 'k' | 'n';
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
  /** Number of K splits; chosen from the shape when absent (1: no split). */
  splitK?: number;
}

const MAX_GROUPS = 65535;

/**
 * WGSL that stages one BK-deep slice of operand A (tile As[k·BM + m]) or B (Bs[k·BN + n]) in
 * workgroup memory, out-of-range elements as 0. The tile's own axis (m/n) is the fast index so
 * consecutive threads load neighbouring rows of the implicit matrix (adjacent in memory for conv
 * activations). With a vec4 axis each thread loads 4 adjacent elements at once.
 */
function stage(op: 'A' | 'B', tile: string, axis: 'm' | 'n', size: string, vec: 'm' | 'n' | 'k' | null): string {
  const lim = axis === 'm' ? 'M' : 'N';
  const args = (a: string, k: string) => (op === 'A' ? `${a}, ${k}` : `${k}, ${a}`);
  if (!vec)
    return `    for (var l = tid; l < BK * ${size}; l += NT) {
      let ${axis} = ${axis}0 + l % ${size};
      let k = k0 + l / ${size};
      var v = 0.0;
      if (${axis} < ${lim} && k < K) { v = load${op}(${args(axis, 'k')}); }
      ${tile}[l] = v;
    }`;
  if (vec === 'k')
    return `    for (var l = tid; l < BK / 4u * ${size}; l += NT) {
      let ${axis} = ${axis}0 + l % ${size};
      let kq = (l / ${size}) * 4u;
      var v = vec4<f32>();
      if (${axis} < ${lim} && k0 + kq < K) { v = load${op}4(${args(axis, 'k0 + kq')}); }
      for (var j = 0u; j < 4u; j++) { ${tile}[(kq + j) * ${size} + l % ${size}] = v[j]; }
    }`;
  return `    for (var l = tid; l < BK * ${size} / 4u; l += NT) {
      let q = (l % (${size} / 4u)) * 4u;
      let k = k0 + l / (${size} / 4u);
      var v = vec4<f32>();
      if (${axis}0 + q < ${lim} && k < K) { v = load${op}4(${args(`${axis}0 + q`, 'k')}); }
      for (var j = 0u; j < 4u; j++) { ${tile}[(k - k0) * ${size} + q + j] = v[j]; }
    }`;
}

/** 64×64 tiles with 4×4 register blocks for large problems, smaller tiles where M or N is small. */
export function chooseTile(M: number, N: number): GemmTile {
  const side = (n: number) => (n >= 48 ? 64 : n >= 24 ? 32 : 16);
  const BM = side(M);
  const BN = side(N);
  return { BM, BN, BK: 16, TM: BM / 16, TN: BN / 16 };
}

/** Workgroups that keep a large GPU busy (an H100 has 132 SMs); fewer output tiles split K. */
const TARGET_GROUPS = 256;
/** The least K one split works through: below it the extra reduction pass costs more than it saves. */
const MIN_CHUNK = 128;

/** How many K splits: enough to reach TARGET_GROUPS workgroups, each with at least MIN_CHUNK of K. */
export function chooseSplit(tiles: number, K: number): number {
  if (tiles >= TARGET_GROUPS / 2) return 1;
  return Math.max(1, Math.min(Math.ceil(TARGET_GROUPS / tiles), Math.floor(K / MIN_CHUNK), 64));
}

/**
 * The GEMM as a WGSL plan. When the output has few tiles but K is long (conv_grad_weight: M·N =
 * Co × Ci·KV, K = B·OV; matrix-vector products) K is split over workgroups along z: pass 1 writes
 * partial sums to a scratch buffer [splits, M, N], pass 2 adds them up and runs the epilogue.
 * The spec must bind every input and output, so the scratch buffer is the next launch buffer.
 */
export function gemmPlan(spec: GemmSpec): WgslPlan {
  const { M, N, K } = spec;
  const t = spec.tile ?? chooseTile(M, N);
  if (t.BM % t.TM || t.BN % t.TN || t.BK % 4) throw new Error(`gemm: tile ${JSON.stringify(t)} does not divide into register blocks`);
  const WX = t.BN / t.TN;
  const WY = t.BM / t.TM;
  const tilesM = Math.ceil(M / t.BM);
  const tilesN = Math.ceil(N / t.BN);
  if (tilesN > MAX_GROUPS) throw new OpError(spec.op, `N = ${N} needs ${tilesN} workgroups along x, more than ${MAX_GROUPS}`, [], 'split the output channels');
  const wantSplit = spec.splitK ?? (tilesM <= MAX_GROUPS ? chooseSplit(tilesM * tilesN, K) : 1);
  // Each split covers whole BK slices.
  const chunk = Math.ceil(K / Math.max(1, wantSplit) / t.BK) * t.BK;
  const split = Math.max(1, Math.ceil(K / chunk));
  // Without a split, fold the M tiles over y and z when there are more than one dimension allows.
  const gy = Math.min(tilesM, MAX_GROUPS);
  const gz = split > 1 ? split : Math.ceil(tilesM / MAX_GROUPS);
  if (split > 1 && tilesM > MAX_GROUPS) throw new OpError(spec.op, `M = ${M} is too large to split K`, [], 'split the batch');
  if (gz > MAX_GROUPS) throw new OpError(spec.op, `M = ${M} is too large for one launch`, [], 'split the batch');
  const fastM = spec.fastAxis === 'm';
  // Local x walks the fast axis; the register block is TM×TN either way.
  const [lx, ly] = fastM ? [WY, WX] : [WX, WY];
  const rowOf = fastM ? 'lid.x' : 'lid.y';
  const colOf = fastM ? 'lid.y' : 'lid.x';
  const partial = spec.bindings.length;
  const scratchIndex = Math.max(...spec.bindings) + 1;
  // Both passes bind every buffer; a phony use keeps each in the auto layout whether or not
  // that pass reads it.
  const names = [...spec.decls.matchAll(/var<storage[^>]*>\s*(\w+)/g)].map((m) => m[1]);
  const touch = split > 1 ? [...names, 'PARTIAL'].map((n) => `  _ = &${n};`).join('\n') : '';
  const header = `${spec.decls}
${split > 1 ? `@group(0) @binding(${partial}) var<storage, read_write> PARTIAL: array<f32>;` : ''}
const M: u32 = ${M}u;
const N: u32 = ${N}u;
const K: u32 = ${K}u;

${spec.loadA4 ? `fn loadA4(m: u32, k: u32) -> vec4<f32> {\n${spec.loadA4}\n}` : `fn loadA(m: u32, k: u32) -> f32 {\n${spec.loadA}\n}`}
${spec.loadB4 ? `fn loadB4(k: u32, n: u32) -> vec4<f32> {\n${spec.loadB4}\n}` : `fn loadB(k: u32, n: u32) -> f32 {\n${spec.loadB}\n}`}
fn store(m: u32, n: u32, v: f32) {
${spec.store}
}`;
  const tiled = `${header}
const BM: u32 = ${t.BM}u;
const BN: u32 = ${t.BN}u;
const BK: u32 = ${t.BK}u;
const TM: u32 = ${t.TM}u;
const TN: u32 = ${t.TN}u;
const WY: u32 = ${WY}u;
const WX: u32 = ${WX}u;
const NT: u32 = ${WX * WY}u;
const CHUNK: u32 = ${chunk}u;

var<workgroup> As: array<f32, ${t.BK * t.BM}>;
var<workgroup> Bs: array<f32, ${t.BK * t.BN}>;

@compute @workgroup_size(${lx}, ${ly})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${touch}
  let m0 = (wid.y${split > 1 ? '' : ' + wid.z * nwg.y'}) * BM;
  let n0 = wid.x * BN;
  let kBeg = ${split > 1 ? 'wid.z * CHUNK' : '0u'};
  let kEnd = min(K, kBeg + CHUNK);
  let ty = ${rowOf};
  let tx = ${colOf};
  var acc: array<array<f32, ${t.TN}>, ${t.TM}>;
  var a: array<f32, ${t.TM}>;
  var b: array<f32, ${t.TN}>;
  for (var k0 = kBeg; k0 < kEnd; k0 += BK) {
${stage('A', 'As', 'm', 'BM', spec.loadA4 ? spec.vecA ?? 'k' : null)}
${stage('B', 'Bs', 'n', 'BN', spec.loadB4 ? spec.vecB ?? 'k' : null)}
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
      if (m < M && n < N) { ${split > 1 ? 'PARTIAL[(wid.z * M + m) * N + n] = acc[i][j];' : 'store(m, n, acc[i][j]);'} }
    }
  }
}`;
  const pass1: WgslPass = { code: tiled, bindings: split > 1 ? [...spec.bindings, scratchIndex] : spec.bindings, workgroups: [tilesN, gy, gz], flops: 2 * M * N * K };
  if (split === 1) return { passes: [pass1] };
  const reduce: WgslPass = {
    code: `${header}
${linearMain()} {
${touch}
  let i = ${LINEAR_INDEX};
  if (i >= M * N) { return; }
  var v = 0.0;
  for (var s = 0u; s < ${split}u; s++) { v += PARTIAL[s * M * N + i]; }
  store(i / N, i % N, v);
}`,
    bindings: pass1.bindings,
    workgroups: grid1d(M * N),
  };
  return { passes: [pass1, reduce], scratch: [split * M * N] };
}
