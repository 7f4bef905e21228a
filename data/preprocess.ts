// From a raw image to the model's tensors (statistical-cell.md §3.1): mask, scale to [0, 1],
// centre-crop or zero-pad to the model's size, and split into the reference channels
// [membrane, DNA] and the structure channel. The scale divides by the value that stands for 1:
// the type's maximum (255 for uint8 as in the paper, 65535 for uint16, 1 for float32) unless
// the manifest's intensity_scale column (or the caller) declares another (e.g. 4095 for 12-bit
// camera data stored in 16 bits).

import type { Channels } from './manifest.ts';
import { decodeImage, imageDims, type Image } from './decode.ts';

export interface CellTensors {
  /** [2, ...size]: membrane, DNA. */
  reference: Float32Array;
  /** [1, ...size]: the structure. */
  structure: Float32Array;
}

export interface PreprocessOptions {
  /** Model input size: [Y, X] or [Y, X, Z]. */
  size: number[];
  /** 'unit' divides by the intensity scale; 'sum' then scales each channel to sum to `sumTo` (another normalisation of the original code). */
  intensity?: 'unit' | 'sum';
  /** The stored value that stands for 1; default: the image type's maximum (uint8 255, uint16 65535, float32 1). */
  intensityScale?: number;
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

/** The type maxima: what a stored value of 1.0 is by default. */
export const TYPE_MAX = { uint8: 255, uint16: 65535, float32: 1 } as const;

/** The divisor of an image's values: the declared scale, else its type's maximum. */
export function intensityScaleOf(img: Image, declared: number | undefined, source = 'image'): number {
  if (declared === undefined) return TYPE_MAX[img.dtype ?? 'uint8'];
  if (!(declared > 0) || !Number.isFinite(declared)) throw new Error(`${source}: intensity scale ${declared} must be a positive number`);
  return declared;
}

/** A registered multi-channel image (C × Y × X × Z, or C × Y × X) with the manifest's channel indices: DNA masked by seg_nuc, membrane and structure by seg_cell (each mask when given). */
export function preprocess3d(img: Image, ch: Channels, opts: PreprocessOptions, source = 'image'): CellTensors {
  if (img.spatial.length !== 3) throw new Error(`${source}: expected a 3D image, got ${img.spatial.length}D`);
  return preprocessIndexed(img, ch, opts, source);
}

/** A plain TIFF's channel count from the ch_* indices (it has no metadata that gives one): the largest + 1. */
export const channelsHint = (ch: Channels | undefined): number | undefined => (ch ? Math.max(...Object.values(ch).filter((v): v is number => v !== undefined)) + 1 : undefined);

/**
 * Each ch_* index against an image's channel count (its header's will do: the data set checks
 * every row's before training). The indices pick the channels of every image but a 2D image of
 * exactly 3 channels, which is membrane, structure, DNA (the PNGs' RGB, statcell's files;
 * docs/formats.md): there they do not apply, as they describe the row's 3D image (the Allen
 * manifests and `statcell synth` give 7-channel TIFF indices beside RGB PNGs).
 */
export function checkChannels(ch: Channels | undefined, img: { channels: number; spatial: number[] }, file: string): void {
  if (!ch || (img.spatial.length === 2 && img.channels === 3)) return;
  for (const [name, c] of Object.entries(ch))
    if (c !== undefined && c >= img.channels) throw new Error(`column ch_${name} = ${c}, but ${file} has ${img.channels} channel(s) (indices 0…${img.channels - 1})`);
}

function preprocessIndexed(img: Image, ch: Channels, opts: PreprocessOptions, source: string): CellTensors {
  const voxels = img.spatial.reduce((a, b) => a * b, 1);
  checkChannels(ch, img, source);
  const plane = (c: number) => img.data.subarray(c * voxels, (c + 1) * voxels);
  // Without a segmentation index the channel is taken whole.
  const masked = (c: number, mask: number | undefined) => {
    if (mask === undefined) return Float32Array.from(plane(c));
    const p = plane(c);
    const m = plane(mask);
    const out = new Float32Array(voxels);
    for (let i = 0; i < voxels; i++) out[i] = m[i] > 0 ? p[i] : 0;
    return out;
  };
  return assemble([masked(ch.memb, ch.seg_cell), masked(ch.dna, ch.seg_nuc), masked(ch.struct, ch.seg_cell)], img.spatial, opts, intensityScaleOf(img, opts.intensityScale, source));
}

// A channel's role by name: exact names first (statcell writes 'membrane' and 'DNA'), then one
// unique hit of the dye names; a structure named like a dye ('plasma membrane', 'nuclear
// envelope') cannot then be taken for the reference channel.
const ROLE_NAMES = {
  memb: { exact: ['membrane', 'memb', 'cell membrane', 'cellmask'], like: /\b(membrane|memb|cellmask)\b/i },
  dna: { exact: ['dna', 'nucleus', 'hoechst', 'dapi'], like: /\b(dna|hoechst|dapi|draq5)\b/i },
};

/**
 * Which of three channels are membrane, structure and DNA: by the file's channel names where
 * they name one membrane and one DNA channel (an OME file ordered DNA, membrane, structure is read
 * right), else the order membrane, structure, DNA.
 */
export function orderedChannels(names: string[] | undefined): { memb: number; struct: number; dna: number; byName: boolean } {
  const role = ({ exact, like }: { exact: string[]; like: RegExp }) => {
    for (const hits of [(n: string) => exact.includes(n.trim().toLowerCase()), (n: string) => like.test(n)]) {
      const at = (names ?? []).flatMap((n, i) => (hits(n) ? [i] : []));
      if (at.length === 1) return at[0];
      if (at.length > 1) return -1;
    }
    return -1;
  };
  const memb = role(ROLE_NAMES.memb);
  const dna = role(ROLE_NAMES.dna);
  if (names?.length === 3 && memb >= 0 && dna >= 0 && memb !== dna) return { memb, dna, struct: 3 - memb - dna, byName: true };
  return { memb: 0, struct: 1, dna: 2, byName: false };
}

/** Three channels, already masked: a 2D max-projection PNG (R membrane, G structure, B DNA), or what statcell writes (OME-TIFF, OME-Zarr; 2D or 3D), placed by their names where the file has them. */
function preprocessOrdered(img: Image, opts: PreprocessOptions, source: string): CellTensors {
  const voxels = img.spatial.reduce((a, b) => a * b, 1);
  const plane = (c: number) => Float32Array.from(img.data.subarray(c * voxels, (c + 1) * voxels));
  const { memb, struct, dna } = orderedChannels(img.channelNames);
  return assemble([plane(memb), plane(dna), plane(struct)], img.spatial, opts, intensityScaleOf(img, opts.intensityScale, source));
}

/** A 2D max-projection PNG: R membrane, G structure, B DNA, already masked. */
export function preprocess2d(img: Image, opts: PreprocessOptions, source = 'image'): CellTensors {
  if (img.spatial.length !== 2 || img.channels < 3) throw new Error(`${source}: expected a 2D RGB image, got ${img.channels} channel(s) of ${img.spatial.join('×')}`);
  return preprocessOrdered(img, opts, source);
}

/**
 * Any cell image, 2D or 3D. A 2D image of 3 channels is membrane, structure, DNA already masked (the
 * PNGs' RGB and the order statcell writes; an OME file's channel names place them), whatever the channel indices (a manifest's ch_* columns
 * describe its 3D TIFFs). Otherwise, with channel indices, those channels, masked; without,
 * exactly three channels in that order.
 */
export function preprocessCell(img: Image, ch: Channels | undefined, opts: PreprocessOptions, source = 'image'): CellTensors {
  if (ch && !(img.spatial.length === 2 && img.channels === 3)) return preprocessIndexed(img, ch, opts, source);
  if (img.channels !== 3)
    throw new Error(`${source}: ${img.channels} channel(s) and no channel indices: give the manifest ch_dna, ch_memb and ch_struct columns (ch_seg_cell, ch_seg_nuc optional), or a 3-channel image ordered membrane, structure, DNA`);
  return preprocessOrdered(img, opts, source);
}

function assemble([memb, dna, struct]: Float32Array[], spatial: number[], opts: PreprocessOptions, scale: number): CellTensors {
  if (spatial.length !== opts.size.length) throw new Error(`image is ${spatial.length}D but the model takes ${opts.size.length}D input`);
  if ((opts.fit ?? 'exact') === 'exact' && spatial.some((d, i) => d !== opts.size[i]))
    throw new Error(`the image is ${spatial.join('×')} but the model takes ${opts.size.join('×')}; make the data at the model's size (statcell synth --size ${opts.size.join(',')}), set the model's size (--set size=[${spatial.join(',')}]), or centre-crop / zero-pad it with --fit crop-pad`);
  const n = opts.size.reduce((a, b) => a * b, 1);
  const reference = new Float32Array(2 * n);
  const structure = new Float32Array(n);
  const out = [reference.subarray(0, n), reference.subarray(n), structure];
  [memb, dna, struct].forEach((p, k) => {
    centreCopy(p, spatial, out[k], opts.size, 1 / scale);
    normalise(out[k], opts);
  });
  return { reference, structure };
}

/**
 * A cell file's bytes to the model's tensors, as in training (browser-safe: for a file dropped in
 * the explorer): PNG or (OME-)TIFF by its signature, checked against the model's size before
 * decoding, then preprocessCell with the data set's channel indices (for TIFFs that are not the three
 * channels membrane, structure, DNA) and intensity scale.
 */
export async function decodeCell(file: string, bytes: ArrayBuffer, opts: PreprocessOptions & { channels?: Channels }): Promise<CellTensors & { image: Image }> {
  const dims = imageDims(opts.size);
  const image = await decodeImage(file, bytes, { dims, channelsHint: channelsHint(opts.channels), bounds: opts });
  return { ...preprocessCell(image, opts.channels, opts, file), image };
}
