// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011). Each block of 4 outputs is a pure function of (key, counter), so every
// backend produces the same bits in any order, and a draw can be replayed from (seed, offset).
//
// Layout: key = (seed mod 2³², ⌊seed / 2³²⌋); element i uses lane i mod 4 of the block whose
// counter is (lo, hi, 0, 0) with lo/hi the 64-bit value offset + ⌊i / 4⌋. A draw of n values
// consumes ⌈n / 4⌉ counters: the next independent draw uses offset + ⌈n / 4⌉.
// Uniforms come from the top 24 bits (exact in f32): rand u = (x >> 8)·2⁻²⁴ ∈ [0, 1).
// randn: Box–Muller on lanes (0, 1) and (2, 3): u1 = ((x0 >> 8) + 1)·2⁻²⁴ ∈ (0, 1],
// θ = 2π·((x1 >> 8)·2⁻²⁴ − ½) ∈ [−π, π), z0 = √(−2 ln u1)·cos θ, z1 = √(−2 ln u1)·sin θ.
// Seed and offset travel in the pass's uniform so one pipeline serves every draw of a shape.

import type { OpDef, Shape } from '../types.ts';
import { OpError, numel } from '../types.ts';
import { LINEAR_INDEX, grid1d, linearMain } from '../wgsl.ts';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32s, from 16-bit halves (exact in doubles). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const cross = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (cross >>> 16)) >>> 0;
}

/** Philox4x32-10 of one counter block under one key: the published algorithm, 4 uint32s. */
export function philox4x32(ctr: readonly number[], key: readonly number[]): Uint32Array {
  let [c0, c1, c2, c3] = ctr.map((x) => x >>> 0);
  let [k0, k1] = key.map((x) => x >>> 0);
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

export type RandomDist = 'normal' | 'uniform' | 'bits';

export interface RandomAttrs {
  shape: Shape;
  seed: number;
  /** Counter offset in blocks of 4 values. */
  offset?: number;
  [k: string]: unknown;
}

const TWO32 = 4294967296;
const split64 = (x: number): [number, number] => [x % TWO32 >>> 0, Math.floor(x / TWO32) >>> 0];

/** The uint32 stream of a draw of n values (the float64 implementation, also used by tests). */
export function philoxStream(n: number, seed: number, offset = 0): Uint32Array {
  const out = new Uint32Array(n);
  const key = split64(seed);
  for (let b = 0; b * 4 < n; b++) {
    const r = philox4x32([...split64(offset + b), 0, 0], key);
    for (let l = 0; l < 4 && b * 4 + l < n; l++) out[b * 4 + l] = r[l];
  }
  return out;
}

const U24 = 2 ** -24;

/** Samples from whole blocks of bits (a multiple of 4 long), as the devices compute them. */
function sample(dist: RandomDist, bits: Uint32Array): Float64Array {
  if (dist === 'bits') return Float64Array.from(new Float32Array(bits.buffer, bits.byteOffset, bits.length));
  if (dist === 'uniform') return Float64Array.from(bits, (x) => (x >>> 8) * U24);
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(((bits[i] >>> 8) + 1) * U24));
    const th = 2 * Math.PI * ((bits[i + 1] >>> 8) * U24 - 0.5);
    out[i] = r * Math.cos(th);
    out[i + 1] = r * Math.sin(th);
  }
  return out;
}

