// What the OME formats (OME-TIFF, OME-Zarr) say about an image besides its pixels: physical pixel
// sizes with where they came from, channel names and colours; the OME-XML written into an
// OME-TIFF and read back from one (browser-safe: strings only).

import { escapeXml } from './markup.ts';

/** Physical size of a pixel, in micrometres, and where that figure came from (written into every file). */
export interface PixelSize {
  x: number;
  y: number;
  /** 3D only. */
  z?: number;
  /** Where the sizes came from: a manifest's columns, a file's metadata, or the stated default. */
  source: string;
}

/**
 * Used when nothing states the data's pixel size. statistical-cell.md gives none; this is the Allen
 * Cell Collection's acquisition spacing (100× spinning disk: 0.108333 µm in X/Y, 0.29 µm between
 * Z slices), an assumption for data that are not known to be resampled — files written with it say so.
 */
export const DEFAULT_PIXEL_SIZE: PixelSize = {
  x: 0.108333,
  y: 0.108333,
  z: 0.29,
  source: "default, assumed (not read from the data): the Allen Cell Collection's acquisition spacing, 0.108333 µm in X/Y and 0.29 µm in Z; give the manifest PhysicalSizeX/Y/Z columns (µm) to state the data's own",
};

/** The manifest columns that state the pixel size, in micrometres (named after the OME-XML attributes). */
export const PIXEL_SIZE_COLUMNS = ['PhysicalSizeX', 'PhysicalSizeY', 'PhysicalSizeZ'] as const;

/** A channel to write: its name, its values ([...size], Z fastest as everywhere in statcell), an optional display colour. */
export interface NamedChannel {
  name: string;
  data: Float32Array;
  /** RGB in [0, 1]. */
  color?: [number, number, number];
}

/** 'FF00FF' from [1, 0, 1] (OME-Zarr omero colours). */
export const hexColor = (c: [number, number, number]): string => c.map((v) => Math.round(255 * Math.min(1, Math.max(0, v))).toString(16).padStart(2, '0')).join('').toUpperCase();

/** OME-XML's signed 32-bit RGBA colour from [r, g, b] (alpha 255). */
const omeColor = (c: [number, number, number]): number => {
  const [r, g, b] = c.map((v) => Math.round(255 * Math.min(1, Math.max(0, v))));
  return ((r << 24) | (g << 16) | (b << 8) | 255) >> 0;
};

const unescapeXml = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

export type OmeType = 'uint8' | 'uint16' | 'float';

/**
 * The OME-XML of one image (OME 2016-06): pages channel-major then Z (DimensionOrder XYZCT, so
 * IFD = c·Z + z), channel names and colours, physical sizes in µm, and the sizes' source in the
 * image's Description.
 */
