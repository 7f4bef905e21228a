// Latent walks (statistical-cell.md §4): decode along the top latent dimensions (ranked by mean
// KLD) with every other dimension at 0. For a conditioned model the conditions (reference image,
// label) are fixed for the whole walk. Browser-safe.

import { channelsOf, imageChannels, inputWithRole, type CellChannels } from '../session/feeds.ts';
import type { ModelRuntime } from '../session/model.ts';

/** `steps` evenly spaced values from −range to +range (0 alone for one step). */
export function walkValues(steps: number, range: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`walk: --steps ${steps}: expected a positive integer`);
  if (!(range > 0)) throw new Error(`walk: --range ${range}: expected a positive number`);
  return steps === 1 ? [0] : Array.from({ length: steps }, (_, i) => -range + (2 * range * i) / (steps - 1));
}

export interface WalkTile {
  dim: number;
  value: number;
  channels: CellChannels;
}

/**
 * Decodes (codes of `latent` dims), for each dimension of `dims` (in that order) and each value, the code that is `value`
 * in that dimension and 0 elsewhere. `conditions` holds the decoder's other inputs for ONE cell
 * (reference, one-hot label), repeated over the batch.
 */
export async function latentWalk(rt: ModelRuntime, o: { latent: number; dims: number[]; values: number[]; conditions?: Record<string, Float32Array> }): Promise<WalkTile[]> {
  const dec = rt.model.roles.decode;
  if (!dec) throw rt.model.error('SC5001', { need: 'entry', model: rt.model.name, role: 'decode', purpose: 'latent walks' }, { notes: ['add `entry decode(z: [B, L], <conditions>) -> xhat: [B, C, ...size] { ... }` (or mark an entry `as decode`)'] });
  const names = channelsOf(inputWithRole(rt.model, 'image', 'latent walks'));
  const n = o.values.length;
  const tiles: WalkTile[] = [];
  for (const d of o.dims) {
    if (!Number.isInteger(d) || d < 0 || d >= o.latent) throw new Error(`walk: latent dimension ${d} is outside the model's ${o.latent}`);
    const z = new Float32Array(n * o.latent);
    o.values.forEach((v, i) => (z[i * o.latent + d] = v));
    const feeds: Record<string, Float32Array> = { [dec.latent]: z };
    for (const [k, one] of Object.entries(o.conditions ?? {})) {
      const rep = new Float32Array(one.length * n);
      for (let i = 0; i < n; i++) rep.set(one, i * one.length);
      feeds[k] = rep;
    }
    const out = (await rt.run(dec.entry, feeds, n))[dec.output];
    o.values.forEach((value, i) => tiles.push({ dim: d, value, channels: imageChannels(out, names, i, n) }));
  }
  return tiles;
}
