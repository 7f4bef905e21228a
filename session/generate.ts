// Generation (statistical-cell.md §4): whole cells — z_r ~ N(0, I) → the reference model's
// generator → its image channels, then per label the target model's generator conditioned on
// them — or structures generated in real cells (the target model given a real cell's channels).
// Models are called through their `generate` role; channels are matched by name, so any pair of
// models whose reference input takes channels the other produces composes.

import type { CompiledModel } from '../compiler/model.ts';
import type { Batch } from '../data/dataset.ts';
import { cellChannels, channelsOf, feedsFrom, imageChannels, imageSize, inputWithRole, requireUnconditioned, type CellChannels } from './feeds.ts';
import type { OpenedRun } from './run.ts';

export interface GeneratedCell {
  channels: CellChannels;
  label: string | null;
  source: string;
  /** Which of the n cells it is: the structures generated for each label in one cell share it. */
  cell: number;
}

export interface Generated {
  /** Spatial size of every channel. */
  size: number[];
  cells: GeneratedCell[];
}

function generateRole(model: CompiledModel) {
  const g = model.roles.generate;
  if (!g) throw model.error('SC5001', { need: 'entry', model: model.name, role: 'generate', purpose: 'generate cells' }, { notes: ['add `entry generate(<conditions>) -> img: [B, C, ...size] { ... }` (or mark an entry `as generate`)'] });
  return g;
}

/** A reference and a target run compose only at one image size (the target model takes the reference model's cells). */
export function checkSameSize(reference: OpenedRun, target: OpenedRun, what: string): void {
  const [r, t] = [imageSize(reference.model), imageSize(target.model)];
  if (r.join('×') !== t.join('×')) throw new Error(`${what}: the reference model (${reference.dir}) takes ${r.join('×')} cells but the target model (${target.dir}) takes ${t.join('×')}; give two runs of one image size`);
}

/**
 * Whole generated cells feed the target model: each channel its reference input reads must be one
 * the reference model generates (a membrane-only reference cannot condition a target that reads
 * DNA). Checked before anything runs, naming both runs.
 */
export function checkComposes(reference: OpenedRun, target: OpenedRun, what: string): void {
  const made = channelsOf(inputWithRole(reference.model, 'image', what));
  const missing = target.model.inputs.filter((i) => i.role?.kind === 'reference').flatMap((i) => channelsOf(i).filter((c) => !made.includes(c)).map((c) => `${i.name} reads ${c}`));
  if (missing.length)
    throw new Error(`${what}: the target model (${target.dir}) cannot be given the reference model's cells (${reference.dir}): its reference input ${missing.join(', ')}, which ${reference.model.name} does not generate (it generates ${made.join(', ')}); give a reference run whose image has those channels`);
}

/**
 * A generator run on all n cells in one batch (so that a seed gives the same cells whatever n is
 * split into); a batch past the backend's memory is named as such, with the remedy: fewer cells.
 */
async function runGenerator(run: OpenedRun, entry: string, feeds: Record<string, Float32Array>, n: number, iteration: number): Promise<Record<string, Float32Array>> {
  try {
    return await run.runtime.run(entry, feeds, n, iteration);
  } catch (e) {
    const msg = (e as Error).message;
    if (!/out of memory/i.test(msg)) throw e;
    throw new Error(`generate: the ${n} cells are generated in one batch, which does not fit ${run.model.name} on this backend; generate fewer (--n). (${msg.replace(/; use a smaller batch.*$/, '')})`);
  }
}

/**
 * n whole generated cells (from the reference run) — or, with `real`, n real cells — each with
 * one generated structure per label from the target run (when given). `iteration` picks the draws.
 */
export async function generate(o: { reference?: OpenedRun; target?: OpenedRun; n: number; labels: string[]; real?: Batch; iteration?: number }): Promise<Generated> {
  const any = o.reference ?? o.target;
  if (!any) throw new Error('generate: give a reference model run (--reference), a target model run (--target), or both');
  const size = imageSize(any.model);
  if (o.reference && o.target) checkSameSize(o.reference, o.target, 'generate');
  const it = o.iteration ?? 0;
  let base: CellChannels[];
  let names: string[];
  if (o.real) {
    const n = o.real.rows.length;
    // The real cell's channels, less the ones the target model generates.
    const generated = o.target ? new Set(channelsOf(inputWithRole(o.target.model, 'image', 'generating structures in real cells'))) : new Set<string>();
    base = Array.from({ length: Math.min(o.n, n) }, (_, i) => Object.fromEntries(Object.entries(cellChannels(o.real!, i, n)).filter(([c]) => !generated.has(c))));
    names = o.real.rows.slice(0, base.length).map((r) => `cell ${r.cellId}`);
  } else if (!o.reference && o.target && !o.target.model.inputs.some((i) => i.role?.kind === 'reference')) {
    // A target conditioned on its label only needs no cell: n empty bases, one structure per label each.
    if (!o.labels.length) throw new Error(`generate: ${o.target.model.name} is conditioned on its label alone; name the labels to generate with --labels`);
    base = Array.from({ length: o.n }, () => ({}));
    names = base.map((_, i) => `generated ${i}`);
  } else {
    if (!o.reference) throw new Error('generate: whole cells need the reference model (--reference); for structures in real cells give --data');
    if (o.target && o.labels.length) checkComposes(o.reference, o.target, 'generate');
    const m = o.reference.model;
    const g = generateRole(m);
    requireUnconditioned(m, 'generate whole cells on its own', 'give it as --target (structures generated given a cell), with an unconditioned model as --reference');
    const image = inputWithRole(m, 'image', 'generation');
    const out = (await runGenerator(o.reference, g.entry, {}, o.n, it))[g.output];
    base = Array.from({ length: o.n }, (_, i) => imageChannels(out, channelsOf(image), i, o.n));
    names = base.map((_, i) => `generated ${i}`);
  }
  if (!o.target || !o.labels.length) return { size, cells: base.map((channels, i) => ({ channels, label: null, source: names[i], cell: i })) };
  const t = o.target.model;
  const g = generateRole(t);
  if (!t.inputs.some((i) => i.role?.kind === 'label')) throw t.error('SC5001', { need: 'label input', model: t.name }, { notes: ['a target model has an input `as label`; without --labels, only whole cells of the reference model are generated'] });
  const image = inputWithRole(t, 'image', 'generation');
  // A cell's channel that the target both reads and generates cannot condition it: the generated one replaces it.
  const reads = t.inputs.filter((i) => i.role?.kind === 'reference').flatMap((i) => channelsOf(i).filter((c) => channelsOf(image).includes(c)).map((c) => `${i.name} reads ${c}`));
  if (reads.length) throw new Error(`generate: ${t.name} generates ${channelsOf(image).join(', ')} and its reference input ${reads.join(', ')}, so it cannot be generated given a cell: its reference must not include a channel it generates`);
  const cells: GeneratedCell[] = [];
  for (const [j, label] of o.labels.entries()) {
    const feeds = feedsFrom(t, base, base.map(() => label), o.target.info.labels, ['reference', 'label']);
    const out = (await runGenerator(o.target, g.entry, feeds, base.length, it + 1 + j))[g.output];
    base.forEach((b, i) => cells.push({ channels: { ...b, ...imageChannels(out, channelsOf(image), i, base.length) }, label, source: names[i], cell: i }));
  }
  return { size, cells };
}