function check(name: string, a: RandomAttrs): void {
  if (!Array.isArray(a.shape) || a.shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new OpError(name, `attribute shape must be a list of non-negative integers, got ${JSON.stringify(a.shape)}`);
  for (const k of ['seed', 'offset'] as const) {
    const v = a[k] ?? 0;
    if (!Number.isSafeInteger(v) || v < 0) throw new OpError(name, `attribute ${k} must be an integer in [0, 2^53), got ${v}`, [], 'Seeds and offsets are 64-bit counters: pass whole numbers');
  }
}

// WGSL's log, sin and cos may be as coarse as 2⁻¹¹ absolute (SwiftShader's are ≈1e-4), which
// would break "the same numbers everywhere": these are accurate to a few f32 ulps.
const ACCURATE_MATH = `
// ln(x) for x > 0: x = m·2^e with m in [√½, √2), ln m = 2 atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172.
fn log_acc(x: f32) -> f32 {
  let fe = frexp(x);
  var m = fe.fract;
  var e = f32(fe.exp);
  if (m < 0.70710678) { m = m * 2.0; e = e - 1.0; }
  let s = (m - 1.0) / (m + 1.0);
  let s2 = s * s;
  let p = 1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0)))));
  // ln 2 split in two so that e·ln2 carries no rounding of its own.
  return e * 0.693145751953125 + (e * 1.428606765330187e-6 + 2.0 * s * p);
}

// (cos, sin) of 2π·t for t in [−½, ½]: exact reduction to an octant, then Taylor to x¹³.
fn sincos_turns(t: f32) -> vec2<f32> {
  let q = round(4.0 * t);
  let x = 6.283185307179586 * (t - 0.25 * q);
  let x2 = x * x;
  let s = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0 * (1.0 - x2 / 110.0)))));
  let c = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0 * (1.0 - x2 / 132.0)))));
  switch (i32(q) & 3) {
    case 0: { return vec2<f32>(c, s); }
    case 1: { return vec2<f32>(-s, c); }
    case 2: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}
`;

function randomOp(name: string, dist: RandomDist): OpDef<RandomAttrs> {
  return {
    name,
    shape: (_s, a) => {
      check(name, a);
      return [[...a.shape]];
    },
    float64: (_i, _s, a) => {
      const n = numel(a.shape);
      // The last block is drawn whole: a trailing element's Box–Muller partner lies past n.
      const bits = philoxStream(Math.ceil(n / 4) * 4, a.seed, a.offset ?? 0);
      return [sample(dist, bits).slice(0, n)];
    },
    wgsl: (_s, a) => {
      const n = numel(a.shape);
      const blocks = Math.ceil(n / 4);
      const [k0, k1] = split64(a.seed);
      const [o0, o1] = split64(a.offset ?? 0);
      // Raw bits are stored as u32 so that no float path (denormal flushing) can touch them.
      const elem = dist === 'bits' ? 'u32' : 'f32';
      const store =
        dist === 'bits'
          ? 'for (var l = 0u; l < 4u; l++) { put(base + l, x[l]); }'
          : dist === 'uniform'
            ? 'for (var l = 0u; l < 4u; l++) { put(base + l, f32(x[l] >> 8u) * U24); }'
            : `for (var l = 0u; l < 4u; l += 2u) {
    let r = sqrt(-2.0 * log_acc((f32(x[l] >> 8u) + 1.0) * U24));
    let cs = sincos_turns(f32(x[l + 1u] >> 8u) * U24 - 0.5);
    put(base + l, r * cs.x);
    put(base + l + 1u, r * cs.y);
  }`;
      return {
        passes: [
          {
            bindings: [0],
            workgroups: grid1d(blocks),
            uniform: new Uint32Array([k0, k1, o0, o1]).buffer,
            code: `struct Philox { k0: u32, k1: u32, off_lo: u32, off_hi: u32 }
@group(0) @binding(0) var<storage, read_write> Y: array<${elem}>;
@group(0) @binding(1) var<uniform> U: Philox;
const U24: f32 = 5.9604644775390625e-8;

// High 32 bits of a 32×32-bit product from 16-bit halves (WGSL has no 64-bit integers).
fn mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu; let ah = a >> 16u; let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl; let lh = al * bh; let hl = ah * bl; let hh = ah * bh;
  let cross = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (cross >> 16u);
}

fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  for (var r = 0; r < 10; r++) {
    let hi0 = mulhi(0xd2511f53u, c.x); let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi(0xcd9e8d57u, c.z); let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}

${dist === 'normal' ? ACCURATE_MATH : ''}
fn put(i: u32, v: ${elem}) { if (i < ${n}u) { Y[i] = v; } }

${linearMain()} {
  let b = ${LINEAR_INDEX};
  if (b >= ${blocks}u) { return; }
  let lo = U.off_lo + b;
  let hi = U.off_hi + select(0u, 1u, lo < b);
  let x = philox(vec4<u32>(lo, hi, 0u, 0u), vec2<u32>(U.k0, U.k1));
  let base = b * 4u;
  ${store}
}`,
          },
        ],
      };
    },
    wasm: (_s, a) => {
      const n = numel(a.shape);
      const mode = dist === 'bits' ? 0 : dist === 'uniform' ? 1 : 2;
      return {
        run: (k, [y]) => {
          const [k0, k1] = split64(a.seed);
          const [o0, o1] = split64(a.offset ?? 0);
          k.philox_fill(y, n, k0, k1, o0, o1, mode);
        },
      };
    },
  };
}

/** N(0, 1) samples. */
export const randn = randomOp('randn', 'normal');
/** U[0, 1) samples with 24 random bits (initialisation: scale and shift with `scale`). */
export const rand = randomOp('rand', 'uniform');
/** The raw Philox uint32 stream, bit-cast to f32: for checking the generator bit for bit. */
export const randomBits = randomOp('random_bits', 'bits');

export const randomOps: OpDef<any>[] = [randn, rand, randomBits];
