// Metrics as JSON lines: one object per training step ({kind: 'step', iteration, ...}) and per
// validation ({kind: 'validate', ...}). Appended with a flush per line, so a killed run keeps
// everything up to its last step; a resumed run first drops the lines past its checkpoint so the
// file reads as one uninterrupted run.

import { appendFileSync, existsSync } from 'node:fs';
import { MiB, readBoundedSync, writeAtomic } from '../data/files.ts';

/** Largest metrics file read: ~200 bytes a step, so about 2.5 million steps (the paper's 3D run is ~10^5). */
export const MAX_METRICS_BYTES = 512 * MiB;

export interface MetricRecord {
  kind: 'step' | 'validate' | 'event';
  iteration: number;
  [key: string]: unknown;
}

export class MetricsLog {
  constructor(readonly file: string) {}

  append(rec: MetricRecord): void {
    appendFileSync(this.file, JSON.stringify(rec) + '\n');
  }

  /** Keeps the records of iterations before `iteration` (steps) or at most `iteration` (validations). */
  truncateTo(iteration: number): void {
    if (!existsSync(this.file)) return;
    const keep = readMetrics(this.file).filter((r) => (r.kind === 'step' ? r.iteration < iteration : r.iteration <= iteration));
    writeAtomic(this.file, keep.map((r) => JSON.stringify(r) + '\n').join(''));
  }
}

/** Reads a metrics file, ignoring a torn last line (a kill mid-write); a regular file within MAX_METRICS_BYTES (a FIFO blocked --resume and report). */
export function readMetrics(file: string): MetricRecord[] {
  // A run in progress appends to it: read to its size.
  const text = readBoundedSync(file, MAX_METRICS_BYTES, { growing: true, fail: (why) => new Error(`${file}: cannot read the run's metrics (${why})`) }).toString('utf8');
  const out: MetricRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      /* torn line */
    }
  }
  return out;
}
