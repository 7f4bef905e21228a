import { describe, expect, test } from 'vitest';
import { opSuite, randn, relErr } from './harness.ts';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { OpError } from '../kernels/types.ts';
import { gemmPlan } from '../kernels/matmul/gemm.ts';

// op(a) is [M,K], op(b) is [K,N]; transposed operands are stored the other way round.
const operands = (M: number, N: number, K: number, transA: boolean, transB: boolean, seed: number) => [
  randn(transA ? [K, M] : [M, K], seed),
  randn(transB ? [N, K] : [K, N], seed + 1),
];

opSuite('matmul', [
  ...[false, true].flatMap((transA) =>
    [false, true].map((transB, j) => ({ inputs: operands(33, 17, 9, transA, transB, 10 + 2 * j + (transA ? 4 : 0)), attrs: { transA, transB } })),
  ),
  // Sizes that are multiples of 4 take the vec4 load paths (along k, m or n by layout).
  ...[false, true].flatMap((transA) =>
    [false, true].map((transB, j) => ({ inputs: operands(36, 20, 12, transA, transB, 50 + 2 * j + (transA ? 4 : 0)), attrs: { transA, transB } })),
  ),
  { inputs: operands(12, 20, 9, true, false, 60), attrs: { transA: true } },
  // Long K on a small output: split-K (partial sums, then a reduction pass with the bias).
  { inputs: [...operands(5, 6, 600, false, false, 61), randn([6], 62)], tol: 3e-5 },
  { inputs: operands(1, 20, 333, true, true, 63), attrs: { transA: true, transB: true }, tol: 3e-5 },
  // Spans several 64×64 tiles and a partial K slice.
  { inputs: operands(70, 65, 21, false, false, 30) },
  { inputs: [...operands(70, 65, 21, true, true, 31), randn([65], 32)], attrs: { transA: true, transB: true } },
  // M = 1: a matrix-vector product; with bias.
  { inputs: [...operands(1, 37, 50, false, true, 40), randn([37], 41)], attrs: { transB: true } },
  { inputs: [...operands(5, 3, 1, false, false, 42), randn([3], 43)] },
]);

describe('matmul reference', () => {
  test('matches a hand-computed product with bias', () => {
    const a = oracleTensor([2, 3], [1, 2, 3, 4, 5, 6]);
    const b = oracleTensor([3, 2], [7, 8, 9, 10, 11, 12]);
    const bias = oracleTensor([2], [0.5, -1]);
    const [y] = oracle.call('matmul', [a, b, bias]);
    expect(y.shape).toEqual([2, 2]);
    expect([...y.data]).toEqual([58.5, 63, 139.5, 153]);
  });

  test('transposed flags agree with explicitly transposed operands', () => {
    const a = randn([4, 6], 1);
    const b = randn([6, 5], 2);
    const at = oracleTensor([6, 4], Array.from({ length: 24 }, (_, i) => a.data[(i % 4) * 6 + Math.floor(i / 4)]));
    const bt = oracleTensor([5, 6], Array.from({ length: 30 }, (_, i) => b.data[(i % 6) * 5 + Math.floor(i / 6)]));
    const [y] = oracle.call('matmul', [a, b]);
    const [y2] = oracle.call('matmul', [at, bt], { transA: true, transB: true });
    expect(relErr(y2.data, y.data)).toBeLessThan(1e-14);
  });
});

describe('matmul errors', () => {
  const shape = getOp('matmul').shape;
  test('inner size mismatch names op, shapes and flags', () => {
    expect(() => shape([[3, 4], [5, 2]], {})).toThrow(OpError);
    expect(() => shape([[3, 4], [5, 2]], {})).toThrow(/matmul: inner sizes differ.*\[3, 4\], \[5, 2\]/);
    expect(() => shape([[4, 3], [5, 4]], { transA: true })).toThrow(/transA true/);
  });
  test('rank and bias shape', () => {
    expect(() => shape([[2, 3, 4], [4, 2]], {})).toThrow(/matmul: a and b must be matrices/);
    expect(() => shape([[3, 4], [4, 2], [3]], {})).toThrow(/matmul: bias must be \[2\]/);
    expect(() => shape([[3, 4], [4, 2]], { transA: 1 })).toThrow(/transA must be a boolean/);
  });
});

describe('gemm launch geometry', () => {
  const spec = (M: number, N: number, K = 8) => ({ op: 'matmul', M, N, K, decls: '', loadA: '', loadB: '', store: '', bindings: [0, 1, 2] });
  test('folds M tiles over y and z beyond 65535 workgroups', () => {
    const p = gemmPlan(spec(64 * 70000, 64));
    expect(p.passes.map((q) => q.workgroups)).toEqual([[1, 65535, 2]]);
  });
  test('small problems get small tiles', () => {
    expect(gemmPlan(spec(1, 37)).passes[0].workgroups).toEqual([2, 1, 1]);
    expect(gemmPlan(spec(200, 200)).passes[0].workgroups).toEqual([4, 4, 1]);
  });
  test('few output tiles with a long K split K over z, then reduce in a second pass', () => {
    const p = gemmPlan(spec(32, 300, 128 * 1000));
    expect(p.passes).toHaveLength(2);
    expect(p.passes[0].workgroups).toEqual([5, 1, 52]);
    expect(p.passes[0].bindings).toEqual([0, 1, 2, 3]);
    expect(p.scratch).toEqual([52 * 32 * 300]);
    expect(gemmPlan(spec(32, 300, 100)).passes).toHaveLength(1);
  });
});
