// Cells as RGBA pixels for the page's canvases: an additive composite of named channels, each in
// its colour and display gain (the contrast stretch of the site's real cells), clipped to [0, 1];
// 3D cells as their maximum projection over Z. Pure (no DOM), so it is testable anywhere.

import { PALETTE, STRUCTURE_COLOURS } from '../data/palette.ts';
import type { CellChannels } from '../session/feeds.ts';

export type Colour = [number, number, number];

export interface Layer {
  data: Float32Array;
  colour: Colour;
  gain: number;
}

/** RGBA bytes of a composite of `layers` at [Y, X] or [Y, X, Z]. */
export function composite(size: number[], layers: Layer[]): Uint8ClampedArray {
  const [Y, X] = size;
  const Z = size[2] ?? 1;
  const acc = new Float32Array(Y * X * 3);
  for (const { data, colour, gain } of layers)
    for (let i = 0; i < Y * X; i++) {
      let m = 0;
      for (let z = 0; z < Z; z++) m = Math.max(m, data[i * Z + z]);
      const v = Math.min(1, Math.max(0, m * gain));
      for (let c = 0; c < 3; c++) acc[i * 3 + c] += v * colour[c];
    }
  const out = new Uint8ClampedArray(Y * X * 4);
  for (let i = 0; i < Y * X; i++) {
    for (let c = 0; c < 3; c++) out[i * 4 + c] = Math.round(255 * Math.min(1, acc[i * 3 + c]));
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** A cell's membrane, structure and DNA (those present) in the palette's colours. */
export function cellLayers(ch: CellChannels, gain: Record<string, number>): Layer[] {
  return (['membrane', 'structure', 'dna'] as const).filter((k) => ch[k]).map((k) => ({ data: ch[k]!, colour: PALETTE[k], gain: gain[k] ?? 1 }));
}

/** The integrated cell: membrane, then each structure in its own colour, then DNA (the paper's order), those shown. */
export function integratedLayers(base: CellChannels, structures: [string, Float32Array][], shown: Set<string>, gain: Record<string, number>): Layer[] {
  const layers: Layer[] = [];
  if (base.membrane && shown.has('membrane')) layers.push({ data: base.membrane, colour: PALETTE.membrane, gain: gain.membrane ?? 1 });
  structures.forEach(([name, data], k) => {
    if (shown.has(name)) layers.push({ data, colour: STRUCTURE_COLOURS[k % STRUCTURE_COLOURS.length], gain: gain.structure ?? 1 });
  });
  if (base.dna && shown.has('dna')) layers.push({ data: base.dna, colour: PALETTE.dna, gain: gain.dna ?? 1 });
  return layers;
}

/** The Okabe–Ito set (with white for its black on the dark plot): distinguishable under the common colour-vision deficiencies. */
const OKABE_ITO = ['#e69f00', '#56b4e9', '#009e73', '#f0e442', '#0072b2', '#d55e00', '#cc79a7', '#ffffff'];

/**
 * Scatter colours for n labels, all distinct: Okabe–Ito up to eight; past that (the Allen data have
 * 24 structures and 3 controls) hues evenly around the wheel, neighbours alternating in lightness.
 */
export function labelColours(n: number): string[] {
  if (n <= OKABE_ITO.length) return OKABE_ITO.slice(0, n);
  return Array.from({ length: n }, (_, k) => `hsl(${Math.round((k * 360) / n)}, 80%, ${k % 2 ? 72 : 52}%)`);
}
