import { describe, expect, test } from 'vitest';
import { SafetensorsError, asFloat64, parseSafetensors, writeSafetensors } from '../runtime/safetensors.ts';
import { loadFixture } from './fixtures.ts';

/** Builds a file by hand from a header object and a data section, to test the reader on its own. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

describe('safetensors', () => {
  test('round trip F64, F32, I64, I32 with metadata', () => {
    const f64 = Float64Array.from([1.5, -2.25, Math.PI, 1e-300, -0, Infinity]);
    const f32 = Float32Array.from([0.1, 2, -3.5]);
    const i64 = BigInt64Array.from([0n, -1n, 9007199254740993n]);
    const bytes = writeSafetensors(
      { a: { shape: [2, 3], data: f64 }, b: { shape: [3], data: f32 }, c: { shape: [3], data: i64 }, d: { shape: [1, 2], data: Int32Array.from([7, -8]) }, e: { shape: [0], data: [] } },
      { format: 'pt', note: 'ünïcode' },
    );
    const st = parseSafetensors(bytes);
    expect(st.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect(st.tensors.get('a')).toEqual({ dtype: 'F64', shape: [2, 3], data: f64 });
    expect(st.tensors.get('b')!.dtype).toBe('F32');
    expect([...st.tensors.get('b')!.data]).toEqual([...f32]);
    expect(st.tensors.get('c')!.data).toEqual(i64);
    expect([...st.tensors.get('d')!.data]).toEqual([7, -8]);
    expect(st.tensors.get('e')!.shape).toEqual([0]);
    // Data starts 8-byte aligned so that readers can view it in place.
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
  });

  test('reads from a view into a larger buffer and an explicit dtype', () => {
    const inner = writeSafetensors({ x: { shape: [2], data: [1, 2], dtype: 'F32' } });
    const big = new Uint8Array(inner.byteLength + 5);
    big.set(inner, 3);
    const st = parseSafetensors(big.subarray(3, 3 + inner.byteLength));
    expect(st.tensors.get('x')!.data).toEqual(Float32Array.from([1, 2]));
  });

  test('F16 and BF16 decode to float32', () => {
    const data = new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x00, 0xc0]); // f16 1, -2; bf16 1, -2
    const st = parseSafetensors(rawFile({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] } }, data));
    expect([...st.tensors.get('h')!.data]).toEqual([1, -2]);
    expect([...st.tensors.get('b')!.data]).toEqual([1, -2]);
  });

  test('asFloat64 converts integers and refuses ones beyond 2^53', () => {
    const st = parseSafetensors(writeSafetensors({ i: { shape: [2], data: BigInt64Array.from([3n, -4n]) }, j: { shape: [1], data: BigInt64Array.from([2n ** 60n]) } }));
    expect([...asFloat64(st.tensors.get('i')!)]).toEqual([3, -4]);
    expect(() => asFloat64(st.tensors.get('j')!, 'j')).toThrow(/cannot be represented/);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /too short/],
    ['header length beyond the file', rawFile({}, new Uint8Array(0), 100n), /truncated/],
    ['absurd header length', rawFile({}, new Uint8Array(0), 1n << 40n), /implausible/],
    ['header not JSON', rawFile('{"a": '), /not valid UTF-8 JSON/],
    ['header is an array', rawFile([1, 2]), /must be an object/],
    ['unknown dtype', rawFile({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)), /unsupported dtype "F128"/],
    ['negative shape', rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }), /shape \[-1\]/],
    ['offsets disagree with the shape', rawFile({ a: { dtype: 'F64', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /needs 16 bytes/],
    ['data truncated', rawFile({ a: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(12)), /'a'.*truncated/],
    ['overlapping tensors', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap/],
    ['bad metadata', rawFile({ __metadata__: { a: 1 } }), /__metadata__/],
  ];
  for (const [what, bytes, msg] of bad)
    test(`rejects a corrupt file: ${what}`, () => {
      expect(() => parseSafetensors(bytes)).toThrow(SafetensorsError);
      expect(() => parseSafetensors(bytes)).toThrow(msg);
    });

  test('writer rejects data that does not fill the shape', () => {
    expect(() => writeSafetensors({ a: { shape: [2, 2], data: [1, 2, 3] } })).toThrow(/'a': 3 values do not fill shape \[2, 2\]/);
  });

  test('reads a PyTorch fixture and truncation of it is detected', async () => {
    const buf = await loadFixture('block_down2d_plain.safetensors');
    const st = parseSafetensors(buf);
    expect(st.metadata.block).toBe('down');
    const x = st.tensors.get('input/x')!;
    expect(x.dtype).toBe('F64');
    expect(x.shape).toEqual([2, 2, 8, 6]);
    expect(x.data.every((v) => Number.isFinite(v as number))).toBe(true);
    // Written back and read again, every tensor is unchanged.
    const again = parseSafetensors(writeSafetensors(new Map([...st.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float64Array }])), st.metadata));
    for (const [k, t] of st.tensors) expect(again.tensors.get(k)!.data, k).toEqual(t.data);
    expect(() => parseSafetensors(buf.slice(0, buf.byteLength - 1))).toThrow(/truncated/);
  });
});
