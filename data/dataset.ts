// A data set of cells for training and evaluation: manifest rows of one split, loaded lazily
// from disk, preprocessed into the model's tensors, with batches prefetched in the background.
// Memory stays bounded: decoded cells are cached only up to `cacheBytes`.

import { statSync } from 'node:fs';
import { readImage, readImageHeader } from './images.ts';
import { labelsOf } from './labels.ts';
import { namesList, type CellRow } from './manifest.ts';
import { channelsHint, checkChannels, preprocessCell, type CellTensors, type PreprocessOptions } from './preprocess.ts';
import type { Split } from './split.ts';

export interface Cell extends CellTensors {
  row: CellRow;
  /** Index of the cell's label in the data set's label vocabulary. */
  label: number;
}

export interface Batch {
  /** [B, 2, ...size] membrane, DNA. */
  reference: Float32Array;
  /** [B, 1, ...size]. */
  structure: Float32Array;
  /** [B, classes] one-hot over `classes`. */
  onehot: Float32Array;
  /** The label vocabulary the one-hot rows index. */
  classes: readonly string[];
  rows: CellRow[];
}

export interface DatasetOptions extends PreprocessOptions {
  /** Which image of a row to read: the 2D PNG or the 3D TIFF. */
  dims: 2 | 3;
  split?: Split;
  /** Log and skip unreadable rows instead of stopping. */
  skipBad?: boolean;
  /** Upper bound on cached decoded cells, in bytes (default 1 GiB). */
  cacheBytes?: number;
  /** Where skipped rows are reported. */
  log?: (line: string) => void;
  manifestFile?: string;
  /** The label vocabulary (a trained run's); default: labelsOf(every row's label). */
  labels?: readonly string[];
  /** Time allowed for checking every image's header (checkImages) before the rest is left to the reads; default HEADER_CHECK_MS. */
  headerCheckMs?: number;
}

/** The up-front header check's time bound: ~40 000 PNG headers take a few seconds, 3D TIFFs (an IFD a page) longer. */
export const HEADER_CHECK_MS = 300_000;

export class DataError extends Error {
  constructor(readonly row: CellRow, readonly file: string | undefined, message: string, manifestFile = 'manifest') {
    super(`${manifestFile}:${row.line} (CellId ${row.cellId}): ${message}`);
    this.name = 'DataError';
  }
}

/**
 * Refuses a cell with a NaN or an infinity in what the model would see: one such value makes the
 * loss NaN at some later step, far from its cause (float TIFFs can hold them; PNGs cannot).
 */
function checkFinite(t: { reference: Float32Array; structure: Float32Array }, file: string): void {
  const channels: [string, Float32Array][] = [['membrane', t.reference.subarray(0, t.reference.length / 2)], ['DNA', t.reference.subarray(t.reference.length / 2)], ['structure', t.structure]];
  for (const [name, v] of channels) {
    let bad = 0, first = -1;
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) { bad++; if (first < 0) first = i; }
    if (bad) throw new Error(`${file}: ${bad} value(s) in the ${name} channel are not finite (NaN or ±Inf), the first at voxel ${first} of ${v.length}`);
  }
}

/** Why an image path cannot be reached, or undefined: a loop of symbolic links or a folder without access is said as such (both read as "no such file"). */
function unreachable(path: string): string | undefined {
  try {
    statSync(path);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return `${path}: ${code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file or folder' : code === 'ELOOP' ? 'a loop of symbolic links' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`;
  }
}

/** The image a row gives a model of `dims` dimensions. */
export const imageOf = (row: CellRow, dims: 2 | 3): string | undefined => (dims === 3 ? row.tiff3d : row.png2d);

/** Cells a batch reads at once. */
export const CONCURRENT_READS = 64;

