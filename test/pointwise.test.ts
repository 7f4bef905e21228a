// The pointwise op table (kernels/elementwise/pointwise.ts): the single ops and the fused op are
// generated from it and agree bit for bit, and the Wasm module, compiled ahead, is refused at
// instantiation when its opcodes differ from the table.

import { describe, expect, test } from 'vitest';
import { FUSIBLE_OPS, type FusedInstr } from '../kernels/fused/index.ts';
import { OPCODES, POINTWISE } from '../kernels/elementwise/pointwise.ts';
import { oracle, oracleTensor } from '../kernels/oracle.ts';
import { OPS } from '../kernels/registry.ts';
import { Eager } from '../runtime/tensor.ts';
import { OpcodeMismatchError, WasmBackend, checkOpcodes } from '../runtime/wasm.ts';

const SHAPE = [3, 5, 7];
/** Values over every op's interesting ranges: signs, softplus's threshold 20, exp's tail. */
const values = (seed: number) => oracleTensor(SHAPE, Array.from({ length: 105 }, (_, i) => ((((i * 37 + seed * 11) % 105) - 52) / 52) * (i % 3 ? 3 : 30) + 0.0137 * seed));
/** Each op's inputs and a parameter set (its defaults shifted, so none is the identity). */
const caseOf = (op: (typeof POINTWISE)[number]) => ({
  inputs: Array.from({ length: op.arity }, (_, k) => values(k + 1)),
  params: (op.params ?? []).map((p, j) => p.default * 0.75 - 0.5 * (j + 1)),
});
const attrsOf = (op: (typeof POINTWISE)[number], params: number[]) => Object.fromEntries((op.params ?? []).map((p, j) => [p.name, params[j]]));
/** The one-instruction fused program of an op. */
const fusedAttrs = (op: (typeof POINTWISE)[number], params: number[]) => ({
  shape: SHAPE,
  program: [...Array.from({ length: op.arity }, (_, k): FusedInstr => ['input', k]), [op.name, ...Array.from({ length: op.arity }, (_, k) => k), ...params] as FusedInstr],
  outputs: [op.arity],
});

describe('pointwise table', () => {
  test('every table op is a registered single op and a fused instruction, with its own opcode', () => {
    for (const op of POINTWISE) expect(OPS.has(op.name), op.name).toBe(true);
    expect([...FUSIBLE_OPS].sort()).toEqual(POINTWISE.map((op) => op.name).sort());
    expect(new Set(OPCODES.values()).size).toBe(OPCODES.size);
  });

  test('single op and one-instruction fused program agree bit for bit (float64)', () => {
    for (const op of POINTWISE) {
      const { inputs, params } = caseOf(op);
      const single = oracle.call(op.name, inputs, attrsOf(op, params))[0].data;
      const fused = oracle.call('fused', inputs, fusedAttrs(op, params))[0].data;
      expect(fused, op.name).toEqual(single);
    }
  });

  test('single op and one-instruction fused program agree bit for bit (Wasm)', async () => {
    const eager = new Eager(await WasmBackend.create({ threads: 1 }));
    for (const op of POINTWISE) {
      const { inputs, params } = caseOf(op);
      const up = inputs.map((t) => eager.upload(t.shape, t.data));
      const single = await eager.read(eager.call(op.name, up, attrsOf(op, params))[0]);
      const fused = await eager.read(eager.call('fused', up, fusedAttrs(op, params))[0]);
      expect(fused, op.name).toEqual(single);
    }
  });
});

describe('pointwise table vs the Wasm module', () => {
  const exportsOf = async () => (await WasmBackend.create({ threads: 1 })).exports;

  test("the module's OPCODE_* exports are exactly the table's opcodes", async () => {
    const exports = await exportsOf();
    expect(() => checkOpcodes(exports)).not.toThrow();
    const names = Object.keys(exports).filter((n) => n.startsWith('OPCODE_')).map((n) => n.slice('OPCODE_'.length));
    expect(names.sort()).toEqual([...OPCODES.keys()].sort());
  });

  test('a table that differs is refused, naming each mismatched op', async () => {
    const exports = await exportsOf();
    const doctored = (edit: (m: Map<string, number>) => void) => {
      const m = new Map(OPCODES);
      edit(m);
      return () => checkOpcodes(exports, m, 'build/kernels.wasm');
    };
    const renumbered = doctored((m) => m.set('relu_grad', 13));
    expect(renumbered).toThrow(OpcodeMismatchError);
    expect(renumbered).toThrow(/^wasm: build\/kernels\.wasm does not match the pointwise op table.*\n {2}'relu_grad' is opcode 13 in the table but 10 in the module\n.*npm run build:wasm/);
    expect(doctored((m) => m.set('tanh', 14))).toThrow(/'tanh' is opcode 14 in the table but the module has no OPCODE_tanh/);
    expect(doctored((m) => m.delete('softplus'))).toThrow(/'softplus' is opcode 8 in the module but not in the table/);
    // Two swapped ops: both named.
    expect(
      doctored((m) => {
        m.set('add', OPCODES.get('sub')!);
        m.set('sub', OPCODES.get('add')!);
      }),
    ).toThrow(/'add' is opcode 3 in the table but 2 in the module\n {2}'sub' is opcode 2 in the table but 3 in the module/);
  });
});
