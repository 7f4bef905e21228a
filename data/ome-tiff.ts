// The OME-TIFF of one cell (browser-safe: bytes in memory, so the explorer page writes the same
// files as `statcell generate` and the latent walk): float32 planes, channel-major then Z
// (DimensionOrder XYZCT), channel names and colours, and the physical pixel sizes (with their
// source) in the OME-XML. Also the one channel naming and order of every cell file statcell writes.

import { DEFAULT_PIXEL_SIZE, omeXml, type NamedChannel, type PixelSize } from './ome.ts';
import { PALETTE } from './palette.ts';
import { encodeTiff } from './tiff.ts';

/** The paper's channel order for files; other channel names follow in their own order. */
const ORDER = ['membrane', 'structure', 'dna'];

/** A cell's channels for a multi-channel file: the paper's order, the structure named by its label, the palette's colours. */
export function fileChannels(channels: Record<string, Float32Array | undefined>, label: string | null, rename: (name: string) => string = (n) => n): NamedChannel[] {
  const names = Object.keys(channels).filter((n) => channels[n]).sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  return names.map((name) => ({
    name: rename(name === 'structure' && label ? label : name === 'dna' ? 'DNA' : name),
    data: channels[name]!,
    color: PALETTE[name as keyof typeof PALETTE],
  }));
}

/** The OME-TIFF bytes of one cell of spatial size [Y, X] or [Y, X, Z], its channels [...size] each (Z fastest). */
export function omeTiffOf(size: number[], channels: NamedChannel[], pixelSize: PixelSize = DEFAULT_PIXEL_SIZE, name?: string): Uint8Array {
  const [Y, X] = size;
  const Z = size[2] ?? 1;
  const n = Y * X * Z;
  for (const c of channels) if (c.data.length !== n) throw new Error(`OME-TIFF: channel '${c.name}' has ${c.data.length} values, the size ${size.join('×')} has ${n}`);
  const pages: Float32Array[] = [];
  for (const ch of channels)
    for (let z = 0; z < Z; z++) {
      const plane = new Float32Array(Y * X);
      for (let i = 0; i < Y * X; i++) plane[i] = ch.data[i * Z + z];
      pages.push(plane);
    }
  return encodeTiff({ width: X, height: Y, pages, description: omeXml({ size, channels, type: 'float', pixelSize, name }) });
}
