// The deterministic train/validation/test split (statistical-cell.md §3.1): the first five
// decimal digits of sha512(seed + CellId), read as a fraction, pick the split.

import { createHash } from 'node:crypto';

export type Split = 'train' | 'validate' | 'test';

export function splitFraction(cellId: string | number, seed = 1): number {
  const hex = createHash('sha512').update(`${seed}${cellId}`, 'utf8').digest('hex');
  const digits = hex.replace(/[^0-9]/g, '').slice(0, 5);
  return Number.parseInt(digits.padEnd(5, '0'), 10) / 100000;
}

export function splitOf(cellId: string | number, seed = 1): Split {
  const r = splitFraction(cellId, seed);
  return r <= 0.1 ? 'test' : r <= 0.2 ? 'validate' : 'train';
}
