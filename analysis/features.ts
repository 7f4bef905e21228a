// The 14 interpretable features of a 2D cell (statistical-cell.md §4, β sweep): for the cell
// (membrane channel) and the nucleus (DNA channel), the area, perimeter and roundness of the
// channel's mask, and the mean, median, standard deviation and entropy of the intensity inside it.
// Pure and browser-safe: images are Float32Arrays in [0, 1] (the data's 'unit' scaling), Y × X.
//
// Definitions (docs/sweep.md, "Features"):
// - mask: the pixels whose intensity is ≥ MASK_THRESHOLD (0.1 of full scale). Real synthetic cells
//   are 0 outside the cell / nucleus and ≥ 0.15 inside; generated cells are blurred, so a fixed
//   level, not a per-image one, keeps the masks of real and generated cells comparable.
// - area: the mask's pixel count (px²).
// - perimeter: the length (px) of the iso-line at MASK_THRESHOLD, by marching squares with linear
//   interpolation along each pixel edge (the image padded with 0, so every contour closes; saddles
//   resolved by the mean of the four corners). A pixel-count perimeter overestimates a disc's by
//   4/π ≈ 27%; the interpolated contour is within 1% on antialiased discs (test/node/features.test.ts).
// - roundness: 4π·area / perimeter² (1 for a disc, less for anything else): the 2D sphericity.
// - entropy: Shannon entropy, in bits, of the intensities inside the mask over ENTROPY_BINS equal
//   bins of [0, 1] (256: the 8-bit levels the data were stored in); values outside [0, 1] (a
//   generator's overshoot) go to the end bins.
// An empty mask has area and perimeter 0 and NaN for the rest.

import { mean, median, standardDeviation } from 'simple-statistics';

export const MASK_THRESHOLD = 0.1;
export const ENTROPY_BINS = 256;

/** The two masked channels: the data channel and the feature names' prefix. */
export const FEATURE_CHANNELS = [
  { channel: 'membrane', prefix: 'cell' },
  { channel: 'dna', prefix: 'nucleus' },
] as const;
export const CHANNEL_FEATURES = ['area', 'perimeter', 'roundness', 'mean', 'median', 'std', 'entropy'] as const;
export type ChannelFeatures = Record<(typeof CHANNEL_FEATURES)[number], number>;
/** cell_area … nucleus_entropy: the order of every feature vector. */
export const FEATURE_NAMES: string[] = FEATURE_CHANNELS.flatMap((c) => CHANNEL_FEATURES.map((f) => `${c.prefix}_${f}`));

function checkImage(img: ArrayLike<number>, size: readonly number[]): void {
  if (size.length !== 2 || !(size[0] > 0 && size[1] > 0)) throw new Error(`features: size ${size.join('×')} is not a 2D size Y×X`);
  if (img.length !== size[0] * size[1]) throw new Error(`features: an image of ${img.length} pixels is not ${size[0]}×${size[1]}`);
}

/** Length of the iso-line {img = level} (marching squares, linear interpolation, zero padding). */
export function contourLength(img: ArrayLike<number>, size: readonly number[], level = MASK_THRESHOLD): number {
  checkImage(img, size);
  const [Y, X] = size;
  const at = (y: number, x: number) => (y < 0 || x < 0 || y >= Y || x >= X ? 0 : img[y * X + x]);
  // Where along an edge from value a (t = 0) to b (t = 1) the level is crossed.
  const cross = (a: number, b: number) => (level - a) / (b - a);
  let total = 0;
  const px = new Float64Array(4);
  const py = new Float64Array(4);
  const hit = [false, false, false, false];
  for (let y = -1; y < Y; y++)
    for (let x = -1; x < X; x++) {
      // Corners c0 (y,x), c1 (y,x+1), c2 (y+1,x+1), c3 (y+1,x); edge k runs from corner k to k+1.
      const v = [at(y, x), at(y, x + 1), at(y + 1, x + 1), at(y + 1, x)];
      const inside = v.map((a) => a >= level);
      if (inside.every((b) => b === inside[0])) continue;
      const cy = [y, y, y + 1, y + 1];
      const cx = [x, x + 1, x + 1, x];
      let n = 0;
      for (let k = 0; k < 4; k++) {
        const j = (k + 1) % 4;
        hit[k] = inside[k] !== inside[j];
        if (!hit[k]) continue;
        n++;
        const t = cross(v[k], v[j]);
        py[k] = cy[k] + t * (cy[j] - cy[k]);
        px[k] = cx[k] + t * (cx[j] - cx[k]);
      }
      const seg = (a: number, b: number) => Math.hypot(px[a] - px[b], py[a] - py[b]);
      if (n === 2) {
        const [a, b] = [0, 1, 2, 3].filter((k) => hit[k]);
        total += seg(a, b);
      } else {
        // A saddle (c0, c2 on one side, c1, c3 on the other): the centre decides which pair joins.
        const centreInside = (v[0] + v[1] + v[2] + v[3]) / 4 >= level;
        // Corner k sits between edges k−1 and k; cutting it off joins those two edges.
        if (centreInside === inside[0]) total += seg(0, 1) + seg(2, 3); // c0–c2 joined: cut off c1 and c3
        else total += seg(3, 0) + seg(1, 2); // cut off c0 and c2
      }
    }
  return total;
}

/** Shannon entropy (bits) of values over `bins` equal bins of [0, 1]. */
export function histogramEntropy(values: ArrayLike<number>, bins = ENTROPY_BINS): number {
  if (!values.length) return NaN;
  const counts = new Float64Array(bins);
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.max(0, Math.floor(values[i] * bins)))]++;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / values.length) * Math.log2(c / values.length);
  return h;
}

/** The seven features of one channel's image. */
export function channelFeatures(img: ArrayLike<number>, size: readonly number[], level = MASK_THRESHOLD): ChannelFeatures {
  checkImage(img, size);
  const inside: number[] = [];
  for (let i = 0; i < img.length; i++) {
    if (!Number.isFinite(img[i])) throw new Error(`features: pixel ${i} is ${img[i]}`);
    if (img[i] >= level) inside.push(img[i]);
  }
  const area = inside.length;
  const perimeter = area ? contourLength(img, size, level) : 0;
  if (!area) return { area, perimeter, roundness: NaN, mean: NaN, median: NaN, std: NaN, entropy: NaN };
  return {
    area,
    perimeter,
    roundness: (4 * Math.PI * area) / (perimeter * perimeter),
    mean: mean(inside),
    median: median(inside),
    std: standardDeviation(inside), // population standard deviation
    entropy: histogramEntropy(inside),
  };
}

/** The 14 features of a cell (FEATURE_NAMES order) from its channels by name. */
export function cellFeatures(channels: Partial<Record<string, ArrayLike<number>>>, size: readonly number[], level = MASK_THRESHOLD): number[] {
  return FEATURE_CHANNELS.flatMap(({ channel }) => {
    const img = channels[channel];
    if (!img) throw new Error(`features: the cell has no '${channel}' channel (has ${Object.keys(channels).join(', ') || 'none'})`);
    const f = channelFeatures(img, size, level);
    return CHANNEL_FEATURES.map((k) => f[k]);
  });
}
