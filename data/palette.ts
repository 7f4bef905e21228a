// The display colours of cells (browser-safe: the explorer page and viz/ share them). Composites
// are in the paper's display order [membrane, structure, DNA]: magenta, green and a light blue —
// magenta against green stays apart for red–green colour blindness, and each channel is also
// shown alone in grey, so no reading depends on colour.

/** A cell by channel name, each [...size] (session/feeds.ts CellChannels). */
type Channels = Partial<Record<string, Float32Array>>;

export const PALETTE: Record<'membrane' | 'structure' | 'dna', [number, number, number]> = {
  membrane: [1, 0, 1],
  structure: [0, 1, 0],
  dna: [0.25, 0.55, 1],
};
export const PALETTE_NAMES = 'membrane magenta, structure green, DNA blue';

/**
 * Several structures in one cell (the integrated cell) need more colours than one: the
 * Okabe–Ito set (distinguishable under the common colour-vision deficiencies), less its black
 * and its blue (the DNA's), in order.
 */
export const STRUCTURE_COLOURS: [number, number, number][] = [
  [0, 0.62, 0.45], // bluish green
  [0.9, 0.62, 0], // orange
  [0.94, 0.89, 0.26], // yellow
  [0.84, 0.37, 0], // vermillion
  [0.8, 0.47, 0.65], // reddish purple
  [0.34, 0.71, 0.91], // sky blue
];

/** Per-channel display gain: 1 / the `percentile` of each channel's values over `cells` (a contrast stretch, clipped above). */
export function contrastStretch(cells: Channels[], percentile = 99.5): Record<string, number> {
  const names = [...new Set(cells.flatMap((c) => Object.keys(c).filter((k) => c[k])))];
  return Object.fromEntries(
    names.map((name) => {
      const v = Float32Array.from(cells.flatMap((c) => (c[name] ? Array.from(c[name]!) : []))).sort();
      const p = v.length ? v[Math.min(v.length - 1, Math.floor((percentile / 100) * v.length))] : 0;
      const top = v.length ? v[v.length - 1] : 0; // a sparse channel's percentile can be background: then its maximum
      return [name, p > 0 ? 1 / p : top > 0 ? 1 / top : 1];
    }),
  );
}

