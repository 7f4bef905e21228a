import { expect, test } from 'vitest';
import { forEachDevice, opSuite, relErr } from './harness.ts';
import { oracle } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import { philox4x32, philoxStream } from '../kernels/random/index.ts';

const hex = (a: Uint32Array): string[] => [...a].map((x) => x.toString(16).padStart(8, '0'));

test('Philox4x32-10 reproduces the published known-answer vectors (Random123 kat_vectors)', () => {
  expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
  const ones = 0xffffffff;
  expect(hex(philox4x32([ones, ones, ones, ones], [ones, ones]))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
  expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
});

const bitsOf = (f: Float32Array): Uint32Array => new Uint32Array(f.buffer, f.byteOffset, f.length);

forEachDevice((d) => {
  test('the device bit stream is the oracle stream, bit for bit (seed 0 gives the known answer)', async () => {
    const cases = [
      { shape: [8], seed: 0, offset: 0 },
      // A 64-bit seed, an odd length and an offset whose low word carries into the high word.
      { shape: [3, 333], seed: 2 ** 40 + 12345, offset: 2 ** 32 - 7 },
      { shape: [5], seed: 7, offset: 2 ** 45 + 3 },
    ];
    for (const a of cases) {
      const [y] = d.eager.call('random_bits', [], a);
      const got = bitsOf(await d.eager.read(y));
      const want = philoxStream(got.length, a.seed, a.offset);
      expect(hex(got), `${d.name} ${JSON.stringify(a)}`).toEqual(hex(want));
      if (a.seed === 0) expect(hex(got.slice(0, 4))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    }
  });

  test('uniforms agree exactly with the oracle', async () => {
    const a = { shape: [1001], seed: 42, offset: 5 };
    const want = oracle.call('rand', [], a)[0].data;
    const got = await d.eager.read(d.eager.call('rand', [], a)[0]);
    expect([...got], d.name).toEqual([...want]);
    expect(Math.min(...got)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...got)).toBeLessThan(1);
  });

  test('a large randn draw has mean 0 and variance 1', async () => {
    const n = 1 << 18;
    const y = await d.eager.read(d.eager.call('randn', [], { shape: [n], seed: 2024, offset: 0 })[0]);
    let s = 0;
    let s2 = 0;
    for (const v of y) {
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    // Standard errors: 1/√n ≈ 0.002 for the mean, √(2/n) ≈ 0.0028 for the variance.
    expect(Math.abs(mean), d.name).toBeLessThan(0.01);
    expect(Math.abs(variance - 1), d.name).toBeLessThan(0.015);
    expect(y.every(Number.isFinite)).toBe(true);
  });
});

// Normals: each device within 1e-6 (relative, ‖a − b‖/‖b‖) of the float64 Box–Muller.
opSuite('randn', [
  { inputs: [], attrs: { shape: [7], seed: 1, offset: 0 }, tol: 1e-6 },
  { inputs: [], attrs: { shape: [3, 5, 11], seed: 123456789, offset: 99 }, tol: 1e-6 },
  { inputs: [], attrs: { shape: [1001], seed: 2 ** 33 + 1, offset: 2 ** 32 - 1 }, tol: 1e-6 },
]);

test('different offsets give independent draws; the shader depends on the shape only', () => {
  const a = oracle.call('randn', [], { shape: [64], seed: 3, offset: 0 })[0].data;
  const b = oracle.call('randn', [], { shape: [64], seed: 3, offset: 16 })[0].data;
  const c = oracle.call('randn', [], { shape: [128], seed: 3, offset: 0 })[0].data;
  expect(relErr(a, b)).toBeGreaterThan(0.5);
  // A draw at offset 16 (blocks) continues the stream of 64 values at offset 0.
  expect([...b]).toEqual([...c.slice(64)]);
  const op = getOp('randn');
  const p1 = op.wgsl([], { shape: [64], seed: 3, offset: 0 }).passes[0];
  const p2 = op.wgsl([], { shape: [64], seed: 9, offset: 1000 }).passes[0];
  expect(p1.code).toBe(p2.code);
});

test('bad attributes are OpErrors', () => {
  expect(() => oracle.call('randn', [], { shape: [4], seed: -1 })).toThrow(/randn: attribute seed must be an integer in \[0, 2\^53\)/);
  expect(() => oracle.call('randn', [], { shape: [4], seed: 1, offset: 0.5 })).toThrow(/randn: attribute offset/);
  expect(() => oracle.call('rand', [], { shape: [2, -1], seed: 1 })).toThrow(/rand: attribute shape/);
});
