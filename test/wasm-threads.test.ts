// The multithreaded Wasm backend (runtime/wasm-threads.ts): matmul and the conv family split over
// worker threads give the single-thread results bitwise (matmul, conv, conv_transpose, and conv_grad_weight,
// whose batch sum is chunked by shape, not by thread count), at shapes big enough to split and with odd sizes.
// In a browser (no Atomics.wait on the main thread) the backend must fall back to 1 thread.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deviceNames, randn, relErr } from './harness.ts';
import type { OracleTensor } from '../kernels/oracle.ts';
import { Eager } from '../runtime/tensor.ts';
import { WasmBackend } from '../runtime/wasm.ts';
import type { Attrs } from '../kernels/types.ts';
import { convGradWeightWasm, convTransposeWasm, convWasm, setConvTransposeForm } from '../kernels/conv/wasm.ts';
import { matmulWasm, splitEven } from '../kernels/matmul/wasm.ts';

// Wasm only, on its own backends (1, 2 and 3 threads): the harness's wasm device is not used.
describe.skipIf(!deviceNames().includes('wasm'))('wasm', () => {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  const backends: WasmBackend[] = [];
  let one: Eager;
  let many: Eager[] = [];

  beforeAll(async () => {
    const b1 = await WasmBackend.create({ threads: 1 });
    backends.push(b1);
    one = new Eager(b1);
    for (const threads of [2, 3]) {
      const b = await WasmBackend.create({ threads });
      backends.push(b);
      many.push(new Eager(b));
    }
  });
  afterAll(() => {
    for (const b of backends) b.destroy();
    many = [];
  });

  async function run(e: Eager, op: string, inputs: OracleTensor[], attrs: Attrs): Promise<Float32Array> {
    const [out] = e.call(op, inputs.map((t) => e.upload(t.shape, t.data)), attrs);
    return e.read(out);
  }

  async function same(op: string, inputs: OracleTensor[], attrs: Attrs, exact: boolean): Promise<void> {
    const want = await run(one, op, inputs, attrs);
    expect(want.every(Number.isFinite)).toBe(true);
    for (const e of many) {
      const got = await run(e, op, inputs, attrs);
      if (exact) expect(got).toEqual(want);
      else expect(relErr(got, want)).toBeLessThan(1e-6);
    }
  }

  const name = (inputs: OracleTensor[], attrs: Attrs) => `${inputs.map((t) => `[${t.shape.join(',')}]`).join(' ')} ${JSON.stringify(attrs)}`;

  describe('threads where they can work, else one', () => {
    test('thread counts', () => {
      expect(backends[0].threads).toBe(1);
      expect(backends[0].description).toMatch(/1 thread/);
      if (isNode && typeof SharedArrayBuffer !== 'undefined') {
        expect(backends.slice(1).map((b) => b.threads)).toEqual([2, 3]);
        expect(backends[2].description).toMatch(/3 threads/);
      } else {
        // The browser page: no Atomics.wait on the main thread, so the single-thread path.
        expect(backends.slice(1).map((b) => b.threads)).toEqual([1, 1]);
      }
    });
    test('a bad thread count is an error naming the option', async () => {
      if (!isNode) return;
      await expect(WasmBackend.create({ threads: 0 })).rejects.toThrow(/threads must be a positive integer.*STATCELL_WASM_THREADS/);
    });
    test('STATCELL_WASM_THREADS=1 is the single-thread path', async () => {
      if (!isNode) return;
      const saved = process.env.STATCELL_WASM_THREADS;
      process.env.STATCELL_WASM_THREADS = '1';
      try {
        const b = await WasmBackend.create();
        expect(b.threads).toBe(1);
        expect(b.description).toMatch(/^WebAssembly SIMD( \+ relaxed FMA)?, 1 thread$/);
        expect(b.memory.buffer).toBeInstanceOf(ArrayBuffer); // the old module on unshared memory
        b.destroy();
      } finally {
        if (saved === undefined) delete process.env.STATCELL_WASM_THREADS;
        else process.env.STATCELL_WASM_THREADS = saved;
      }
    });
    test("a worker's trap is thrown on the caller, with its message, and the pool goes on", async () => {
      const b = backends[1];
      if (b.threads < 2) return;
      const pool = (b as unknown as { pool: { run(k: unknown, pieces: unknown[][]): void } }).pool;
      // vec_add far outside the memory: a trap on worker 1 while the caller's piece is empty.
      expect(() => pool.run(b.exports, [[], [['vec_add', 2 ** 32 - 64, 0, 4]]])).toThrow(/worker thread failed.*out of bounds/);
      await same('matmul', [randn([64, 50], 1), randn([50, 100], 2)], {}, true);
    });
    test('splitEven covers the range in quantum steps', () => {
      expect(splitEven(10, 3)).toEqual([[0, 3], [3, 4], [7, 3]]);
      expect(splitEven(100, 2, 8)).toEqual([[0, 48], [48, 52]]);
      expect(splitEven(2, 3)).toEqual([[0, 1], [1, 1]]);
    });
  });

  describe('matmul split over columns', () => {
    const cases: [number, number, number, boolean, boolean, boolean][] = [
      [64, 100, 50, false, false, true],
      [33, 257, 41, true, false, false],
      [130, 67, 301, false, true, true], // 2 M blocks, 2 K blocks
      [5, 1100, 60, true, true, false], // N > NC
      [8, 1300, 300, false, false, true], // M ≤ 16, row-major B: B read in place; N > NC, K > KC, a narrow last panel per piece
    ];
    for (const [M, N, K, transA, transB, bias] of cases) {
      const inputs = [randn(transA ? [K, M] : [M, K], M), randn(transB ? [N, K] : [K, N], N), ...(bias ? [randn([N], 3)] : [])];
      const attrs = { transA, transB };
      test(name(inputs, attrs), async () => {
        expect(matmulWasm(inputs.map((t) => t.shape), attrs).split?.(2)).toBeTruthy(); // really splits
        await same('matmul', inputs, attrs, true);
      });
    }
  });

  describe('conv family split over the batch', () => {
    const conv: [number[], number[], Attrs, boolean][] = [
      [[3, 5, 17, 13], [16, 5, 3, 3], { pad: 1 }, true],
      [[4, 8, 16, 10], [16, 8, 4, 4], { stride: 2, pad: 1 }, false],
      [[5, 2, 9, 7, 6], [3, 2, 3, 3, 3], { pad: 1 }, true], // 3D, odd batch
      [[3, 4, 32, 16], [6, 4, 3, 3], { pad: 1 }, true], // B read in place (rows of whole panels)
      [[3, 16, 24, 40], [2, 16, 3, 3], { pad: 1 }, true], // Co = 2: conv_small_co
    ];
    for (const [xs, ws, attrs, bias] of conv) {
      const inputs = [randn(xs, 1), randn(ws, 2, 0.3), ...(bias ? [randn([ws[0]], 3)] : [])];
      test(`conv ${name(inputs, attrs)}`, async () => {
        expect(convWasm(inputs.map((t) => t.shape), attrs).split?.(2)).toBeTruthy();
        await same('conv', inputs, attrs, true);
      });
    }
    const convT: [number[], number[], Attrs, boolean][] = [
      [[3, 16, 8, 7], [16, 8, 4, 4], { stride: 2, pad: 1 }, true],
      [[5, 32, 6, 5], [32, 4, 4, 4], { stride: 2, pad: 1, outputPadding: 1 }, false],
      [[3, 8, 40, 8], [8, 4, 4, 4], { stride: 2, pad: 1 }, true], // phases with B read in place
      [[3, 16, 24, 40], [16, 2, 3, 3], { pad: 1 }, true], // stride 1, Co = 2: conv_transpose_small_co
    ];
    for (const form of ['phase', 'col2im'] as const) {
      for (const [xs, ws, attrs, bias] of convT) {
        const inputs = [randn(xs, 4), randn(ws, 5, 0.3), ...(bias ? [randn([ws[1]], 6)] : [])];
        test(`conv_transpose ${form} ${name(inputs, attrs)}`, async () => {
          setConvTransposeForm(form);
          try {
            expect(convTransposeWasm(inputs.map((t) => t.shape), attrs).split?.(2)).toBeTruthy();
            await same('conv_transpose', inputs, attrs, true);
          } finally {
            setConvTransposeForm('auto');
          }
        });
      }
    }
    const gw: [number[], number[], Attrs][] = [
      [[3, 5, 17, 13], [3, 16, 17, 13], { kernel: 3, pad: 1 }],
      [[5, 8, 16, 10], [5, 16, 8, 5], { kernel: 4, stride: 2, pad: 1 }],
      [[3, 4, 32, 16], [3, 6, 32, 16], { kernel: 3, pad: 1 }], // im2col read in place
      [[5, 16, 24, 40], [5, 2, 24, 40], { kernel: 3, pad: 1 }], // Co = 2: conv_grad_weight_small
    ];
    for (const [xs, dys, attrs] of gw) {
      const inputs = [randn(xs, 7), randn(dys, 8)];
      test(`conv_grad_weight ${name(inputs, attrs)}`, async () => {
        expect(convGradWeightWasm(inputs.map((t) => t.shape), attrs).split?.(2)).toBeTruthy();
        await same('conv_grad_weight', inputs, attrs, true);
      });
    }
  });
});
