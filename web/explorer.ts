// What the explorer computes, on a backend, for a loaded site (web/site.ts): reconstructions,
// decodes of a latent code (the walks), cells generated from z ~ N(0, I), structures generated
// in a cell (the integrated cell), embeddings of new cells, the per-dimension KL. Models are
// called through their entry roles (encode, decode, generate) and fed through session/feeds.ts,
// as the command line does. Browser-safe: the page and the Node tests run this same code.

import { oracle } from '../kernels/oracle.ts';
import type { Backend } from '../runtime/backend.ts';
import { channelsOf, feedsFrom, imageChannels, inputWithRole, type CellChannels } from '../session/feeds.ts';
import { ModelRuntime } from '../session/model.ts';
import type { LoadedModel, ModelRole, Site, SiteData } from './site.ts';

/** A site cell's channels by name (views into the site's data). */
export function siteCell(site: Pick<SiteData, 'cells'>, i: number): CellChannels {
  const d = site.cells[i];
  const vox = d.length / 3;
  return { membrane: d.subarray(0, vox), dna: d.subarray(vox, 2 * vox), structure: d.subarray(2 * vox) };
}

/** Per latent dim: the mean over cells of KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²). */
export function klPerDim(m: Pick<LoadedModel, 'mean' | 'logvar'>): Float64Array {
  const L = m.mean[0]?.length ?? 0;
  const kl = new Float64Array(L);
  m.mean.forEach((mu, c) => {
    const lv = m.logvar[c];
    for (let d = 0; d < L; d++) kl[d] += (0.5 * (mu[d] * mu[d] + Math.exp(lv[d]) - 1 - lv[d])) / m.mean.length;
  });
  return kl;
}

/** The `k` dims of largest KL, largest first. */
export const topDims = (kl: ArrayLike<number>, k: number): number[] =>
  Array.from(kl, (v, d) => [v, d])
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, d]) => d);

/** n × L standard normal values from the Philox stream of `seed` (the same on every host). */
export const normalDraws = (seed: number, n: number, L: number): Float32Array => Float32Array.from(oracle.call('randn', [], { shape: [n * L], seed, offset: 0 })[0].data);

export class Explorer {
  readonly runtimes: Partial<Record<ModelRole, ModelRuntime>> = {};

  constructor(readonly site: Site, readonly backend: Backend) {
    for (const role of ['reference', 'target'] as const) {
      const m = site.models[role];
      if (!m) continue;
      const rt = new ModelRuntime(backend, m.model, { precision: m.meta.precision });
      rt.writeAll(m.weights, m.meta.weights);
      this.runtimes[role] = rt;
    }
  }

  get size(): number[] {
    return this.site.index.size;
  }

  private loaded(role: ModelRole): { m: LoadedModel; rt: ModelRuntime } {
    const m = this.site.models[role];
    const rt = this.runtimes[role];
    if (!m || !rt) throw new Error(`explorer: this site has no ${role} model`);
    return { m, rt };
  }

  /** The latent width of a model (from its encoder or decoder). */
  latent(role: ModelRole): number {
    const { m } = this.loaded(role);
    const dec = m.model.roles.decode;
    if (!dec) throw m.model.error('SC5001', { need: 'entry', model: m.model.name, role: 'decode', purpose: 'decode latent codes in the explorer' });
    return m.model.program(dec.entry, 1).graph.inputs.find((i) => i.name === dec.latent)!.shape[1];
  }

  /** μ and log σ² of each cell (its channels, with its label for a conditioned model). */
  async encode(role: ModelRole, cells: CellChannels[], labels: string[]): Promise<{ mean: Float32Array[]; logvar: Float32Array[] }> {
    const { m, rt } = this.loaded(role);
    const enc = m.model.roles.encode;
    if (!enc) throw m.model.error('SC5001', { need: 'entry', model: m.model.name, role: 'encode', purpose: 'embed cells in the explorer' });
    const n = cells.length;
    const out = await rt.run(enc.entry, feedsFrom(m.model, cells, labels, m.meta.labels), n);
    const L = out[enc.mean].length / n;
    const rows = (a: Float32Array) => Array.from({ length: n }, (_, c) => a.slice(c * L, (c + 1) * L));
    return { mean: rows(out[enc.mean]), logvar: rows(out[enc.logvar]) };
  }

