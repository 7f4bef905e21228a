// From a raw image to the model's tensors (statistical-cell.md §3.1): mask, scale to [0, 1],
// centre-crop or zero-pad to the model's size, and split into the reference channels
// [membrane, DNA] and the structure channel.

import type { Channels } from './manifest.ts';
import type { Image } from './images.ts';

export interface CellTensors {
  /** [2, ...size]: membrane, DNA. */
  reference: Float32Array;
  /** [1, ...size]: the structure. */
  structure: Float32Array;
}

export interface PreprocessOptions {
  /** Model input size: [Y, X] or [Y, X, Z]. */
  size: number[];
  /** 'unit' divides by 255; 'sum' scales each channel to sum to `sumTo` (another normalisation of the original code). */
  intensity?: 'unit' | 'sum';
  sumTo?: number;
  /** An image of another size: an error ('exact', the default), or centre-cropped / zero-padded to `size` as the paper does ('crop-pad'). */
  fit?: 'exact' | 'crop-pad';
}

/**
 * Copies `src` (spatial `from`) into `dst` (spatial `to`) centred: cropping takes the floor of
 * the excess off the start, padding puts the floor of the deficit before.
 */
export function centreCopy(src: ArrayLike<number>, from: number[], dst: Float32Array, to: number[], scale = 1): void {
  // >0: crop (the floor of the excess off the start); <0: pad (the floor of the deficit before).
  const off = from.map((n, d) => (n >= to[d] ? Math.floor((n - to[d]) / 2) : -Math.floor((to[d] - n) / 2)));
  const rank = from.length;
  const total = to.reduce((a, b) => a * b, 1);
  const idx = new Array(rank).fill(0);
  for (let i = 0; i < total; i++) {
    let s = 0;
    let inside = true;
    for (let d = 0; d < rank; d++) {
      const j = idx[d] + off[d];
      if (j < 0 || j >= from[d]) {
        inside = false;
        break;
      }
      s = s * from[d] + j;
    }
    dst[i] = inside ? src[s] * scale : 0;
    for (let d = rank - 1; d >= 0 && ++idx[d] === to[d]; d--) idx[d] = 0;
  }
}

function normalise(plane: Float32Array, opts: PreprocessOptions): void {
  if (opts.intensity !== 'sum') return;
  let s = 0;
  for (const v of plane) s += v;
  if (s > 0) {
    const k = (opts.sumTo ?? 1000) / s;
    for (let i = 0; i < plane.length; i++) plane[i] *= k;
  }
}

/** A 3D registered TIFF (C × Y × X × Z) with the manifest's channel indices. */
export function preprocess3d(img: Image, ch: Channels, opts: PreprocessOptions, source = 'image'): CellTensors {
  const voxels = img.spatial.reduce((a, b) => a * b, 1);
  for (const [name, c] of Object.entries(ch))
    if (c !== undefined && c >= img.channels) throw new Error(`${source}: channel index ch_${name} = ${c} but the image has ${img.channels} channels (0…${img.channels - 1})`);
  if (img.spatial.length !== 3) throw new Error(`${source}: expected a 3D image, got ${img.spatial.length}D`);
  const plane = (c: number) => img.data.subarray(c * voxels, (c + 1) * voxels);
  const masked = (c: number, mask: number) => {
    const p = plane(c);
    const m = plane(mask);
    const out = new Float32Array(voxels);
    for (let i = 0; i < voxels; i++) out[i] = m[i] > 0 ? p[i] : 0;
    return out;
  };
  return assemble([masked(ch.memb, ch.seg_cell), masked(ch.dna, ch.seg_nuc), masked(ch.struct, ch.seg_cell)], img.spatial, opts);
}

/** A 2D max-projection PNG: R membrane, G structure, B DNA, already masked. */
export function preprocess2d(img: Image, opts: PreprocessOptions, source = 'image'): CellTensors {
  if (img.spatial.length !== 2 || img.channels < 3) throw new Error(`${source}: expected a 2D RGB image, got ${img.channels} channel(s) of ${img.spatial.join('×')}`);
  const pixels = img.spatial[0] * img.spatial[1];
  const plane = (c: number) => Float32Array.from(img.data.subarray(c * pixels, (c + 1) * pixels));
  return assemble([plane(0), plane(2), plane(1)], img.spatial, opts);
}

function assemble([memb, dna, struct]: Float32Array[], spatial: number[], opts: PreprocessOptions): CellTensors {
  if (spatial.length !== opts.size.length) throw new Error(`image is ${spatial.length}D but the model takes ${opts.size.length}D input`);
  if ((opts.fit ?? 'exact') === 'exact' && spatial.some((d, i) => d !== opts.size[i]))
    throw new Error(`the image is ${spatial.join('×')} but the model takes ${opts.size.join('×')}; make the data at the model's size (statcell synth --size ${opts.size.join(',')}), set the model's size (--set size=[${spatial.join(',')}]), or centre-crop / zero-pad it with --fit crop-pad`);
  const n = opts.size.reduce((a, b) => a * b, 1);
  const reference = new Float32Array(2 * n);
  const structure = new Float32Array(n);
  const out = [reference.subarray(0, n), reference.subarray(n), structure];
  [memb, dna, struct].forEach((p, k) => {
    centreCopy(p, spatial, out[k], opts.size, 1 / 255);
    normalise(out[k], opts);
  });
  return { reference, structure };
}
