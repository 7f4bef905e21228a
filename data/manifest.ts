// Reads an Allen Institute single-cell manifest (statistical-cell.md §3.1): one CSV row per cell
// with its id, structure name, image paths (relative to the manifest allowed) and channel
// indices. Every other column is carried along. Errors name the file and the line.

import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { MiB, readBoundedSync } from './files.ts';
import { DEFAULT_PIXEL_SIZE, PIXEL_SIZE_COLUMNS, type PixelSize } from './ome.ts';
import { splitOf, type Split } from './split.ts';

/** Channel indices: DNA, membrane and structure; the segmentations (masks) when given. */
export interface Channels {
  dna: number;
  memb: number;
  struct: number;
  seg_cell?: number;
  seg_nuc?: number;
  trans?: number;
}

export interface CellRow {
  /** Line of the manifest this row came from (the header is line 1). */
  line: number;
  cellId: string;
  structure: string;
  /** Absolute paths; absent when the column is missing or empty. */
  tiff3d?: string;
  png2d?: string;
  channels?: Channels;
  split: Split;
  /** From the optional PhysicalSizeX, PhysicalSizeY (and PhysicalSizeZ) columns, in µm. */
  pixelSize?: { x: number; y: number; z?: number };
  /** From the optional intensity_scale column: the stored value that stands for 1 (default: the image type's maximum). */
  intensityScale?: number;
  /** Every column as written, including the ones above. */
  columns: Record<string, string>;
}

export class ManifestError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    // Line 0: about the file as a whole (it could not be read).
    super(`${file}${line ? `:${line}` : ''}: ${message}`);
    this.name = 'ManifestError';
  }
}

export const STRUCTURE_COLUMNS = ['StructureDisplayName', 'StructureId/Name', 'structure_name', 'Structure'];
/** The channel columns an indexed image needs, and those it may have (the masks, the bright field). */
const CHANNEL_COLUMNS = ['dna', 'memb', 'struct'] as const;
const OPTIONAL_CHANNEL_COLUMNS = ['seg_cell', 'seg_nuc', 'trans'] as const;

export interface ManifestOptions {
  /** Split seed (the paper's is 1). */
  seed?: number;
  /** Column holding the structure name; default: the first of STRUCTURE_COLUMNS present. */
  structureColumn?: string;
}

/**
 * The Allen manifest (~40 000 cells) is ~30 MB of CSV. Parsed, a manifest takes ~20× its size in
 * memory (a string per field, an object per row; measured: 24 MB of CSV → 571 MB peak RSS), so
 * past 64 MiB (~90 000 rows of the Allen columns, ~750 bytes each) it would need gigabytes.
 */
export const MAX_MANIFEST_BYTES = 64 * MiB;

export function readManifest(file: string, opts: ManifestOptions = {}): CellRow[] {
  let text: string;
  try {
    text = readBoundedSync(file, MAX_MANIFEST_BYTES).toString('utf8');
  } catch (e) {
    throw new ManifestError(file, 0, `cannot read the manifest: ${(e as Error).message}`);
  }
  return parseManifest(text, file, opts);
}

/** The header's names; a name given twice is an error (the parser would keep only the last column's values). */
function uniqueColumns(names: string[], file: string): string[] {
  const twice = names.findIndex((c, i) => names.indexOf(c) !== i);
  if (twice >= 0) throw new ManifestError(file, 1, `column '${names[twice]}' appears twice in the header (columns ${names.indexOf(names[twice]) + 1} and ${twice + 1}); which one holds the values is ambiguous`);
  return names;
}

/** A list of names for a message: the first 20, then how many more (a header may have thousands). */
export const namesList = (names: readonly string[]): string => names.slice(0, 20).map((n) => (n.length > 80 ? `${n.slice(0, 80)}…` : n)).join(', ') + (names.length > 20 ? ` … and ${names.length - 20} more` : '');

/** Most columns a manifest may have (the Allen manifests have ~100): each row is an object of them. */
export const MAX_COLUMNS = 10_000;
/** Longest row, in characters (an Allen row is ~750; a path at most 4096). */
export const MAX_ROW_CHARS = 1 << 20;

/**
 * Refuses, before the CSV parser sees them, a header of more than MAX_COLUMNS columns, a row of
 * more fields than the header and a row longer than MAX_ROW_CHARS, naming the line: the parser
 * took ~30 s over one 50 MB field, and a header of a million columns held the check of its names
 * (and each row's object of a million fields) for hours. One pass over the characters, reading
 * quoted fields as csv-parse does (a quote opens a field only at its start; "" inside is one quote).
 */