/** How a manifest's cells fell into the splits, and how to choose them (the empty-split error). */
function splitCounts(rows: CellRow[]): string {
  const cells = rows.filter((r) => !r.columns.drug_label);
  const n = (s: string) => cells.filter((r) => r.split === s).length;
  const rule = 'split' in (rows[0]?.columns ?? {}) ? 'its split column' : 'a hash of each CellId (80% train, 10% validate, 10% test; docs/formats.md)';
  return `of its ${cells.length} cells, ${rule} put ${n('train')} in train, ${n('validate')} in validate and ${n('test')} in test; add cells, or give the manifest a split column (train, validate, test)`;
}

export class CellDataset {
  readonly rows: CellRow[];
  readonly classes: readonly string[];
  private cache = new Map<number, Cell>();
  private cachedBytes = 0;
  private bad = new Set<number>();
  readonly voxels: number;

  constructor(rows: CellRow[], readonly opts: DatasetOptions) {
    this.classes = opts.labels ?? labelsOf(rows.map((r) => r.structure));
    // Drug-treated cells (a non-empty drug_label, statistical-cell.md §3.3) are evaluation-only:
    // no split holds them, so training, validation and test never see them.
    this.rows = opts.split ? rows.filter((r) => r.split === opts.split && !r.columns.drug_label) : rows;
    this.voxels = opts.size.reduce((a, b) => a * b, 1);
    const known = new Set<string>(this.classes);
    for (const r of this.rows)
      if (!known.has(r.structure)) {
        const err = new DataError(r, undefined, `unknown structure label '${r.structure}' (the model was trained on ${this.classes.length}: ${namesList(this.classes)})`, opts.manifestFile);
        if (!opts.skipBad) throw err;
        opts.log?.(`skipping: ${err.message}`);
      }
    if (opts.skipBad) this.rows = this.rows.filter((r) => known.has(r.structure));
    this.rows = this.withImages(this.rows);
    if (!this.rows.length) {
      const skipped = opts.skipBad && rows.some((r) => !opts.split || r.split === opts.split);
      throw new Error(`${opts.manifestFile ?? 'manifest'}: no usable rows${opts.split ? ` in the ${opts.split} split` : ''}${skipped ? ': every one was skipped (--skip-bad); the lines above say why' : opts.split ? `: ${splitCounts(rows)}` : ''}`);
    }
  }

  /**
   * The rows whose image exists, checked before any is read (a missing file in the validation
   * split stopped training after its first epoch): a row without one is an error, or with
   * skipBad skipped; a manifest without the image column at all is an error at its header.
   */
  private withImages(rows: CellRow[]): CellRow[] {
    const { dims, manifestFile = 'manifest' } = this.opts;
    const column = dims === 3 ? 'save_reg_path' : 'save_reg_path_flat';
    if (rows.length && !(column in rows[0].columns))
      throw new Error(`${manifestFile}:1: no ${column} column: a ${dims}D model reads each cell's ${dims === 3 ? 'Z-stack (TIFF, OME-TIFF or OME-Zarr)' : 'image (PNG, TIFF, OME-TIFF or OME-Zarr)'} from it (columns: ${namesList(Object.keys(rows[0].columns))})`);
    const reasons = new Map(rows.map((r) => [r, imageOf(r, dims) ? unreachable(imageOf(r, dims)!) : `no ${column} (${dims === 3 ? '3D TIFF' : '2D PNG'}) in this row`]));
    const missing = rows.filter((r) => reasons.get(r));
    if (!missing.length) return rows;
    const why = (r: CellRow) => new DataError(r, imageOf(r, dims), reasons.get(r)!, manifestFile).message;
    const within = this.opts.split ? ` of the ${this.opts.split} split` : '';
    if (!this.opts.skipBad) throw new Error(`${why(missing[0])}${missing.length > 1 ? ` (and ${missing.length - 1} more row(s)${within} without their image)` : ''}; fix the paths, or skip such rows with --skip-bad`);
    for (const r of missing.slice(0, 20)) this.opts.log?.(`skipping: ${why(r)}`);
    if (missing.length > 20) this.opts.log?.(`skipping ${missing.length - 20} more row(s)${within} without their image`);
    const gone = new Set(missing);
    return rows.filter((r) => !gone.has(r));
  }