export function omeXml(o: { size: number[]; channels: { name: string; color?: [number, number, number] }[]; type: OmeType; pixelSize: PixelSize; name?: string }): string {
  const [Y, X] = o.size;
  const Z = o.size[2] ?? 1;
  const ps = o.pixelSize;
  const phys =
    `PhysicalSizeX="${ps.x}" PhysicalSizeXUnit="µm" PhysicalSizeY="${ps.y}" PhysicalSizeYUnit="µm"` + (o.size.length === 3 && ps.z !== undefined ? ` PhysicalSizeZ="${ps.z}" PhysicalSizeZUnit="µm"` : '');
  const chXml = o.channels.map((c, i) => `<Channel ID="Channel:0:${i}" Name="${escapeXml(c.name)}" SamplesPerPixel="1"${c.color ? ` Color="${omeColor(c.color)}"` : ''}/>`).join('');
  const tiffData = o.channels.flatMap((_, c) => Array.from({ length: Z }, (_, z) => `<TiffData FirstC="${c}" FirstZ="${z}" FirstT="0" IFD="${c * Z + z}" PlaneCount="1"/>`)).join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="${escapeXml(o.name ?? 'statcell')}">` +
    `<Description>${escapeXml(`statcell; pixel size: ${ps.source}`)}</Description>` +
    `<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="${o.type}" SizeX="${X}" SizeY="${Y}" SizeZ="${Z}" SizeC="${o.channels.length}" SizeT="1" ${phys}>${chXml}${tiffData}</Pixels></Image></OME>`
  );
}

/** What an OME-XML says of its first image (attributes only; enough to lay out its pages). */
export interface OmeInfo {
  dimensionOrder: string;
  sizeX: number;
  sizeY: number;
  sizeZ: number;
  sizeC: number;
  sizeT: number;
  type?: string;
  channels: string[];
  pixelSize?: PixelSize;
}

const attrs = (tag: string): Record<string, string> => Object.fromEntries([...tag.matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*"([^"]*)"/g)].map((m) => [m[1], unescapeXml(m[2])]));

/** Micrometres per unit of the OME length units a cell image uses. */
const TO_UM: Record<string, number> = { µm: 1, 'μm': 1, um: 1, nm: 1e-3, mm: 1e3, Å: 1e-4 };

/** Parses the OME-XML of an OME-TIFF's first ImageDescription; undefined when it is not OME-XML. Throws on an OME-XML without a usable Pixels element. */
export function parseOmeXml(desc: string | undefined): OmeInfo | undefined {
  if (!desc || !/<OME[\s>]/.test(desc)) return undefined;
  const pixTag = desc.match(/<(?:\w+:)?Pixels\b[^>]*>/)?.[0];
  if (!pixTag) throw new Error('OME-XML without a Pixels element');
  const a = attrs(pixTag);
  const int = (k: string, dflt?: number) => {
    const v = a[k] === undefined ? dflt : Number(a[k]);
    if (v === undefined || !Number.isSafeInteger(v) || v < 1) throw new Error(`OME-XML Pixels ${k}="${a[k] ?? ''}" is not a positive whole number`);
    return v;
  };
  const order = a.DimensionOrder ?? 'XYZCT';
  if (!/^XY[ZCT]{3}$/.test(order) || new Set(order).size !== 5) throw new Error(`OME-XML Pixels DimensionOrder="${order}" is not one of XYZCT, XYCZT, …`);
  const channels = [...desc.matchAll(/<(?:\w+:)?Channel\b[^>]*>/g)].map((m, i) => attrs(m[0]).Name ?? `channel ${i}`);
  let pixelSize: PixelSize | undefined;
  const len = (k: string) => {
    if (a[k] === undefined) return undefined;
    const unit = a[`${k}Unit`] ?? 'µm';
    const f = TO_UM[unit];
    const v = Number(a[k]);
    if (f === undefined || !(v > 0) || !Number.isFinite(v)) throw new Error(`OME-XML Pixels ${k}="${a[k]}" ${k}Unit="${unit}": expected a positive length in µm, nm or mm`);
    return v * f;
  };
  const x = len('PhysicalSizeX');
  const y = len('PhysicalSizeY');
  if (x !== undefined && y !== undefined) pixelSize = { x, y, z: len('PhysicalSizeZ'), source: 'the OME-XML of the file' };
  return { dimensionOrder: order, sizeX: int('SizeX'), sizeY: int('SizeY'), sizeZ: int('SizeZ', 1), sizeC: int('SizeC', 1), sizeT: int('SizeT', 1), type: a.Type, channels, pixelSize };
}

/** The IFD holding plane (c, z) of time point 0, from the DimensionOrder (the letters after XY run fastest to slowest). */
export function omePlaneIndex(info: OmeInfo, c: number, z: number): number {
  const sizes: Record<string, number> = { Z: info.sizeZ, C: info.sizeC, T: info.sizeT };
  const at: Record<string, number> = { Z: z, C: c, T: 0 };
  let idx = 0;
  let stride = 1;
  for (const d of info.dimensionOrder.slice(2)) {
    idx += at[d] * stride;
    stride *= sizes[d];
  }
  return idx;
}
