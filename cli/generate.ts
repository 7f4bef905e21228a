// `statcell generate`'s files: each generated cell as PNG (display order [membrane, structure,
// DNA]) and/or OME-TIFF with its channels named.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Generated } from '../session/generate.ts';
import { cellRgb, omeTiffOf, pngOf, scaleUp } from '../viz/images.ts';

/** The paper's channel order for files; other channel names follow in their own order. */
const ORDER = ['membrane', 'structure', 'dna'];

export function writeGenerated(g: Generated, out: string, format: 'png' | 'ome-tiff' | 'both'): string[] {
  mkdirSync(out, { recursive: true });
  const files: string[] = [];
  g.cells.forEach((c, i) => {
    const stem = join(out, `${String(i).padStart(3, '0')}-${(c.label ?? 'cell').replace(/[^A-Za-z0-9]+/g, '_')}`);
    if (format !== 'ome-tiff') {
      writeFileSync(`${stem}.png`, pngOf(scaleUp(cellRgb(g.size, c.channels), 2)));
      files.push(`${stem}.png`);
    }
    if (format !== 'png') {
      const names = Object.keys(c.channels).sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
      const chans = names.map((name) => ({ name: name === 'structure' && c.label ? c.label : name === 'dna' ? 'DNA' : name, data: c.channels[name]! }));
      writeFileSync(`${stem}.ome.tiff`, omeTiffOf(g.size, chans));
      files.push(`${stem}.ome.tiff`);
    }
  });
  return files;
}
