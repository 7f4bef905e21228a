// The page's file downloads of generated cells: one OME-TIFF per cell (data/ome-tiff.ts, the
// writer `statcell generate` uses), float32 values as the models output them, the channels named
// and coloured in the paper's order and the data's physical pixel size with its source, so Vol-E,
// Fiji/Bio-Formats and this explorer open them. Offered as links (keyboard reachable, one file each).

import { DEFAULT_PIXEL_SIZE, type PixelSize } from '../data/ome.ts';
import { fileChannels, omeTiffOf } from '../data/ome-tiff.ts';
import type { CellChannels } from '../session/feeds.ts';

export interface GeneratedFileCell {
  channels: CellChannels;
  /** The structure generated in it, if any (names its channel). */
  label: string | null;
}

let urls: string[] = [];

/** Replaces the links in `box` by one OME-TIFF link per cell, named `<stem>-cell<k>.ome.tiff`. */
export function offerOmeTiffs(box: HTMLElement, size: number[], cells: GeneratedFileCell[], stem: string, pixelSize: PixelSize = DEFAULT_PIXEL_SIZE): void {
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
  box.textContent = '';
  cells.forEach((c, k) => {
    const bytes = omeTiffOf(size, fileChannels(c.channels, c.label), pixelSize, `${stem} cell ${k + 1}`);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/tiff' }));
    urls.push(a.href);
    a.download = `${stem}-cell${k + 1}.ome.tiff`;
    a.textContent = `cell ${k + 1} OME-TIFF`;
    a.className = 'ome-tiff';
    box.append(a, ' ');
  });
}