  private checking?: Promise<void>;

  /**
   * Checks every row's image from its header alone (readImageHeader: the size against the model's,
   * the channels, the pages; no pixel decoded), and each of the row's ch_* indices against the
   * image's channel count, before the first cell is read: a bad row would otherwise stop a run
   * when first read, hours in. Training calls it (cli/train.ts) on its train and validation splits
   * before step 0; the commands that read a split once (eval, embed, report …) do not, as each
   * read makes the same checks of its file. Runs once, CONCURRENT_READS files at a time, within `headerCheckMs` (the rows left are checked as read).
   * A bad row is an error naming the manifest, the row and the reason (with the count of the
   * others), or with skipBad logged and left out of every batch.
   */
  checkImages(): Promise<void> {
    this.checking ??= this.checkAll();
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    const { dims, manifestFile = 'manifest' } = this.opts;
    const deadline = Date.now() + (this.opts.headerCheckMs ?? HEADER_CHECK_MS);
    const bad: [number, DataError][] = [];
    let checked = 0;
    for (let s = 0; s < this.rows.length && Date.now() < deadline; s += CONCURRENT_READS) {
      const part = this.rows.slice(s, s + CONCURRENT_READS);
      await Promise.all(part.map(async (row, k) => {
        const file = imageOf(row, dims)!;
        try {
          const h = await readImageHeader(file, { dims, channelsHint: channelsHint(row.channels), bounds: this.opts });
          checkChannels(row.channels, h, file);
        } catch (e) {
          bad.push([s + k, new DataError(row, file, (e as Error).message, manifestFile)]);
        }
      }));
      checked += part.length;
    }
    if (checked < this.rows.length) this.opts.log?.(`${manifestFile}: checked the headers of ${checked} of ${this.rows.length} images within ${Math.round((this.opts.headerCheckMs ?? HEADER_CHECK_MS) / 1000)} s; the others are checked as they are read`);
    if (!bad.length) return;
    bad.sort((a, b) => a[0] - b[0]);
    const within = this.opts.split ? ` of the ${this.opts.split} split` : '';
    if (!this.opts.skipBad) throw new Error(`${bad[0][1].message}${bad.length > 1 ? ` (and ${bad.length - 1} more row(s)${within} whose image header is bad)` : ''}; fix these rows, or skip them with --skip-bad`);
    for (const [i, err] of bad) {
      this.bad.add(i);
      if (this.bad.size <= 20) this.opts.log?.(`skipping: ${err.message}`);
    }
    if (bad.length > 20) this.opts.log?.(`skipping ${bad.length - 20} more row(s)${within} whose image header is bad`);
    if (bad.length === this.rows.length) throw this.allFailed();
  }

  get length(): number {
    return this.rows.length;
  }

  /** Loads one cell; with skipBad, returns null for a row that cannot be read (and logs it once). */
  async load(i: number): Promise<Cell | null> {
    const hit = this.cache.get(i);
    if (hit) return hit;
    // No header check here (training runs checkImages before step 0): the read below makes the same checks of this one file.
    if (this.bad.has(i)) return null;
    const row = this.rows[i];
    const file = imageOf(row, this.opts.dims)!; // every row has one (withImages)
    try {
      // Any of PNG, (OME-)TIFF or OME-Zarr (data/images.ts tells them apart); which channel is which: preprocessCell.
      const img = await readImage(file, { dims: this.opts.dims, channelsHint: channelsHint(row.channels), bounds: this.opts });
      const t = preprocessCell(img, row.channels, { ...this.opts, intensityScale: row.intensityScale ?? this.opts.intensityScale }, file);
      checkFinite(t, file);
      const cell: Cell = { ...t, row, label: this.classes.indexOf(row.structure) };
      const bytes = (t.reference.length + t.structure.length) * 4;
      if (this.cachedBytes + bytes <= (this.opts.cacheBytes ?? 1 << 30)) {
        this.cache.set(i, cell);
        this.cachedBytes += bytes;
      }
      return cell;
    } catch (e) {
      const err = new DataError(row, file, (e as Error).message, this.opts.manifestFile);
      if (!this.opts.skipBad) throw err;
      this.bad.add(i);
      this.opts.log?.(`skipping: ${err.message}`);
      return null;
    }
  }