function checkShape(text: string, file: string): void {
  const bom = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte-order mark is not part of the first field
  // `content`: the row has a character other than blanks and commas. Rows without (blank, or a
  // spreadsheet's ",,,") are skipped by the parser, so the header is the first row with content.
  let line = 1, start = bom, fields = 1, header = 0, quoted = false, fieldStart = true, content = false;
  // More fields than the header: an error once the row has content (a row of commas is skipped).
  const tooMany = (at: number) => {
    if (header && content && fields > header) throw new ManifestError(file, at, `more fields than the header's ${header} columns`);
  };
  for (let i = bom; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) line++;
    if (i - start > MAX_ROW_CHARS) throw new ManifestError(file, line, `a row longer than ${MAX_ROW_CHARS} characters (a manifest row is a cell's id, label, paths and columns; a quote left open?)`);
    if (quoted) {
      if (c === 34) {
        if (text.charCodeAt(i + 1) === 34) i++;
        else quoted = false;
      }
    } else if (c === 34 && fieldStart) {
      quoted = true;
      fieldStart = false;
      content = true;
    } else if (c === 44) {
      fieldStart = true;
      if (++fields > MAX_COLUMNS && !header) throw new ManifestError(file, line, `more than ${MAX_COLUMNS} columns in the header`);
      tooMany(line);
    } else if (c === 10 || c === 13) {
      tooMany(c === 10 ? line - 1 : line);
      if (!header && content) header = fields;
      [start, fields, fieldStart, content] = [i + 1, 1, true, false];
    } else if (c !== 32 && c !== 9) {
      fieldStart = false;
      content = true;
    }
  }
  tooMany(line);
}

/** The `split` column's words for each split (the column is optional; without it, splitOf decides). */
const SPLIT_WORDS: Record<string, Split> = { train: 'train', validate: 'validate', validation: 'validate', val: 'validate', valid: 'validate', test: 'test' };

