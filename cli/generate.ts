// `statcell generate`'s files: each generated cell as PNG (display order [membrane, structure,
// DNA]), OME-TIFF and/or OME-Zarr with its channels named and coloured and its pixel size stated.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { imageOf } from '../data/dataset.ts';
import { readImage, writeOmeZarr } from '../data/images.ts';
import { uniqueStems } from '../data/labels.ts';
import { pixelSizeOf, readManifest } from '../data/manifest.ts';
import { DEFAULT_PIXEL_SIZE, type PixelSize } from '../data/ome.ts';
import { fileChannels, omeTiffOf } from '../data/ome-tiff.ts';
import type { Generated, GeneratedCell } from '../session/generate.ts';
import { cellRgb, pngOf, scaleUp } from '../viz/images.ts';
import { writeAtomic, writeFolder } from '../data/files.ts';

/** --format values: one kind of file, 'both' (PNG + OME-TIFF, as before) or 'all' (PNG + OME-TIFF + OME-Zarr). */
export const GENERATE_FORMATS = ['png', 'ome-tiff', 'tiff', 'zarr', 'both', 'all'] as const;
export type FileKind = 'png' | 'ome-tiff' | 'zarr';

/** The kinds of file a --format value asks for. */
export function fileKinds(format: string): Set<FileKind> {
  const kinds: Record<string, FileKind[]> = { png: ['png'], 'ome-tiff': ['ome-tiff'], tiff: ['ome-tiff'], zarr: ['zarr'], 'ome-zarr': ['zarr'], both: ['png', 'ome-tiff'], all: ['png', 'ome-tiff', 'zarr'] };
  const k = kinds[format];
  if (!k) throw new Error(`--format ${format}: expected ${GENERATE_FORMATS.join(', ')}`);
  return new Set(k);
}

/**
 * The pixel size of generated cells: that of the manifest they came from (`--data`, else the run's
 * training manifest), or the stated default when the manifest gives none or is no longer there.
 */
export async function pixelSizeForRun(manifest: string | undefined, dims: 2 | 3): Promise<PixelSize> {
  if (!manifest) return DEFAULT_PIXEL_SIZE;
  if (!existsSync(manifest)) return { ...DEFAULT_PIXEL_SIZE, source: `${DEFAULT_PIXEL_SIZE.source} (the training manifest ${manifest} is not there to say)` };
  const rows = readManifest(manifest);
  const stated = pixelSizeOf(rows, manifest);
  if (stated !== DEFAULT_PIXEL_SIZE) return stated;
  // No PhysicalSize columns: the first cell's own file may say (OME-TIFF's OME-XML, OME-Zarr's scale).
  const file = rows.map((r) => imageOf(r, dims)).find((f) => f && existsSync(f));
  const own = file ? await readImage(file, { dims }).then((img) => img.pixelSize, () => undefined) : undefined;
  if (!own) return DEFAULT_PIXEL_SIZE;
  const source = `${own.source}, of ${file}: the manifest's first cell (the manifest has no PhysicalSize columns)`;
  // OME-XML may state X and Y only; a 3D file needs Z: the default's, said to be assumed.
  if (dims === 3 && own.z === undefined) return { ...own, z: DEFAULT_PIXEL_SIZE.z, source: `${source}; Z not stated there: ${DEFAULT_PIXEL_SIZE.z} µm assumed` };
  return { ...own, source };
}

/** `003-Golgi`: the cell's number, then its label's stem (one cell's structures share its number; stems made unique, as "Alpha (A)" and "Alpha [A]" share one). */
function stemsOf(out: string, cells: GeneratedCell[]): string[] {
  const labels = [...new Set(cells.map((c) => c.label ?? 'cell'))];
  const unique = uniqueStems(labels);
  const stems = new Map(labels.map((l, i) => [l, unique[i]]));
  return cells.map((c) => join(out, `${String(c.cell).padStart(3, '0')}-${stems.get(c.label ?? 'cell')}`));
}

/** A cell's PNG and OME-TIFF files, those of `kinds` asked for. */
function writeFlat(stem: string, size: number[], c: GeneratedCell, kinds: Set<FileKind>, pixelSize: PixelSize): string[] {
  const files: string[] = [];
  if (kinds.has('png')) {
    writeAtomic(`${stem}.png`, pngOf(scaleUp(cellRgb(size, c.channels), 2)));
    files.push(`${stem}.png`);
  }
  if (kinds.has('ome-tiff')) {
    writeAtomic(`${stem}.ome.tiff`, omeTiffOf(size, fileChannels(c.channels, c.label), pixelSize));
    files.push(`${stem}.ome.tiff`);
  }
  return files;
}

/** A file name generate writes: `003-Golgi.png`, `.ome.tiff`, `.ome.zarr`. */
const GENERATED = /^\d{3,}-.+\.(png|ome\.tiff|ome\.zarr)$/;

/**
 * Writes every generated cell in the kinds of file a --format value asks for; returns the paths
 * written. The folder is written whole (writeFolder): new, empty or an earlier generate's, which is
 * replaced (cells of an earlier, larger --n stayed beside the new ones, and an interrupted run left
 * a partial folder).
 */
export async function writeGeneratedFiles(g: Generated, out: string, format: string, pixelSize: PixelSize = DEFAULT_PIXEL_SIZE): Promise<string[]> {
  const kinds = fileKinds(format);
  if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).some((f) => !GENERATED.test(f))))
    throw new Error(`generate: ${out} holds other files than generated cells; give a new or empty folder (an earlier generate's is replaced)`);
  const written = await writeFolder(out, async (dir) => {
    const files: string[] = [];
    const stems = stemsOf(dir, g.cells);
    for (const [i, c] of g.cells.entries()) {
      const stem = stems[i];
      files.push(...writeFlat(stem, g.size, c, kinds, pixelSize));
      if (kinds.has('zarr')) {
        await writeOmeZarr(`${stem}.ome.zarr`, { size: g.size, channels: fileChannels(c.channels, c.label), pixelSize, name: c.label ?? 'cell' });
        files.push(`${stem}.ome.zarr`);
      }
    }
    return files.map((f) => basename(f));
  });
  return written.map((f) => join(out, f));
}
