// Model inputs from data, by the inputs' roles (compiler/model.ts InputRole): an image or reference
// input gets the data channels it names, in its order; a label input the one-hot row of each
// cell's label. Nothing here knows the template's input names.

import type { CompiledModel, InputRole, ModelInput } from '../compiler/model.ts';
import type { Batch } from '../data/dataset.ts';

/** A cell by data-channel name (`membrane`, `dna`, `structure`), each [...size]. */
export type CellChannels = Partial<Record<string, Float32Array>>;

/** Cell i of a batch of n cells, by channel name. */
export function cellChannels(b: Pick<Batch, 'reference' | 'structure'>, i: number, n: number): CellChannels {
  const vox = b.structure.length / n;
  return {
    membrane: b.reference.subarray(2 * i * vox, (2 * i + 1) * vox),
    dna: b.reference.subarray((2 * i + 1) * vox, (2 * i + 2) * vox),
    structure: b.structure.subarray(i * vox, (i + 1) * vox),
  };
}

/** Channels of a model image [n, C, ...] (C = names.length), by name. */
export function imageChannels(data: Float32Array, names: readonly string[], i: number, n: number): CellChannels {
  const vox = data.length / n / names.length;
  return Object.fromEntries(names.map((c, k) => [c, data.subarray((i * names.length + k) * vox, (i * names.length + k + 1) * vox)]));
}

/** The model's one input with the given role (SC5001 when there is none, or several). */
export function inputWithRole(model: CompiledModel, kind: 'image' | 'reference' | 'label', what: string): ModelInput {
  const found = model.inputs.filter((i) => i.role?.kind === kind);
  if (found.length !== 1)
    throw model.error('SC5001', { need: 'input', tool: what, role: kind, model: model.name, found: found.map((i) => i.name) }, {
      // At an input that could take the role, if there is one.
      at: (found[0] ?? model.inputs.find((i) => !i.role))?.name,
      notes: [`mark one input with its role: \`input x: [B, 2, ...size] as image("membrane", "dna")\`, \`as reference(...)\` or \`as label\` (docs/language.md, "Roles")`],
    });
  return found[0];
}

/** The model's conditions: its inputs with a role other than the image (reference, label). */
export const conditionsOf = (model: CompiledModel): ModelInput[] => model.inputs.filter((i) => i.role && i.role.kind !== 'image');

/** SC5001 unless the model is of the cell alone: no reference or label input (a reference model). */
export function requireUnconditioned(model: CompiledModel, purpose: string, note: string): void {
  const conditions = conditionsOf(model);
  if (conditions.length) throw model.error('SC5001', { need: 'no conditions', model: model.name, conditions: conditions.map((i) => i.name), purpose }, { at: conditions[0].name, notes: [note] });
}

/** The model's reference input, which must read every one of `channels` (SC5001 otherwise): a target model, for a tool that changes those channels. */
export function referenceReading(model: CompiledModel, channels: readonly string[], tool: string): ModelInput {
  const ref = inputWithRole(model, 'reference', tool);
  const reads = channelsOf(ref);
  if (!channels.every((c) => reads.includes(c)))
    throw model.error('SC5001', { need: 'reference channels', model: model.name, input: ref.name, channels: reads, tool, want: channels }, { at: ref.name, notes: [`a target model reads the cell as \`input ${ref.name}: [B, 2, ...size] as reference("membrane", "dna")\``] });
  return ref;
}

/** The model's spatial image size (from its image input). */
export const imageSize = (model: CompiledModel): number[] => inputWithRole(model, 'image', 'this tool').itemShape.slice(1);

/** The data channels an image or reference input takes, in order. */
export const channelsOf = (input: ModelInput): string[] => (input.role && input.role.kind !== 'label' ? input.role.channels : []);

/** An image-role input [n, C, ...] from per-cell channels; SC5002 when a cell lacks a channel or has another size. */
export function stackChannels(model: CompiledModel, input: ModelInput, cells: CellChannels[]): Float32Array {
  const role = input.role as { kind: 'image' | 'reference'; channels: string[] };
  const vox = input.itemShape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(cells.length * role.channels.length * vox);
  cells.forEach((cell, i) =>
    role.channels.forEach((c, k) => {
      const data = cell[c];
      if (!data) throw model.error('SC5002', { misfit: 'channel', input: input.name, channel: c, have: Object.keys(cell) }, { at: input.name });
      if (data.length !== vox) throw model.error('SC5002', { misfit: 'image size', input: input.name, size: input.itemShape.slice(1), channel: c, values: data.length, want: vox }, { at: input.name });
      out.set(data, (i * role.channels.length + k) * vox);
    }),
  );
  return out;
}

/** How to give the model the data's label count: the one int parameter that holds its label width now, if there is one. */
function labelWidthNote(model: CompiledModel, width: number, labels: number): string {
  const params = Object.entries(model.config).filter(([, v]) => v === width).map(([k]) => k);
  return params.length === 1
    ? `set the model's label width to the data's ${labels} labels: --set ${params[0]}=${labels}`
    : `set the model's label width (the size of its label input) to the data's ${labels} labels`;
}

/** One-hot rows over `classes` for a label input; SC5002 when the model's label width is not the vocabulary's size or a label is unknown. */
export function oneHot(model: CompiledModel, input: ModelInput, classes: readonly string[], labels: readonly string[]): Float32Array {
  const K = (input.role as { classes: number }).classes;
  if (K !== classes.length)
    throw model.error('SC5002', { misfit: 'labels', input: input.name, takes: K, classes }, {
      at: input.name,
      notes: [labelWidthNote(model, K, classes.length)],
    });
  const out = new Float32Array(labels.length * K);
  labels.forEach((l, i) => {
    const k = classes.indexOf(l);
    if (k < 0) throw model.error('SC5002', { misfit: 'label', label: l, classes }, { at: input.name });
    out[i * K + k] = 1;
  });
  return out;
}

/**
 * The role inputs of the model (of the given kinds; default all) from per-cell channels and
 * labels. Inputs without a role are left to the caller (e.g. a decoder's latent code).
 */
export function feedsFrom(model: CompiledModel, cells: CellChannels[], labels: readonly string[], classes: readonly string[], kinds?: InputRole['kind'][]): Record<string, Float32Array> {
  const feeds: Record<string, Float32Array> = {};
  for (const input of model.inputs) {
    if (!input.role || (kinds && !kinds.includes(input.role.kind))) continue;
    feeds[input.name] = input.role.kind === 'label' ? oneHot(model, input, classes, labels) : stackChannels(model, input, cells);
  }
  return feeds;
}

/** The model's inputs for a batch of data (the trainer's and the evaluators' feed). */
export function feedsFor(model: CompiledModel, b: Batch): Record<string, Float32Array> {
  const n = b.rows.length;
  const missing = model.inputs.find((i) => !i.role);
  if (missing)
    throw model.error('SC5001', { need: 'input role', input: missing.name }, {
      at: missing.name,
      notes: [`declare what it is: \`input ${missing.name}: [...] as image("membrane", "dna")\`, \`as reference("membrane", "dna")\` or \`as label\``],
    });
  return feedsFrom(model, Array.from({ length: n }, (_, i) => cellChannels(b, i, n)), b.rows.map((r) => r.structure), b.classes);
}
