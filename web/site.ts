// The explorer's site folder (written by `statcell export-web`, read by the page): index.json
// names everything else by a path relative to the site. Browser-safe: files come through a
// fetcher (the page's fetch, or a file reader in Node), so the page and Node read the same bytes.
//
//   index.json                       SiteIndex
//   data/<role>/src/<k>.vae          the model's source files (compiled in the page)
//   data/<role>.safetensors          parameters and state, no optimizer moments
//   data/<role>-embedding.f32        float32 [cells, 2, latent]: each cell's μ then log σ²
//   data/cells.f32                   float32 [cells, 3, ...size]: membrane, DNA, structure

import { compileModel } from '../compiler/compile.ts';
import type { CompiledModel } from '../compiler/model.ts';
import { parsePrecision, type Precision } from '../compiler/precision.ts';
import type { Channels } from '../data/manifest.ts';
import type { PixelSize } from '../data/ome.ts';
import { parseSafetensors } from '../runtime/safetensors.ts';

export const SITE_FORMAT = 'statcell-explorer/1';
export const SITE_CHANNELS = ['membrane', 'dna', 'structure'] as const;
export type ModelRole = 'reference' | 'target';

export interface SiteModel {
  /** The model's name in its entry file, and the entry file's name among `files`. */
  name: string;
  entryFile: string;
  /** Source file name (as the checkpoint keeps it) → its path in the site. */
  files: Record<string, string>;
  overrides: Record<string, unknown>;
  weights: string;
  embedding: string;
  checkpoint: string;
  iteration: number;
  /** The label vocabulary the label input's one-hot rows index. */
  labels: string[];
  /** Trained with activations rounded to binary16: the page rounds them the same way (absent: f32). */
  precision?: Precision;
}

export interface SiteCell {
  id: string;
  label: string;
  split: string;
}

export interface SiteIndex {
  format: typeof SITE_FORMAT;
  /** The models' spatial image size, [Y, X] or [Y, X, Z]. */
  size: number[];
  cells: SiteCell[];
  cellData: string;
  /** How images of another size were fitted in training (dropped files are fitted the same way, or crop-padded). */
  fit: 'exact' | 'crop-pad';
  models: Partial<Record<ModelRole, SiteModel>>;
  /** Which channel of the training data's images is which (its manifest's ch_* columns), for dropped images other than 3-channel ones. */
  tiffChannels?: Channels;
  /** The data's physical pixel size (the manifest's PhysicalSize columns, else the stated default): written into the page's OME-TIFFs, shown by the 3D view. */
  pixelSize?: PixelSize;
  /** The manifest's intensity_scale when all its cells share one (dropped files are divided by it, as in training); absent: the type's maximum. */
  intensityScale?: number;
  written: string;
}

/** Reads a file of the site by its relative path. */
export type Fetcher = (path: string) => Promise<ArrayBuffer>;

/** A model's data the page shows without running it: its site entry and every cell's embedding. */
export interface SiteModelData {
  role: ModelRole;
  meta: SiteModel;
  /** Per cell: μ and log σ² (latent values each), in the index's cell order. */
  mean: Float32Array[];
  logvar: Float32Array[];
}

/** A model ready to run: compiled from its sources, with its weights. */
export interface LoadedModel extends SiteModelData {
  model: CompiledModel;
  weights: Map<string, Float32Array>;
}

/** What the page itself reads (web/main.ts): the index, cells and embeddings; the models run in the worker. */
export interface SiteData {
  index: SiteIndex;
  models: Partial<Record<ModelRole, SiteModelData>>;
  /** Each cell's [3, ...size] values: membrane, DNA, structure. */
  cells: Float32Array[];
}

/** A whole site, its models compiled (what web/explorer.ts runs, in the model worker or in Node). */
export interface Site extends SiteData {
  models: Partial<Record<ModelRole, LoadedModel>>;
}

/** The page's fetcher: paths relative to `base` (the site's URL). */
export const httpFetcher =
  (base: string | URL): Fetcher =>
  async (path) => {
    const url = new URL(path, base);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`explorer: GET ${url} answered HTTP ${res.status}`);
    return res.arrayBuffer();
  };

const text = (b: ArrayBuffer) => new TextDecoder().decode(b);

