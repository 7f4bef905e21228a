// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON { name: { dtype, shape, data_offsets: [begin, end] }, ...,
// "__metadata__": { string: string } }, then the raw little-endian data. Offsets are relative
// to the end of the header. Used for checkpoints and for the golden fixtures.
//
// Works in Node and browsers (no Buffer): the input is an ArrayBuffer or a byte view.

import type { Shape } from '../kernels/types.ts';
import { fmtShape, numel } from '../kernels/types.ts';

export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<Dtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** The typed array each dtype decodes to (F16/BF16 are widened to Float32Array). */
export type TensorData = Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface StTensor {
  dtype: Dtype;
  shape: Shape;
  data: TensorData;
}

export interface SafeTensors {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** The largest safetensors file read (what Node reads into one buffer, 2 GiB); the paper's largest model's weights are 90 MB. */
export const MAX_SAFETENSORS_BYTES = 2 ** 31 - 1;

/** Most dimensions a tensor may have (the models' tensors have at most 5). */
const MAX_RANK = 32;

/** A header value for a message, cut at 100 characters. */
const clipped = (v: unknown): string => {
  const t = JSON.stringify(v) ?? String(v);
  return t.length > 100 ? `${t.slice(0, 100)}… (${t.length} characters)` : t;
};

/** A header larger than this is certainly corrupt (the reference implementation uses 100 MB). */
const MAX_HEADER = 100_000_000;

const bytesOf = (src: ArrayBuffer | ArrayBufferView): Uint8Array =>
  src instanceof ArrayBuffer ? new Uint8Array(src) : new Uint8Array(src.buffer, src.byteOffset, src.byteLength);

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Decodes `n` elements of `dtype` from little-endian bytes (copied: the result owns its memory, aligned). */
function decode(dtype: Dtype, bytes: Uint8Array, n: number): TensorData {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, dv.getUint16(2 * i, true) << 16);
        out[i] = tmp.getFloat32(0);
      }
      return out;
    }
    case 'I64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getBigInt64(8 * i, true);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case 'I16': {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case 'I8':
      return new Int8Array(bytes.slice(0, n).buffer);
    case 'U8':
    case 'BOOL':
      return bytes.slice(0, n);
  }
}

/** Parses a safetensors file. Throws SafetensorsError naming what is wrong (truncation, bad JSON, overlapping data...). */
export function parseSafetensors(src: ArrayBuffer | ArrayBufferView): SafeTensors {
  const bytes = bytesOf(src);
  if (bytes.byteLength < 8) throw new SafetensorsError(`file is ${bytes.byteLength} bytes, too short for the 8-byte header length (truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) throw new SafetensorsError(`header length ${n64} is implausible (over ${MAX_HEADER} bytes): not a safetensors file, or corrupt`);
  const n = Number(n64);
  if (8 + n > bytes.byteLength) throw new SafetensorsError(`header says ${n} bytes of JSON but the file has only ${bytes.byteLength - 8} after the length (truncated)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError('header JSON must be an object of tensor entries');

  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Object.values(entry).some((v) => typeof v !== 'string')) throw new SafetensorsError('__metadata__ must map strings to strings');
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(`tensor '${name}': entry must be an object with dtype, shape, data_offsets`);
    const dtype = e.dtype as Dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) throw new SafetensorsError(`tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    // At most MAX_RANK dimensions, so that no message repeats a million of them.
    if (!Array.isArray(e.shape) || e.shape.length > MAX_RANK || e.shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new SafetensorsError(`tensor '${name}': shape ${clipped(e.shape)} must be a list of at most ${MAX_RANK} non-negative integers`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isInteger(d) || d < 0) || off[1] < off[0])
      throw new SafetensorsError(`tensor '${name}': data_offsets ${clipped(off)} must be [begin, end] with 0 <= begin <= end`);
    const shape = e.shape as number[];
    const [b, end] = off as [number, number];
    const want = numel(shape) * DTYPE_BYTES[dtype];
    if (end - b !== want) throw new SafetensorsError(`tensor '${name}': ${dtype} ${fmtShape(shape)} needs ${want} bytes but data_offsets span ${end - b}`);
    if (end > dataLen) throw new SafetensorsError(`tensor '${name}': data ends at byte ${end} of the data section but it has only ${dataLen} bytes (truncated)`);
    spans.push([b, end, name]);
    tensors.set(name, { dtype, shape, data: decode(dtype, bytes.subarray(dataStart + b, dataStart + end), numel(shape)) });
  }
  // Tensors must not overlap (the format also requires them to tile the data section; we only
  // insist on no overlap so that padded writers are still readable).
  spans.sort((a, b) => a[0] - b[0]);
  let last: [number, number, string] | null = null;
  for (const s of spans) {
    if (s[1] === s[0]) continue; // empty tensors occupy no bytes
    if (last && s[0] < last[1]) throw new SafetensorsError(`tensors '${last[2]}' and '${s[2]}' overlap in the data section (corrupt)`);
    if (!last || s[1] > last[1]) last = s;
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  shape: Shape;
  data: ArrayLike<number> | BigInt64Array;
  /** Default: F32 for Float32Array, I64 for BigInt64Array, F64 otherwise. */
  dtype?: 'F64' | 'F32' | 'I64' | 'I32';
}

function defaultDtype(t: TensorToWrite): 'F64' | 'F32' | 'I64' | 'I32' {
  if (t.dtype) return t.dtype;
  if (t.data instanceof Float32Array) return 'F32';
  if (t.data instanceof BigInt64Array) return 'I64';
  if (t.data instanceof Int32Array) return 'I32';
  return 'F64';
}

/** Serialises tensors (in the given order) with optional string metadata. */
export function writeSafetensors(tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const plan: [TensorToWrite, 'F64' | 'F32' | 'I64' | 'I32', number][] = [];
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new SafetensorsError(`'__metadata__' is reserved and cannot name a tensor`);
    if (t.data.length !== numel(t.shape)) throw new SafetensorsError(`tensor '${name}': ${t.data.length} values do not fill shape ${fmtShape(t.shape)}`);
    const dtype = defaultDtype(t);
    const size = numel(t.shape) * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    plan.push([t, dtype, offset]);
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data starts 8-byte aligned (the format allows trailing whitespace).
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  const base = 8 + json.byteLength;
  for (const [t, dtype, off] of plan) {
    const n = t.data.length;
    const p = base + off;
    for (let i = 0; i < n; i++) {
      const v = (t.data as ArrayLike<number | bigint>)[i];
      if (dtype === 'F64') dv.setFloat64(p + 8 * i, Number(v), true);
      else if (dtype === 'F32') dv.setFloat32(p + 4 * i, Number(v), true);
      else if (dtype === 'I32') dv.setInt32(p + 4 * i, Number(v), true);
      else dv.setBigInt64(p + 8 * i, typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v))), true);
    }
  }
  return out;
}

/** A tensor's values as float64 (integers converted; throws if an I64 exceeds 2^53). */
export function asFloat64(t: StTensor, name = 'tensor'): Float64Array {
  if (t.data instanceof BigInt64Array) {
    const out = new Float64Array(t.data.length);
    for (let i = 0; i < out.length; i++) {
      const v = t.data[i];
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new SafetensorsError(`${name}: I64 value ${v} cannot be represented exactly as a float`);
      out[i] = Number(v);
    }
    return out;
  }
  return Float64Array.from(t.data as ArrayLike<number>);
}
