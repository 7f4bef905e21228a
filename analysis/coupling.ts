// Structure–reference coupling (statistical-cell.md §4): how much the target model's ELBO of a
// cell's structure drops when one reference channel (membrane or DNA) is replaced by that channel
// of a uniformly random test cell. coupling_c = 1 − ELBO / mean(ELBO_perm_c): the ELBO is
// negative, so a worse (more negative) permuted ELBO gives a positive coupling. Per structure,
// the differential coupling is the median of (coupling_memb − coupling_dna), separately for
// interphase and mitotic cells when the data mark mitosis. Browser-safe.

import { mean, median } from 'simple-statistics';
import type { Batch } from '../data/dataset.ts';
import type { CellRow } from '../data/manifest.ts';
import { evaluateCells, type CellSource } from '../session/evaluate.ts';
import type { ModelRuntime } from '../session/model.ts';
import { seededRandom } from '../data/random.ts';

/**
 * Most partners per channel and z samples per ELBO (the paper: 100 and 10): each cell holds its
 * 1 + 2·permutations evaluation items in memory (10⁹ partners ran the process out of memory).
 */
export const MAX_PERMUTATIONS = 10000;
export const MAX_SAMPLES = 1000;

/** Refuses counts past the bounds, or under 1, naming the options. */
export function checkCouplingCounts(permutations: number, samples: number): void {
  const ok = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
  if (!ok(permutations, MAX_PERMUTATIONS) || !ok(samples, MAX_SAMPLES))
    throw new Error(`coupling: --permutations ${permutations} and --samples ${samples} must be whole numbers from 1 to ${MAX_PERMUTATIONS} and from 1 to ${MAX_SAMPLES}`);
}

/** The reference channels that are permuted, in the Batch's reference order. */
export const PERMUTED = ['membrane', 'dna'] as const;
export type Permuted = (typeof PERMUTED)[number];

/** 1 − ELBO / mean(permuted ELBOs). */
export function couplingOf(elbo: number, permuted: ArrayLike<number>): number {
  if (!permuted.length) throw new Error('coupling: no permuted ELBOs');
  return 1 - elbo / mean(Array.from(permuted));
}

export interface CellCoupling {
  cellId: string;
  structure: string;
  /** Undefined when the data do not mark mitosis. */
  mitotic?: boolean;
  elbo: number;
  memb: number;
  dna: number;
}

export interface StructureCoupling {
  structure: string;
  /** 'all' cells, or only the 'interphase' / 'mitotic' ones. */
  phase: 'all' | 'interphase' | 'mitotic';
  cells: number;
  /** Medians over the cells of coupling_memb, coupling_dna and their difference. */
  memb: number;
  dna: number;
  differential: number;
}

/** Per structure (and phase, when cells carry one): the medians; sorted by differential coupling, ascending. */
export function summarizeCoupling(cells: CellCoupling[]): StructureCoupling[] {
  const out: StructureCoupling[] = [];
  const structures = [...new Set(cells.map((c) => c.structure))];
  const phases = cells.some((c) => c.mitotic !== undefined) ? (['all', 'interphase', 'mitotic'] as const) : (['all'] as const);
  for (const structure of structures)
    for (const phase of phases) {
      const these = cells.filter((c) => c.structure === structure && (phase === 'all' || (phase === 'mitotic') === c.mitotic));
      if (!these.length) continue;
      out.push({ structure, phase, cells: these.length, memb: median(these.map((c) => c.memb)), dna: median(these.map((c) => c.dna)), differential: median(these.map((c) => c.memb - c.dna)) });
    }
  return out.sort((a, b) => a.differential - b.differential || a.structure.localeCompare(b.structure) || a.phase.localeCompare(b.phase));
}

/** Manifest columns that mark mitosis, in the order they are looked for. */
export const MITOSIS_COLUMNS = ['truth_mitotic', 'mitotic', 'mitosis', 'MitoticStateId/Name'];
const INTERPHASE = new Set(['0', 'false', 'no', 'm0', 'interphase']);

/** Whether a cell is mitotic, from the first mitosis column the manifest has (undefined when none). */
export function mitoticOf(row: CellRow): boolean | undefined {
  const col = MITOSIS_COLUMNS.find((c) => c in row.columns);
  if (!col) return undefined;
  const v = row.columns[col].trim().toLowerCase();
  if (v === '') return undefined;
  return !INTERPHASE.has(v);
}

/**
 * The partners of cell `cell` among `n` test cells: for each permuted channel, `permutations`
 * uniformly random cells whose channel replaces the cell's. They depend only on (seed, cell), so
 * a resumed run draws the same ones for the cells it has left.
 */
export function partnersOf(seed: number, cell: number, n: number, permutations: number): Record<Permuted, number[]> {
  const r = seededRandom((seed * 0x9e3779b1 + cell * 0x85ebca6b + 1) >>> 0);
  const draw = () => Array.from({ length: permutations }, () => Math.min(n - 1, Math.floor(r() * n)));
  return { membrane: draw(), dna: draw() };
}