  /**
   * This dataset less its unreadable rows (skipBad; else itself), for evaluation: `batch` replaces
   * an unreadable row by another (right for training batches), which would count that other cell
   * twice in an ELBO or an embedding. Reads every cell once; the cells read stay cached.
   */
  async readable(): Promise<CellDataset> {
    if (!this.opts.skipBad) return this;
    this.opts.log?.(`--skip-bad: reading the ${this.length} cells${this.opts.split ? ` of the ${this.opts.split} split` : ''} once, to leave out the unreadable ones`);
    for (let s = 0; s < this.length; s += CONCURRENT_READS) await Promise.all(Array.from({ length: Math.min(CONCURRENT_READS, this.length - s) }, (_, k) => this.load(s + k)));
    if (!this.bad.size) return this;
    const keep = this.rows.map((_, i) => i).filter((i) => !this.bad.has(i));
    if (!keep.length) throw this.allFailed();
    const ds = new CellDataset(keep.map((i) => this.rows[i]), { ...this.opts, split: undefined, labels: this.classes });
    keep.forEach((i, k) => {
      const cell = this.cache.get(i);
      if (cell) ds.cache.set(k, cell);
    });
    ds.cachedBytes = this.cachedBytes;
    return ds;
  }

  /** With skipBad: no row of this dataset could be read. */
  private allFailed(): Error {
    return new Error(`${this.opts.manifestFile ?? 'manifest'}: every row${this.opts.split ? ` of the ${this.opts.split} split` : ''} failed to load and was skipped (--skip-bad); the lines above say why`);
  }

  /** Assembles a batch from row indices; with skipBad, unreadable rows are replaced by `replace(k)`. */
  async batch(indices: number[], replace: (attempt: number) => number = (k) => (indices[0] + k + 1) % this.length): Promise<Batch> {
    const n = indices.length;
    const v = this.voxels;
    const K = this.classes.length;
    const out: Batch = { reference: new Float32Array(n * 2 * v), structure: new Float32Array(n * v), onehot: new Float32Array(n * K), classes: this.classes, rows: [] };
    // Each distinct row read once, CONCURRENT_READS at a time: every read holds a file open (an
    // analysis batch of 100000 repeated indices opened them all at once: EMFILE).
    const distinct = [...new Set(indices)];
    const loaded = new Map<number, Cell | null>();
    for (let s = 0; s < distinct.length; s += CONCURRENT_READS) {
      const part = distinct.slice(s, s + CONCURRENT_READS);
      (await Promise.all(part.map((i) => this.load(i)))).forEach((c, k) => loaded.set(part[k], c));
    }
    const cells: (Cell | null)[] = indices.map((i) => loaded.get(i) ?? null);
    for (let k = 0; k < n; k++) {
      let cell = cells[k];
      for (let attempt = 0; !cell; attempt++) {
        if (attempt > this.length) throw this.allFailed();
        cell = await this.load(replace(attempt));
      }
      out.reference.set(cell.reference, k * 2 * v);
      out.structure.set(cell.structure, k * v);
      out.onehot[k * K + cell.label] = 1;
      out.rows.push(cell.row);
    }
    return out;
  }
}

/** Runs `make(t)` for t = from, from+1, … with up to `depth` results in flight ahead of the consumer. */
export async function* prefetch<T>(from: number, to: number, make: (t: number) => Promise<T>, depth = 2): AsyncGenerator<T> {
  const queue: Promise<T>[] = [];
  let next = from;
  while (next < to && queue.length < depth) queue.push(make(next++));
  while (queue.length) {
    const item = await queue.shift()!;
    if (next < to) queue.push(make(next++));
    yield item;
  }
}
