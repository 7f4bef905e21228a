// `statcell generate`: whole cells (z_r ~ N(0, I) → M_R decoder → x̂_r, then per label
// z_t ~ N(0, I) → M_T decoder conditioned on x̂_r) or structures in given real cells (M_T
// decoder with the real reference), statistical-cell.md §4 "Generation".

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Batch } from '../data/dataset.ts';
import { CLASSES } from '../data/labels.ts';
import { cellRgb, omeTiffOf, pngOf, scaleUp } from '../viz/images.ts';
import type { OpenedRun } from './run.ts';
import { modelSize } from './common.ts';

export interface Generated {
  size: number[];
  /** One per output: reference [2, ...size] and the structure [1, ...size] of its label. */
  cells: { ref: Float32Array; structure: Float32Array | null; label: string | null; source: string }[];
}

export function labelOneHot(labels: string[]): Float32Array {
  const out = new Float32Array(labels.length * CLASSES.length);
  labels.forEach((l, i) => {
    const k = CLASSES.indexOf(l as (typeof CLASSES)[number]);
    if (k < 0) throw new Error(`unknown label '${l}'; the 24 labels are: ${CLASSES.join(', ')}`);
    out[i * CLASSES.length + k] = 1;
  });
  return out;
}

const slice = (a: Float32Array, i: number, per: number) => a.slice(i * per, (i + 1) * per);

/**
 * n whole generated cells (reference from M_R) — or, with `real`, the real cells' references —
 * each with one structure per label from M_T (when given). `iteration` picks the noise draws.
 */
export async function generate(o: { reference?: OpenedRun; target?: OpenedRun; n: number; labels: string[]; real?: Batch; iteration?: number }): Promise<Generated> {
  const any = o.reference ?? o.target;
  if (!any) throw new Error('generate: give a reference model run (--reference), a target model run (--target), or both');
  const size = modelSize(any.model);
  const vox = size.reduce((a, b) => a * b, 1);
  let refs: Float32Array;
  let source: string;
  if (o.real) {
    refs = o.real.reference.slice(0, o.n * 2 * vox);
    source = 'real';
  } else {
    if (!o.reference) throw new Error('generate: whole cells need the reference model (--reference); for structures in real cells give --data');
    refs = Object.values(await o.reference.runtime.run('generate', {}, o.n, o.iteration ?? 0))[0];
    source = 'generated';
  }
  const cells: Generated['cells'] = [];
  const names = o.real ? o.real.rows.slice(0, o.n).map((r) => `cell ${r.cellId}`) : Array.from({ length: o.n }, (_, i) => `generated ${i}`);
  if (!o.target || !o.labels.length) {
    for (let i = 0; i < o.n; i++) cells.push({ ref: slice(refs, i, 2 * vox), structure: null, label: null, source: `${source} ${names[i]}` });
    return { size, cells };
  }
  for (const [j, label] of o.labels.entries()) {
    const cls = labelOneHot(Array(o.n).fill(label));
    const s = Object.values(await o.target.runtime.run('generate', { ref: refs, cls }, o.n, (o.iteration ?? 0) + 1 + j))[0];
    for (let i = 0; i < o.n; i++) cells.push({ ref: slice(refs, i, 2 * vox), structure: slice(s, i, vox), label, source: names[i] });
  }
  return { size, cells };
}

/** Writes each generated cell as PNG (display order [membrane, structure, DNA]) and/or OME-TIFF. */
export function writeGenerated(g: Generated, out: string, format: 'png' | 'ome-tiff' | 'both'): string[] {
  mkdirSync(out, { recursive: true });
  const files: string[] = [];
  const vox = g.size.reduce((a, b) => a * b, 1);
  g.cells.forEach((c, i) => {
    const stem = join(out, `${String(i).padStart(3, '0')}-${(c.label ?? 'cell').replace(/[^A-Za-z0-9]+/g, '_')}`);
    if (format !== 'ome-tiff') {
      writeFileSync(`${stem}.png`, pngOf(scaleUp(cellRgb(g.size, c.ref, c.structure), 2)));
      files.push(`${stem}.png`);
    }
    if (format !== 'png') {
      const chans = [
        { name: 'membrane', data: c.ref.subarray(0, vox) },
        ...(c.structure ? [{ name: c.label ?? 'structure', data: c.structure }] : []),
        { name: 'DNA', data: c.ref.subarray(vox, 2 * vox) },
      ];
      writeFileSync(`${stem}.ome.tiff`, omeTiffOf(g.size, chans));
      files.push(`${stem}.ome.tiff`);
    }
  });
  return files;
}