/**
 * One cell's evaluation items as a CellSource: item 0 is the cell itself, then one item per
 * partner of each permuted channel, the cell with that reference channel taken from the partner.
 * `cells` is the test set in memory (one cell per Batch of one).
 */
export function permutedSource(cells: Batch[], cell: number, partners: Record<Permuted, number[]>): CellSource & { items: { channel?: Permuted; partner?: number }[] } {
  const items: { channel?: Permuted; partner?: number }[] = [{}];
  for (const channel of PERMUTED) for (const partner of partners[channel]) items.push({ channel, partner });
  const base = cells[cell];
  const vox = base.structure.length;
  const one = (k: number): Batch => {
    const it = items[k];
    if (!it.channel) return base;
    const reference = base.reference.slice();
    const c = PERMUTED.indexOf(it.channel);
    reference.set(cells[it.partner!].reference.subarray(c * vox, (c + 1) * vox), c * vox);
    return { ...base, reference };
  };
  return {
    items,
    length: items.length,
    async batch(indices: number[]): Promise<Batch> {
      const parts = indices.map(one);
      const cat = (key: 'reference' | 'structure' | 'onehot') => {
        const w = parts[0][key].length;
        const out = new Float32Array(w * parts.length);
        parts.forEach((p, i) => out.set(p[key], i * w));
        return out;
      };
      return { reference: cat('reference'), structure: cat('structure'), onehot: cat('onehot'), classes: base.classes, rows: parts.map((p) => p.rows[0]) };
    },
  };
}

/** A cell's coupling from its evaluated items (ELBO per item, in permutedSource's order). */
export function cellCoupling(row: CellRow, items: { channel?: Permuted }[], elbos: number[]): CellCoupling {
  const of = (ch: Permuted) => elbos.filter((_, k) => items[k].channel === ch);
  const elbo = elbos[items.findIndex((it) => !it.channel)];
  return { cellId: row.cellId, structure: row.structure, mitotic: mitoticOf(row), elbo, memb: couplingOf(elbo, of('membrane')), dna: couplingOf(elbo, of('dna')) };
}

export interface CouplingRunOptions {
  permutations: number;
  /** z draws per ELBO (the paper: 10). */
  samples: number;
  batch: number;
  seed: number;
  /** Keys (cellKey) of cells already done: skipped (resume). */
  done?: Set<string>;
  /** Called with each cell's result as soon as it is computed (write it out here). */
  onCell?: (c: CellCoupling, index: number) => void | Promise<void>;
}

/** A cell's key in the per-cell results: controls share their cell's CellId. */
export const cellKey = (c: { cellId: string; structure: string }) => `${c.cellId}\t${c.structure}`;

/**
 * The coupling of every cell of `cells` (the test set, one cell per Batch) under the target
 * model `rt`, through its compiled evaluation: per cell 1 + 2·permutations ELBOs, each averaged
 * over `samples` z draws, evaluated in batches.
 */
export async function couplingOfCells(rt: ModelRuntime, cells: Batch[], o: CouplingRunOptions): Promise<CellCoupling[]> {
  const out: CellCoupling[] = [];
  for (let i = 0; i < cells.length; i++) {
    const row = cells[i].rows[0];
    if (o.done?.has(cellKey(row))) continue;
    const src = permutedSource(cells, i, partnersOf(o.seed, i, cells.length, o.permutations));
    const res = await evaluateCells(rt, src, { batch: Math.min(o.batch, src.length), samples: o.samples });
    const elbo = res.perCell.map((v) => v[res.names[0]]);
    const c = cellCoupling(row, src.items, elbo);
    out.push(c);
    await o.onCell?.(c, i);
  }
  return out;
}

/** A control couples to a channel when its median coupling exceeds this, and not when its |median| is below UNCOUPLED (the paper's controls are far from both). */
export const COUPLED = 0.1;
export const UNCOUPLED = 0.05;

/** What the paper's controls must show: the DNA copy couples to DNA only, the membrane copy to the membrane only, the blank to neither. */
export const CONTROL_EXPECTATIONS: Record<string, { memb: 'coupled' | 'uncoupled'; dna: 'coupled' | 'uncoupled' }> = {
  'Control - DNA': { memb: 'uncoupled', dna: 'coupled' },
  'Control - Memb': { memb: 'coupled', dna: 'uncoupled' },
  'Control - Blank': { memb: 'uncoupled', dna: 'uncoupled' },
};

/** Whether a control's medians behave as the paper's (undefined for a structure that is not one of the three controls). */
export function controlBehaves(s: Pick<StructureCoupling, 'structure' | 'memb' | 'dna'>): boolean | undefined {
  const want = CONTROL_EXPECTATIONS[s.structure];
  if (!want) return undefined;
  const ok = (v: number, w: 'coupled' | 'uncoupled') => (w === 'coupled' ? v > COUPLED : Math.abs(v) < UNCOUPLED);
  return ok(s.memb, want.memb) && ok(s.dna, want.dna);
}
