// round_f16 (kernels/elementwise/pointwise.ts): the float64 rounding against known binary16
// values, and the op on every device — alone and inside a fused program — bit-equal to that
// rounding of its f32 input, over a dense sample of f32 bit patterns and the edge cases.

import { describe, expect, test } from 'vitest';
import { roundToF16 } from '../kernels/elementwise/pointwise.ts';
import { forEachDevice } from './harness.ts';

describe('roundToF16 (float64)', () => {
  const cases: [string, number, number][] = [
    ['largest finite', 65504, 65504],
    ['just below the overflow midpoint', 65519.99, 65504],
    ['the midpoint 65520 ties to even: 2^16, beyond binary16', 65520, Infinity],
    ['negative overflow', -65520, -Infinity],
    ['far beyond', 1e10, Infinity],
    ['smallest subnormal 2^-24', 2 ** -24, 2 ** -24],
    ['2^-25 ties to even: 0', 2 ** -25, 0],
    ['just above 2^-25: 2^-24', 2 ** -25 * (1 + 2 ** -20), 2 ** -24],
    ['3·2^-25 ties to even: 2·2^-24', 3 * 2 ** -25, 2 ** -23],
    ['largest subnormal', 2 ** -14 - 2 ** -24, 2 ** -14 - 2 ** -24],
    ['smallest normal', 2 ** -14, 2 ** -14],
    ['1 + 2^-11 ties to even: 1', 1 + 2 ** -11, 1],
    ['1 + 3·2^-11 ties to even: 1 + 2^-9', 1 + 3 * 2 ** -11, 1 + 2 ** -9],
    ['just above the tie: up', 1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10],
    ['1/3 → 0x3555', 1 / 3, 0.333251953125],
    ['-0.1 → -0x2e66', -0.1, -0.0999755859375],
    ['2048 + 1 ties to even: 2048', 2049, 2048],
    ['2048 + 3 ties to even: 2052', 2051, 2052],
  ];
  for (const [what, x, want] of cases) test(what, () => expect(roundToF16(x)).toBe(want));

  test('signed zeros, infinities and NaN pass; tiny negatives round to -0', () => {
    expect(Object.is(roundToF16(-0), -0)).toBe(true);
    expect(Object.is(roundToF16(0), 0)).toBe(true);
    expect(Object.is(roundToF16(-1e-30), -0)).toBe(true);
    expect(roundToF16(-Infinity)).toBe(-Infinity);
    expect(roundToF16(NaN)).toBeNaN();
  });

  test('every binary16 value is kept, and each midpoint goes to its even neighbour', () => {
    // All 63,488 finite binary16 values from their bits, ascending for each sign.
    const f16 = (h: number) => {
      const e = (h >> 10) & 31;
      const m = h & 1023;
      const v = e ? (1 + m / 1024) * 2 ** (e - 15) : m * 2 ** -24;
      return h & 0x8000 ? -v : v;
    };
    for (let h = 0; h < 0x7c00; h++) {
      const v = f16(h);
      expect(roundToF16(v)).toBe(v);
      if (h + 1 < 0x7c00) {
        const mid = (v + f16(h + 1)) / 2;
        expect(roundToF16(mid), `midpoint above 0x${h.toString(16)}`).toBe(h % 2 === 0 ? v : f16(h + 1));
        expect(roundToF16(-mid)).toBe(-(h % 2 === 0 ? v : f16(h + 1)));
      }
    }
  });
});

/** f32 inputs: a dense sweep of bit patterns (every sign, exponent and many mantissas), then the edges. */
function inputs(): Float32Array {
  const bits: number[] = [];
  for (let b = 0; b < 2 ** 32; b += 8191) bits.push(b);
  const edges = [65504, 65519.99, 65520, 65536, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -14, 2 ** -14 - 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0, 1e-40, Infinity];
  const x = new Float32Array(new Uint32Array(bits).buffer);
  return Float32Array.from([...x, ...edges, ...edges.map((v) => -v)]);
}

/** The inputs whose result differs from roundToF16's in its bits (a NaN for a NaN is right, whatever its payload). */
function mismatches(x: Float32Array, got: Float32Array): string[] {
  const want = Float32Array.from(x, roundToF16);
  const [g, w] = [new Uint32Array(got.buffer, got.byteOffset, got.length), new Uint32Array(want.buffer)];
  const wrong: string[] = [];
  for (let i = 0; i < x.length; i++) if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(x[i]))) wrong.push(`${x[i]} → ${got[i]} (want ${want[i]})`);
  return wrong;
}

forEachDevice((d) => {
  test('round_f16 alone and fused: bit-equal to roundToF16 of the f32 input', async () => {
    const x = inputs();
    const up = d.eager.upload([x.length], x);
    const single = await d.eager.read(d.eager.call('round_f16', [up])[0]);
    const fused = await d.eager.read(d.eager.call('fused', [up], { shape: [x.length], program: [['input', 0], ['round_f16', 0]], outputs: [1] })[0]);
    for (const [what, got] of [['single', single], ['fused', fused]] as const) {
      const wrong = mismatches(x, got);
      expect(wrong.slice(0, 5), `${d.name} ${what}: ${wrong.length} of ${x.length} differ`).toEqual([]);
    }
  }, 120_000);

  test('round_f16 on tensors of 3 (the one-lane path of the Wasm kernels): bit-equal to roundToF16', async () => {
    const all = inputs();
    const x = Float32Array.from({ length: 3 * 400 }, (_, i) => all[(i * 1777) % (all.length - 28)]);
    x.set(all.subarray(all.length - 28).slice(0, 27), x.length - 27);
    for (let i = 0; i < x.length; i += 3) {
      const part = x.slice(i, i + 3);
      expect(mismatches(part, await d.eager.read(d.eager.call('round_f16', [d.eager.upload([3], part)])[0]))).toEqual([]);
    }
  }, 120_000);
});