function checkIndex(v: unknown): SiteIndex {
  const i = v as SiteIndex;
  if (!i || i.format !== SITE_FORMAT) throw new Error(`explorer: index.json is not a ${SITE_FORMAT} index (format ${JSON.stringify(i?.format)}); export the site again with statcell export-web`);
  if (!Array.isArray(i.size) || !Array.isArray(i.cells) || typeof i.cellData !== 'string' || typeof i.models !== 'object') throw new Error('explorer: index.json lacks size, cells, cellData or models');
  if (!i.models.reference && !i.models.target) throw new Error('explorer: index.json names no model (reference or target)');
  return i;
}

/** Float32 values of a file that must hold `count` × `per` of them. */
async function floats(fetcher: Fetcher, path: string, count: number, per: number): Promise<Float32Array> {
  const b = await fetcher(path);
  if (b.byteLength !== count * per * 4) throw new Error(`explorer: ${path} has ${b.byteLength} bytes, expected ${count} × ${per} float32 values (${count * per * 4} bytes)`);
  return new Float32Array(b);
}

/** A model's embedding file: `cells` × (μ, log σ²) of one latent width, read off its size (0 for a model without an encoder). */
async function loadModelData(fetcher: Fetcher, role: ModelRole, meta: SiteModel, cells: number): Promise<SiteModelData> {
  const b = await fetcher(meta.embedding);
  const latent = b.byteLength / (cells * 2 * 4);
  if (!Number.isInteger(latent)) throw new Error(`explorer: ${meta.embedding} has ${b.byteLength} bytes, not ${cells} cells × 2 × a latent width of float32 values`);
  const all = new Float32Array(b);
  const mean = Array.from({ length: latent ? cells : 0 }, (_, c) => all.subarray(2 * c * latent, (2 * c + 1) * latent));
  const logvar = Array.from({ length: latent ? cells : 0 }, (_, c) => all.subarray((2 * c + 1) * latent, (2 * c + 2) * latent));
  return { role, meta, mean, logvar };
}

async function loadModel(fetcher: Fetcher, data: SiteModelData): Promise<LoadedModel> {
  const { meta } = data;
  if (meta.precision !== undefined) parsePrecision(meta.precision, `explorer: index.json: model ${meta.name}'s precision`);
  const files = new Map<string, string>();
  for (const [name, path] of Object.entries(meta.files)) files.set(name, text(await fetcher(path)));
  // The same compiler as Node's: the source files the checkpoint kept, with the run's overrides.
  const model = compileModel(files, meta.entryFile, { overrides: meta.overrides, model: meta.name });
  const st = parseSafetensors(await fetcher(meta.weights));
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of st.tensors) weights.set(name, t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>));
  const enc = model.roles.encode;
  const latent = enc ? model.program(enc.entry, 1).graph.graph.outputs.get(enc.mean)!.shape[1] : 0;
  const has = data.mean[0]?.length ?? 0;
  if (has !== latent) throw new Error(`explorer: ${meta.embedding} holds embeddings of width ${has}, but ${meta.name} has a latent width of ${latent}`);
  return { ...data, model, weights };
}

/** Reads a site's index, cells and embeddings (no compiling: what the page shows). */
export async function loadSiteData(fetcher: Fetcher): Promise<SiteData> {
  const index = checkIndex(JSON.parse(text(await fetcher('index.json'))));
  const vox = index.size.reduce((a, b) => a * b, 1);
  const n = index.cells.length;
  const all = await floats(fetcher, index.cellData, n, 3 * vox);
  const cells = Array.from({ length: n }, (_, c) => all.subarray(3 * c * vox, 3 * (c + 1) * vox));
  const models: SiteData['models'] = {};
  for (const role of ['reference', 'target'] as const) {
    const meta = index.models[role];
    if (meta) models[role] = await loadModelData(fetcher, role, meta, n);
  }
  return { index, models, cells };
}

/** Reads and compiles a site: its index, models (sources, weights, embeddings) and cells. */
export async function loadSite(fetcher: Fetcher): Promise<Site> {
  const data = await loadSiteData(fetcher);
  const models: Site['models'] = {};
  for (const role of ['reference', 'target'] as const) {
    const m = data.models[role];
    if (m) models[role] = await loadModel(fetcher, m);
  }
  return { ...data, models };
}
