import { describe, expect, test } from 'vitest';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import { getOp } from '../kernels/registry.ts';
import type { FusedAttrs } from '../kernels/fused/index.ts';
import { forEachDevice, opSuite, randn, relErr, runBoth } from './harness.ts';

// Values spread over softplus's threshold at 20 and the exp tail.
const wide = (n: number) => oracleTensor([n], Array.from({ length: n }, (_, i) => -25 + (i * 50) / (n - 1) + 0.013));

const relu_add: FusedAttrs = { shape: [2, 3, 5, 9], program: [['input', 0], ['input', 1], ['add', 0, 1], ['relu', 2]], outputs: [3] };

opSuite('fused', [
  // add → relu, same shapes: the contiguous path.
  { inputs: [randn([2, 3, 5, 9], 1), randn([2, 3, 5, 9], 2)], attrs: relu_add },
  // Conditioning add + relu, both written out (the forward of a block), per-channel broadcast.
  {
    inputs: [randn([2, 3, 5, 9], 3), randn([2, 3, 1, 1], 4)],
    attrs: { shape: [2, 3, 5, 9], program: [['input', 0], ['input', 1], ['mul', 0, 1], ['add', 2, 0], ['relu', 3]], outputs: [3, 4] },
  },
  // Both inputs broadcast ([4,1,3] and [5,1] → [4,5,3]); softplus, exp, scale, div, sub.
  {
    inputs: [randn([4, 1, 3], 5), randn([5, 1], 6)],
    attrs: {
      shape: [4, 5, 3],
      program: [['input', 0], ['input', 1], ['softplus', 0], ['exp', 1], ['div', 2, 3], ['scale', 4, -0.75, 0.5], ['sub', 5, 0]],
      outputs: [6, 4],
    },
  },
  // Long odd 1-D: chunk tails, constants, the activation gradients across the thresholds.
  {
    inputs: [wide(1031), randn([1031], 7)],
    attrs: {
      shape: [1031],
      program: [['input', 0], ['input', 1], ['relu_grad', 0, 1], ['softplus_grad', 0, 1], ['const', 0.25], ['mul', 3, 4], ['add', 2, 5], ['softplus', 0]],
      outputs: [6, 7],
    },
  },
  // A scalar operand, and an input written straight out (a copy).
  { inputs: [randn([1], 8), randn([3, 7], 9)], attrs: { shape: [3, 7], program: [['input', 0], ['input', 1], ['mul', 0, 1], ['scale', 1, 2, 0]], outputs: [2, 3] } },
  // 3-D images with a channel term missing the batch axis; short rows (15) that chunks straddle.
  {
    inputs: [randn([2, 3, 4, 5, 3], 10), randn([3, 1, 1, 1], 11), randn([2, 3, 4, 5, 3], 12)],
    attrs: { shape: [2, 3, 4, 5, 3], program: [['input', 0], ['input', 1], ['input', 2], ['add', 0, 1], ['relu_grad', 3, 2], ['mul', 4, 4]], outputs: [5] },
  },
  // An outer product: neither input has the output's shape; rows of 1 element... and 5.
  { inputs: [randn([7, 1], 13), randn([1, 5], 14)], attrs: { shape: [7, 5], program: [['input', 0], ['input', 1], ['sub', 0, 1], ['relu', 2]], outputs: [3, 2] } },
  { inputs: [randn([9, 1, 1], 15), randn([9, 2, 1], 16)], attrs: { shape: [9, 2, 1], program: [['input', 0], ['input', 1], ['add', 0, 1], ['exp', 0]], outputs: [2, 3] } },
  // One value written out twice; a value read by many later instructions (register reuse).
  {
    inputs: [randn([2, 5, 13], 17)],
    attrs: { shape: [2, 5, 13], program: [['input', 0], ['relu', 0], ['mul', 1, 0], ['add', 2, 1], ['sub', 3, 0], ['mul', 4, 1], ['const', 3], ['div', 5, 6]], outputs: [7, 7] },
  },
]);

