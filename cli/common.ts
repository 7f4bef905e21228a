// Shared by the CLI commands: opening a backend, opening a data split as a
// model's data.

import { resolve } from 'node:path';
import type { CompiledModel } from '../compiler/model.ts';
import { CellDataset } from '../data/dataset.ts';
import { imageDims } from '../data/decode.ts';
import { readManifest, type CellRow } from '../data/manifest.ts';
import type { Split } from '../data/split.ts';
import { openBackend, type BackendChoice } from '../runtime/device.ts';
import { imageSize } from '../session/feeds.ts';

export async function backendFor(choice: string, log: (l: string) => void) {
  if (!['auto', 'webgpu', 'wasm'].includes(choice)) throw new Error(`--backend ${choice}: expected auto, webgpu or wasm`);
  const opened = await openBackend(choice as BackendChoice);
  log(opened.reason);
  return opened.backend;
}

/**
 * A split of a manifest as the model's data: images at the size of the model's image input, labels
 * indexed by `labels` (a trained run's vocabulary, for a model with a label input; default: the
 * manifest's own).
 */
export function openSplit(manifest: string, model: CompiledModel, split: Split | 'all', opts: { skipBad?: boolean; log?: (l: string) => void; seed?: number; labels?: readonly string[]; fit?: 'exact' | 'crop-pad'; rows?: CellRow[] } = {}): CellDataset {
  const file = resolve(manifest);
  const size = imageSize(model);
  // `rows`: the manifest already read, when several splits of it are opened (train opens three).
  // 'all' is the three splits: drug-treated cells (a drug_label) are in none, as for training (the drug test reads them itself).
  const read = opts.rows ?? readManifest(file, { seed: opts.seed ?? 1 });
  const rows = split === 'all' ? read.filter((r) => !r.columns.drug_label) : read;
  // A run's label vocabulary binds only a model that takes labels: a shape model embeds cells of any structure.
  const takesLabels = model.inputs.some((i) => i.role?.kind === 'label');
  return new CellDataset(rows, { dims: imageDims(size), size, split: split === 'all' ? undefined : split, skipBad: opts.skipBad, log: opts.log, manifestFile: file, labels: takesLabels ? opts.labels : undefined, fit: opts.fit });
}

// One definition each, in cli/options.ts (which the command line loads before any command).
export { log, parseSet } from './options.ts';