  /** The image channels decoded from latent codes z (n × L), given each cell's reference channels and label (conditioned models). */
  async decode(role: ModelRole, z: Float32Array, cells: CellChannels[], labels: string[]): Promise<CellChannels[]> {
    const { m, rt } = this.loaded(role);
    const dec = m.model.roles.decode!;
    const n = z.length / this.latent(role);
    const feeds = feedsFrom(m.model, cells, labels, m.meta.labels, ['reference', 'label']);
    const out = (await rt.run(dec.entry, { ...feeds, [dec.latent]: z }, n))[dec.output];
    const names = channelsOf(inputWithRole(m.model, 'image', 'the explorer'));
    return Array.from({ length: n }, (_, i) => imageChannels(out, names, i, n));
  }

  /** A site cell beside its reconstruction (decoded from its μ): the reference's channels, and the target's structure when there is a target model. */
  async reconstruct(i: number): Promise<CellChannels> {
    const cell = siteCell(this.site, i);
    const label = this.site.index.cells[i].label;
    return this.reconstructCell(cell, label);
  }

  async reconstructCell(cell: CellChannels, label: string): Promise<CellChannels> {
    const out: CellChannels = {};
    for (const role of ['reference', 'target'] as const) {
      if (!this.site.models[role]) continue;
      const { mean } = await this.encode(role, [cell], [label]);
      Object.assign(out, (await this.decode(role, mean[0], [cell], [label]))[0]);
    }
    return out;
  }

  /** n whole cells from z ~ N(0, I) of the reference model (Philox stream `seed`). */
  async generate(seed: number, n: number): Promise<{ z: Float32Array; cells: CellChannels[] }> {
    const z = normalDraws(seed, n, this.latent('reference'));
    const cells = await this.decode('reference', z, [], []);
    return { z, cells };
  }

  /** Each label's structure generated in a cell (the target model's generator given its reference channels), draws from stream `seed`. */
  async structuresIn(cell: CellChannels, labels: string[], seed: number): Promise<Record<string, Float32Array>> {
    if (!labels.length) return {};
    const z = normalDraws(seed, labels.length, this.latent('target'));
    const cells = labels.map(() => cell);
    const out = await this.decode('target', z, cells, labels);
    return Object.fromEntries(labels.map((l, k) => [l, out[k].structure!]));
  }

  destroy(): void {
    for (const rt of Object.values(this.runtimes)) rt?.destroy();
  }
}

/**
 * The outputs the page and Node are compared on (the "same numbers" test): for site cell `i`,
 * each model's μ and log σ², its reconstruction, and the structures of the first two labels
 * generated in it; and a whole cell generated from z ~ N(0, I) of stream 1. With `batch` > 0,
 * also batches of that many (the Wasm pool splits the conv family over a batch's images): the
 * embeddings of cells i … i + batch − 1 and `batch` whole cells generated from stream 2.
 */
export async function fingerprint(ex: Explorer, i = 0, batch = 0): Promise<Record<string, Float32Array>> {
  const cell = siteCell(ex.site, i);
  const label = ex.site.index.cells[i].label;
  const out: Record<string, Float32Array> = {};
  for (const role of ['reference', 'target'] as const) {
    if (!ex.site.models[role]) continue;
    const { mean, logvar } = await ex.encode(role, [cell], [label]);
    out[`${role}.mean`] = mean[0];
    out[`${role}.logvar`] = logvar[0];
  }
  for (const [k, v] of Object.entries(await ex.reconstructCell(cell, label))) out[`recon.${k}`] = Float32Array.from(v!);
  if (ex.site.models.target)
    for (const [k, v] of Object.entries(await ex.structuresIn(cell, ex.site.models.target.meta.labels.slice(0, 2), 1))) out[`structure.${k}`] = Float32Array.from(v);
  if (ex.site.models.reference) for (const [k, v] of Object.entries((await ex.generate(1, 1)).cells[0])) out[`generated.${k}`] = Float32Array.from(v!);
  if (batch > 0) {
    const idx = Array.from({ length: batch }, (_, k) => (i + k) % ex.site.cells.length);
    const cells = idx.map((c) => siteCell(ex.site, c));
    const labels = idx.map((c) => ex.site.index.cells[c].label);
    for (const role of ['reference', 'target'] as const) {
      if (!ex.site.models[role]?.model.roles.encode) continue;
      const { mean, logvar } = await ex.encode(role, cells, labels);
      out[`batch.${role}.mean`] = Float32Array.from(mean.flatMap((m) => Array.from(m)));
      out[`batch.${role}.logvar`] = Float32Array.from(logvar.flatMap((m) => Array.from(m)));
    }
    if (ex.site.models.reference)
      (await ex.generate(2, batch)).cells.forEach((c, k) => Object.entries(c).forEach(([ch, v]) => (out[`batch.generated.${k}.${ch}`] = Float32Array.from(v!))));
  }
  return out;
}