describe('fused: semantics and errors', () => {
  test('the oracle equals the single ops applied one after another', () => {
    const [x, b] = [randn([2, 3, 5, 9], 20), randn([2, 3, 1, 1], 21)];
    const want = oracle.call('relu', oracle.call('add', [x, b]));
    const got = oracle.call('fused', [x, b], relu_add);
    expect(relErr(got[0].data, want[0].data)).toBe(0);
  });

  /** A chain of every kind of instruction, and the single ops applied one after another (float64). */
  const chain = () => {
    const [x, y] = [randn([3, 4, 6, 7], 22, 3), randn([4, 1, 1], 23)];
    const attrs: FusedAttrs = {
      shape: [3, 4, 6, 7],
      program: [['input', 0], ['input', 1], ['add', 0, 1], ['softplus', 2], ['exp', 1], ['mul', 3, 4], ['softplus_grad', 2, 5], ['relu_grad', 0, 6], ['scale', 7, 3, -1], ['div', 8, 4]],
      outputs: [9, 3],
    };
    const s1 = oracle.call('add', [x, y])[0];
    const s2 = oracle.call('softplus', [s1])[0];
    const s4 = oracle.call('exp', [y])[0];
    const s5 = oracle.call('mul', [s2, s4])[0];
    const s6 = oracle.call('softplus_grad', [s1, s5])[0];
    const s7 = oracle.call('relu_grad', [x, s6])[0];
    const s9 = oracle.call('div', [oracle.call('scale', [s7], { a: 3, b: -1 })[0], s4])[0];
    return { x, y, attrs, s2, s9 };
  };

  test('the oracle equals the single ops on a chain of every kind of instruction', () => {
    const { x, y, attrs, s9 } = chain();
    const want = oracle.call('fused', [x, y], attrs);
    expect(relErr(want[0].data, s9.data)).toBeLessThan(1e-14);
  });

  forEachDevice((d) => {
    test('agrees with the single ops on a chain of every kind of instruction', async () => {
      const { x, y, attrs, s2, s9 } = chain();
      const { got } = await runBoth(d, 'fused', [x, y], attrs);
      expect(relErr(got[0], s9.data), `${d.name} output 0`).toBeLessThan(1e-5);
      expect(relErr(got[1], s2.data), `${d.name} output 1`).toBeLessThan(1e-5);
    });

    test('a large same-shape chain (many chunks)', async () => {
      const [x, y] = [randn([4, 8, 33, 17], 24), randn([4, 8, 33, 17], 25)];
      const attrs: FusedAttrs = { shape: [4, 8, 33, 17], program: [['input', 0], ['input', 1], ['mul', 0, 1], ['add', 2, 0], ['relu', 3]], outputs: [4] };
      const { got, want } = await runBoth(d, 'fused', [x, y], attrs);
      expect(relErr(got[0], want[0].data), d.name).toBeLessThan(1e-6);
    });
  });

  const op = getOp('fused');
  test('inputs that do not broadcast to the output shape', () => {
    expect(() => op.shape([[2, 3], [4]], { shape: [2, 3], program: [['input', 0]], outputs: [0] })).toThrow(/^fused: input 1 \[4\] does not broadcast to the output shape \[2, 3\].*input shapes \[2, 3\], \[4\]/);
    expect(() => op.shape([[1, 2, 3]], { shape: [2, 3], program: [['input', 0]], outputs: [0] })).toThrow(/^fused: input 0 \[1, 2, 3\] does not broadcast/);
  });

  test('malformed programs name the instruction', () => {
    const base = { shape: [3], outputs: [0] };
    expect(() => op.shape([[3]], { ...base, program: [] })).toThrow(/^fused: attr program must be a non-empty list/);
    expect(() => op.shape([[3]], { ...base, program: [['input', 1]] })).toThrow(/^fused: instruction 0 loads input 1 but the op has 1 inputs/);
    expect(() => op.shape([[3]], { ...base, program: [['input', 0], ['add', 0, 1]] })).toThrow(/^fused: instruction 1 \(add\) refers to value 1; only values 0\.\.0/);
    expect(() => op.shape([[3]], { ...base, program: [['input', 0], ['tanh', 0]] })).toThrow(/^fused: instruction 1 has unknown op 'tanh'.*Known: input, const, scale/);
    expect(() => op.shape([[3]], { ...base, program: [['const', NaN]] })).toThrow(/^fused: instruction 0: const needs a finite number/);
    expect(() => op.shape([[3]], { shape: [3], program: [['input', 0]], outputs: [2] })).toThrow(/^fused: output value 2 is not an instruction/);
    expect(() => op.shape([[3]], { shape: [3], program: [['input', 0]], outputs: [] })).toThrow(/^fused: attr outputs must list at least one value/);
  });

  test('more non-mergeable axes than the Wasm kernel walks', () => {
    // Alternating broadcast axes do not merge: 7 axes after collapsing.
    const a = [2, 1, 2, 1, 2, 1, 2];
    const b = [1, 2, 1, 2, 1, 2, 1];
    expect(() => op.wasm([a, b], { shape: [2, 2, 2, 2, 2, 2, 2], program: [['input', 0], ['input', 1], ['add', 0, 1]], outputs: [2] })).toThrow(/^fused: the strided Wasm kernel handles at most 6/);
  });
});
