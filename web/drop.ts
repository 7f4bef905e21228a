// What the page reads when a cell is dropped or chosen: a PNG (8/16-bit), a TIFF or OME-TIFF
// (uint8, uint16, float32), or an OME-Zarr 0.4 folder — the formats the manifest's readers take,
// read by the same code (data/decode.ts decodeImage, data/ome-zarr.ts decodeOmeZarr, data/preprocess.ts) and
// preprocessed as in training: the site's intensity scale (the manifest's intensity_scale, else the
// type's maximum), its TIFF channel indices, and centre-crop / zero-pad to the model's size.
// A folder arrives as directory entries (a drop: DataTransferItem.webkitGetAsEntry) or as the
// files of a folder picker (<input webkitdirectory>: each File's webkitRelativePath).

import { decodeImage, ImageError, imageDims, MAX_IMAGE_FILE_BYTES, sniff, type Image } from '../data/decode.ts';
import { decodeOmeZarr, type ZarrSource } from '../data/ome-zarr.ts';
import { channelsHint, orderedChannels, preprocessCell, TYPE_MAX } from '../data/preprocess.ts';
import type { CellChannels } from '../session/feeds.ts';
import type { SiteIndex } from './site.ts';

/** A dropped file, or a dropped folder's files by their path inside it ("0/.zarray"). */
export type Dropped = { kind: 'file'; name: string; file: Blob } | { kind: 'folder'; name: string; files: Map<string, Blob> };

/** Most files one dropped folder may hold (an OME-Zarr cell has a few dozen; data/ome-zarr.ts bounds its chunks too). */
const MAX_FOLDER_FILES = 70_000;

/** Every file under a directory entry, by its path relative to that entry. */
async function readTree(dir: FileSystemDirectoryEntry): Promise<Map<string, Blob>> {
  const files = new Map<string, Blob>();
  const walk = async (d: FileSystemDirectoryEntry, prefix: string): Promise<void> => {
    const reader = d.createReader();
    // readEntries answers in batches (Chromium: 100 at a time) until it answers an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((ok, err) => reader.readEntries(ok, err));
      if (!batch.length) return;
      for (const e of batch) {
        if (files.size >= MAX_FOLDER_FILES) throw new ImageError(dir.name, `holds more than ${MAX_FOLDER_FILES} files: not a cell image`);
        const path = prefix + e.name;
        if (e.isDirectory) await walk(e as FileSystemDirectoryEntry, `${path}/`);
        else files.set(path, await new Promise<File>((ok, err) => (e as FileSystemFileEntry).file(ok, err)));
      }
    }
  };
  await walk(dir, '');
  return files;
}

/** What a drop holds: its first item, a folder (read whole) or a file; undefined when it holds neither. */
export async function fromDataTransfer(dt: DataTransfer): Promise<Dropped | undefined> {
  // Entries must be taken during the drop event, before any await.
  const entry = dt.items?.length ? dt.items[0].webkitGetAsEntry?.() : null;
  const file = dt.files[0];
  if (entry?.isDirectory) return { kind: 'folder', name: entry.name, files: await readTree(entry as FileSystemDirectoryEntry) };
  return file ? { kind: 'file', name: file.name, file } : undefined;
}

/** What a folder picker (<input type=file webkitdirectory>) gave: the files of one folder, by their path inside it. */
export function fromFolderPicker(list: FileList): Dropped | undefined {
  const all = Array.from(list);
  if (!all.length) return undefined;
  const name = all[0].webkitRelativePath.split('/')[0] || 'folder';
  return { kind: 'folder', name, files: new Map(all.map((f) => [f.webkitRelativePath.split('/').slice(1).join('/') || f.name, f])) };
}

/** A dropped folder's files as the bytes data/ome-zarr.ts reads (each within its bound, or refused naming the file). */
function folderSource(d: Extract<Dropped, { kind: 'folder' }>): ZarrSource {
  return {
    async get(key, maxBytes) {
      const f = d.files.get(key);
      if (!f) return undefined;
      if (f.size > maxBytes) throw new ImageError(`${d.name}/${key}`, `${f.size} bytes, more than the ${maxBytes} allowed for this file`);
      return new Uint8Array(await f.arrayBuffer());
    },
  };
}

export interface ReadCell {
  cell: CellChannels;
  image: Image;
  /** What was read, in words (for the page's status line). */
  what: string;
}

/**
 * Reads a dropped file or folder as the model's input, as training read the site's cells. A
 * 3-channel image is membrane, structure, DNA (the 2D PNGs' RGB, and what statcell writes); any
 * other is read by the site's TIFF channel indices (the training manifest's ch_* columns).
 */
export async function readDropped(d: Dropped, site: Pick<SiteIndex, 'size' | 'tiffChannels' | 'intensityScale'>): Promise<ReadCell> {
  const size = site.size;
  const dims = imageDims(size);
  const bounds = { size, fit: 'crop-pad' as const };
  let image: Image;
  let kind: string;
  if (d.kind === 'folder') {
    if (!d.files.has('.zattrs') && !d.files.has('zarr.json'))
      throw new ImageError(d.name, 'a folder without .zattrs: not an OME-Zarr image (drop the image\'s own folder, e.g. cell.ome.zarr, or a PNG or TIFF file)');
    image = await decodeOmeZarr(d.name, folderSource(d), { dims, bounds });
    kind = 'OME-Zarr';
  } else {
    if (d.file.size > MAX_IMAGE_FILE_BYTES) throw new ImageError(d.name, `${d.file.size} bytes, more than the ${MAX_IMAGE_FILE_BYTES} allowed`);
    const bytes = await d.file.arrayBuffer();
    image = await decodeImage(d.name, bytes, { dims, channelsHint: channelsHint(site.tiffChannels), bounds });
    kind = sniff(new Uint8Array(bytes, 0, Math.min(8, bytes.byteLength))) === 'png' ? 'PNG' : image.channelNames || image.pixelSize ? 'OME-TIFF' : 'TIFF';
  }
  const t = preprocessCell(image, image.channels === 3 ? undefined : site.tiffChannels, { size, fit: 'crop-pad', intensityScale: site.intensityScale }, d.name);
  const n = size.reduce((a, b) => a * b, 1);
  const scale = site.intensityScale !== undefined ? `÷ ${site.intensityScale} (the manifest's intensity_scale)` : `÷ ${TYPE_MAX[image.dtype ?? 'uint8']} (the ${image.dtype ?? 'uint8'} maximum)`;
  return {
    cell: { membrane: t.reference.subarray(0, n), dna: t.reference.subarray(n, 2 * n), structure: t.structure },
    image,
    what: `${kind}, ${image.channels} ${image.dtype ?? 'uint8'} channel(s)${image.channelNames ? ` (${image.channelNames.join(', ')})` : ''}${image.channels === 3 ? `, ${roles(image.channelNames)}` : ''}, ${scale}`,
  };
}

/** Which channel was read as what, and why: the drop's line tells a user whose file is ordered otherwise. */
function roles(names: string[] | undefined): string {
  const o = orderedChannels(names);
  return `read as membrane ${o.memb + 1}, structure ${o.struct + 1}, DNA ${o.dna + 1} (${o.byName ? 'by the channel names' : 'in that order'})`;
}