export function parseManifest(text: string, file: string, opts: ManifestOptions = {}): CellRow[] {
  // A manifest written with another separator parses as one column, then fails at the first row
  // that holds a comma with "Invalid Record Length".
  const first = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0];
  const other = [';', '\t'].find((c) => !first.includes(',') && first.includes(c));
  if (other) throw new ManifestError(file, 1, `statcell reads comma-separated manifests; this header is ${other === ';' ? 'semicolon' : 'tab'}-separated`);
  checkShape(text, file);
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    // Rows of empty fields only (",,,", as spreadsheets write at the end) are skipped like empty lines.
    records = parse(text, { columns: (names: string[]) => uniqueColumns(names, file), info: true, skip_empty_lines: true, skip_records_with_empty_values: true, bom: true, trim: true });
  } catch (e) {
    if (e instanceof ManifestError) throw e;
    const err = e as Error & { lines?: number };
    throw new ManifestError(file, err.lines ?? 0, `not a valid CSV: ${err.message}`);
  }
  if (!records.length) throw new ManifestError(file, 1, 'the manifest has no rows');
  const header = Object.keys(records[0].record);
  const need = (c: string) => {
    if (header.includes(c)) return;
    const cased = header.find((h) => h.toLowerCase() === c.toLowerCase());
    throw new ManifestError(file, 1, `missing column '${c}'${cased ? ` (column names are case-sensitive: '${cased}' should be '${c}')` : ''} (columns: ${namesList(header)})`);
  };
  need('CellId');
  const structureColumn = opts.structureColumn ?? STRUCTURE_COLUMNS.find((c) => header.includes(c));
  if (!structureColumn) throw new ManifestError(file, 1, `no structure-name column: expected one of ${STRUCTURE_COLUMNS.join(', ')}`);
  need(structureColumn);
  // The three channel columns together or none: with one missing, every column was ignored and
  // the image read as if it had no indices (its channels in another order).
  const given = CHANNEL_COLUMNS.filter((c) => header.includes(`ch_${c}`));
  if (given.length && given.length < CHANNEL_COLUMNS.length)
    throw new ManifestError(file, 1, `channel columns ${given.map((c) => `ch_${c}`).join(', ')} without ${CHANNEL_COLUMNS.filter((c) => !given.includes(c)).map((c) => `ch_${c}`).join(', ')}: give ch_dna, ch_memb and ch_struct together (ch_seg_cell, ch_seg_nuc optional), or none`);
  const hasChannels = given.length > 0;
  const optional = OPTIONAL_CHANNEL_COLUMNS.filter((c) => header.includes(`ch_${c}`));
  const base = dirname(resolve(file));
  const path = (p: string | undefined) => (p ? (isAbsolute(p) ? p : resolve(base, p)) : undefined);

  // A cell is its CellId and structure (the controls share their cell's CellId): a row given twice
  // would count twice in every statistic over the cells.
  const lineOf = new Map<string, number>();
  return records.map(({ record, info }) => {
    const line = info.lines;
    const cellId = record.CellId;
    if (!cellId) throw new ManifestError(file, line, 'empty CellId');
    const structure = record[structureColumn];
    if (!structure) throw new ManifestError(file, line, `empty ${structureColumn}`);
    const key = `${cellId}\t${structure}`;
    if (lineOf.has(key)) throw new ManifestError(file, line, `CellId ${cellId} with ${structureColumn} '${structure}' is already on line ${lineOf.get(key)}: each cell once`);
    lineOf.set(key, line);
    let channels: Channels | undefined;
    // A row whose channel cells are all empty gives none (a 3-channel PNG needs none); Number() would read them as channel 0.
    if (hasChannels && [...CHANNEL_COLUMNS, ...optional].some((c) => record[`ch_${c}`] !== '')) {
      const ch = (c: string) => {
        // Digits, or pandas' float form of them ('2.0'); not '', '0x2' or '1e0', which Number() reads.
        const v = /^\d+(\.0+)?$/.test(record[`ch_${c}`]) ? Number(record[`ch_${c}`]) : NaN;
        if (!Number.isInteger(v)) throw new ManifestError(file, line, `ch_${c} must be a channel index (a whole number ≥ 0), got '${record[`ch_${c}`]}'`);
        return v;
      };
      channels = { dna: ch('dna'), memb: ch('memb'), struct: ch('struct') };
      // An empty optional cell: that row has no such channel (no mask applied).
      for (const c of optional) if (record[`ch_${c}`] !== '') channels[c] = ch(c);
    }
    const positive = (c: string) => {
      if (!record[c]) return undefined;
      const v = Number(record[c]);
      if (!(v > 0) || !Number.isFinite(v)) throw new ManifestError(file, line, `${c} must be a positive number, got '${record[c]}'`);
      return v;
    };
    const [px, py, pz] = PIXEL_SIZE_COLUMNS.map(positive);
    if ((px === undefined) !== (py === undefined)) throw new ManifestError(file, line, 'PhysicalSizeX and PhysicalSizeY (µm) must be given together');
    const pixelSize = px !== undefined ? { x: px, y: py!, ...(pz !== undefined ? { z: pz } : {}) } : undefined;
    let split = splitOf(cellId, opts.seed ?? 1);
    if ('split' in record) {
      const given = SPLIT_WORDS[record.split.toLowerCase()];
      if (!given) throw new ManifestError(file, line, `split must be train, validate or test, got '${record.split}' (without a split column, a hash of the CellId picks it)`);
      split = given;
    }
    return { line, cellId, structure, pixelSize, intensityScale: positive('intensity_scale'), tiff3d: path(record.save_reg_path), png2d: path(record.save_reg_path_flat), channels, split, columns: record };
  });
}

/**
 * The pixel size of a data set's cells: the PhysicalSizeX/Y(/Z) columns, which every row must give
 * alike (one model's cells share one grid), or DEFAULT_PIXEL_SIZE (which says it is assumed) when no row does.
 */
export function pixelSizeOf(rows: CellRow[], file: string): PixelSize {
  const first = rows.find((r) => r.pixelSize);
  if (!first) return DEFAULT_PIXEL_SIZE;
  const same = (r: CellRow) => r.pixelSize && r.pixelSize.x === first.pixelSize!.x && r.pixelSize.y === first.pixelSize!.y && r.pixelSize.z === first.pixelSize!.z;
  const odd = rows.find((r) => !same(r));
  if (odd) throw new ManifestError(file, odd.line, `PhysicalSizeX/Y/Z ${odd.pixelSize ? [odd.pixelSize.x, odd.pixelSize.y, odd.pixelSize.z].join('/') : '(empty)'} differ from line ${first.line}'s ${[first.pixelSize!.x, first.pixelSize!.y, first.pixelSize!.z].join('/')}: the cells of one data set share one pixel size`);
  return { ...first.pixelSize!, source: `${file}: PhysicalSizeX/Y${first.pixelSize!.z !== undefined ? '/Z' : ''} columns (µm)` };
}
