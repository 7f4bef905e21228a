// The relaxed-SIMD (FMA) build of the Wasm kernels (runtime/wasm.ts `fma`), in Node (whose V8
// flag the backend turns on) and in Chromium (on by default): it really fuses, it meets the
// float64 oracle, and it is deterministic across thread counts. Detection is checked against the
// engine's own verdict on the built module.

import { describe, expect, test } from 'vitest';
import { deviceNames, randn, relErr } from './harness.ts';
import { oracle } from '../kernels/oracle.ts';
import { Eager } from '../runtime/tensor.ts';
import { hasRelaxedSimd, WasmBackend } from '../runtime/wasm.ts';

async function fmaModuleValidates(): Promise<boolean> {
  const url = new URL('../build/kernels-fma.wasm', import.meta.url);
  const bytes =
    url.protocol === 'file:' ? new Uint8Array(await (await import('node:fs/promises')).readFile(url)) : new Uint8Array(await (await fetch(url)).arrayBuffer());
  return WebAssembly.validate(bytes);
}

/** matmul [1, 1+2⁻¹²]·[−1, 1+2⁻¹²]ᵀ: −1 + (1 + 2⁻¹¹ + 2⁻²⁴). The product rounds to 1 + 2⁻¹¹ in
 * float32 unless it is fused with the add: exact build 2⁻¹¹, FMA 2⁻¹¹ + 2⁻²⁴. */
async function fusedProbe(e: Eager): Promise<number> {
  const u = 1 + 2 ** -12;
  const [out] = e.call('matmul', [e.upload([1, 2], [1, u]), e.upload([2, 1], [-1, u])], {});
  return (await e.read(out))[0];
}

describe.skipIf(!deviceNames().includes('wasm'))('wasm fma', () => {
  test('detection agrees with the engine on the built FMA module', async () => {
    expect(hasRelaxedSimd()).toBe(await fmaModuleValidates());
  });

  test('the exact build rounds the product; the FMA build fuses it (x86-64 with FMA3, as every CI machine has)', async () => {
    const exact = await WasmBackend.create({ threads: 1, fma: false });
    expect(exact.description).not.toMatch(/FMA/);
    expect(await fusedProbe(new Eager(exact))).toBe(2 ** -11);
    exact.destroy();
    const fma = await WasmBackend.create({ threads: 1, fma: true }); // Node 20: turns on V8's flag
    expect(fma.description).toMatch(/relaxed FMA/);
    expect(await fusedProbe(new Eager(fma))).toBe(2 ** -11 + 2 ** -24);
    fma.destroy();
  });

  test('the FMA build: matmul and conv = float64 oracle; 1 and 2 threads give the same bits', async () => {
    const backends = [await WasmBackend.create({ threads: 1, fma: true }), await WasmBackend.create({ threads: 2, fma: true })];
    const cases = [
      { op: 'matmul', inputs: [randn([70, 300], 1), randn([300, 65], 2)], attrs: {} },
      { op: 'conv', inputs: [randn([2, 8, 20, 12], 3), randn([16, 8, 3, 3], 4)], attrs: { stride: [2, 2], pad: [1, 1] } },
    ];
    for (const { op, inputs, attrs } of cases) {
      const [want] = oracle.call(op, inputs, attrs);
      const got: Float32Array[] = [];
      for (const be of backends) {
        const e = new Eager(be);
        const [out] = e.call(op, inputs.map((t) => e.upload(t.shape, t.data)), attrs);
        got.push(await e.read(out));
      }
      expect(relErr(got[0], want.data), op).toBeLessThan(1e-5);
      expect(got[1], `${op}: 2 threads`).toEqual(got[0]);
    }
    for (const be of backends) be.destroy();
  });

  test("'auto' (the default) picks the FMA build where the engine has relaxed SIMD (Chromium; Node with the flag turned on at load); STATCELL_WASM_FMA=0 the exact build", async () => {
    const saved = typeof process !== 'undefined' ? process.env?.STATCELL_WASM_FMA : undefined;
    if (saved !== undefined) delete process.env.STATCELL_WASM_FMA;
    const auto = await WasmBackend.create({ threads: 1 });
    if (saved !== undefined) process.env.STATCELL_WASM_FMA = saved;
    expect(auto.description).toMatch(/relaxed FMA/);
    expect(await fusedProbe(new Eager(auto))).toBe(2 ** -11 + 2 ** -24);
    auto.destroy();
    if (typeof process === 'undefined' || !process.versions?.node) return;
    process.env.STATCELL_WASM_FMA = '0';
    try {
      const exact = await WasmBackend.create({ threads: 1 });
      expect(await fusedProbe(new Eager(exact))).toBe(2 ** -11);
      exact.destroy();
    } finally {
      if (saved === undefined) delete process.env.STATCELL_WASM_FMA;
      else process.env.STATCELL_WASM_FMA = saved;
    }
  });
});
