// The tiny linear VAE of the trainer, checkpoint and CLI tests: test/models/tiny.vae, compiled
// like any user model.
import { fileURLToPath } from 'node:url';
import { compileModelFile } from '../../compiler/index.ts';
import type { Batch } from '../../data/dataset.ts';
import { CLASSES } from '../../data/labels.ts';
import type { CellSource } from '../../session/evaluate.ts';
import { rng } from '../rng.ts';

export const TINY_FILE = fileURLToPath(new URL('../models/tiny.vae', import.meta.url));

export const tinyModel = (overrides: Record<string, unknown> = {}) => compileModelFile(TINY_FILE, { overrides });

/** Overrides of the tiny target model: the structure, given the reference and the label. */
export const TINY_TARGET = { conditioned: true, image_channels: ['structure'] };

/** The image size of the trainer tests' in-memory cells. */
export const TINY_SIZE = [6, 4];
const VOX = TINY_SIZE[0] * TINY_SIZE[1];

/** In-memory cells: smooth random images in [0, 1], labels cycling; `poison` puts a NaN into one cell. */
export function memorySource(n: number, seed: number, poison?: number): CellSource {
  const r = rng(seed);
  const cells = Array.from({ length: n }, (_, i) => ({
    reference: Float32Array.from({ length: 2 * VOX }, () => r()),
    structure: Float32Array.from({ length: VOX }, (_, j) => (i === poison && j === 0 ? NaN : r())),
    label: i % CLASSES.length,
  }));
  return {
    length: n,
    async batch(idx: number[]): Promise<Batch> {
      const b: Batch = { reference: new Float32Array(idx.length * 2 * VOX), structure: new Float32Array(idx.length * VOX), onehot: new Float32Array(idx.length * CLASSES.length), classes: CLASSES, rows: [] };
      idx.forEach((i, k) => {
        b.reference.set(cells[i].reference, k * 2 * VOX);
        b.structure.set(cells[i].structure, k * VOX);
        b.onehot[k * CLASSES.length + cells[i].label] = 1;
        b.rows.push({ line: i + 2, cellId: String(1000 + i), structure: CLASSES[cells[i].label], split: 'train', columns: {} });
      });
      return b;
    },
  };
}
