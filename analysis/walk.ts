// Latent walks (statistical-cell.md §4): decode along the top latent dimensions (ranked by mean
// KLD) with every other dimension at 0. For a conditioned model the conditions (reference image,
// label) are fixed for the whole walk. Browser-safe.

import { channelsOf, imageChannels, inputWithRole, type CellChannels } from '../session/feeds.ts';
import type { ModelRuntime } from '../session/model.ts';

/** Most values one walk may take per dimension: every tile of the walk is kept for its grid and files (a 3D cell of the paper's size is ~9 MB). */
export const MAX_WALK_STEPS = 101;

/** `steps` evenly spaced values from −range to +range (0 alone for one step). */
export function walkValues(steps: number, range: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > MAX_WALK_STEPS) throw new Error(`walk: --steps ${steps}: expected a whole number from 1 to ${MAX_WALK_STEPS}`);
  if (!(range > 0)) throw new Error(`walk: --range ${range}: expected a positive number`);
  return steps === 1 ? [0] : Array.from({ length: steps }, (_, i) => -range + (2 * range * i) / (steps - 1));
}

export interface WalkTile {
  dim: number;
  value: number;
  channels: CellChannels;
}

/** The `k` dims walked: the first of `order` (dims by mean KLD, descending); all of them when k is larger. */
export function topDims(order: readonly number[], k: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`walk: --dims ${k}: expected a positive integer`);
  return order.slice(0, k);
}

/**
 * Decodes (codes of `latent` dims), for each dimension of `dims` (in that order) and each value, the code that is `value`
 * in that dimension and 0 elsewhere. `conditions` holds the decoder's other inputs for ONE cell
 * (reference, one-hot label), repeated over the batch. The values are decoded `batch` at a time
 * (default: all at once; the CLI passes the run's training batch, which is known to fit).
 */
export async function latentWalk(rt: ModelRuntime, o: { latent: number; dims: number[]; values: number[]; conditions?: Record<string, Float32Array>; batch?: number }): Promise<WalkTile[]> {
  const dec = rt.model.roles.decode;
  if (!dec) throw rt.model.error('SC5001', { need: 'entry', model: rt.model.name, role: 'decode', purpose: 'walk its latent space' }, { notes: ['add `entry decode(z: [B, L], <conditions>) -> xhat: [B, C, ...size] { ... }` (or mark an entry `as decode`)'] });
  const names = channelsOf(inputWithRole(rt.model, 'image', 'latent walks'));
  const step = Math.max(1, Math.min(o.batch ?? o.values.length, o.values.length));
  const tiles: WalkTile[] = [];
  for (const d of o.dims) {
    if (!Number.isInteger(d) || d < 0 || d >= o.latent) throw new Error(`walk: latent dimension ${d} is outside the model's ${o.latent}`);
    for (let start = 0; start < o.values.length; start += step) {
      const values = o.values.slice(start, start + step);
      const n = values.length;
      const z = new Float32Array(n * o.latent);
      values.forEach((v, i) => (z[i * o.latent + d] = v));
      const feeds: Record<string, Float32Array> = { [dec.latent]: z };
      for (const [k, one] of Object.entries(o.conditions ?? {})) {
        const rep = new Float32Array(one.length * n);
        for (let i = 0; i < n; i++) rep.set(one, i * one.length);
        feeds[k] = rep;
      }
      const out = (await rt.run(dec.entry, feeds, n))[dec.output];
      values.forEach((value, i) => tiles.push({ dim: d, value, channels: imageChannels(out, names, i, n) }));
    }
  }
  return tiles;
}
