// The page ↔ model worker protocol (web/worker.ts runs the models; the page, web/main.ts, talks to
// it through ModelWorker and RemoteExplorer). The models run in a dedicated Worker because the Wasm
// thread pool blocks in Atomics.wait, which a page's main thread may not do, and so that a long
// decode never freezes the page. Plain postMessage: a request {id, method, args}, an answer
// {id, ok, value | error}. Typed arrays are sent as copies of just their values (a view into a
// larger buffer would otherwise copy the whole buffer); answers transfer their buffers.

import type { BackendChoice } from '../runtime/device.ts';
import type { CellChannels } from '../session/feeds.ts';
import type { ModelRole, SiteData } from './site.ts';

/** What the worker opened, for the page's backend line and its warning. */
export interface Opened {
  kind: 'webgpu' | 'wasm';
  description: string;
  /** One line: which backend and why (runtime/device.ts backendReason). */
  reason: string;
  /** Wasm threads (1 on WebGPU). */
  threads: number;
  /** Why Wasm runs one thread ('' when it runs more, or on WebGPU). */
  oneThreadWhy: string;
  /** The WebGPU adapter the worker sees: none, a software one (SwiftShader, llvmpipe) or a hardware one; and its name. */
  gpu: { kind: 'none' | 'software' | 'hardware'; name: string };
  /** Milliseconds to fetch and compile the models, and to open the backend. */
  compileMs: number;
  openMs: number;
}

/** What the worker answers; every method but open runs web/explorer.ts on the opened site. */
export interface WorkerApi {
  /** Loads and compiles the site at `base`, opens the backend (`threads`: Wasm on that many threads, a test and benchmark aid). */
  open(base: string, choice: BackendChoice, threads?: number): Promise<Opened>;
  latent(role: ModelRole): number;
  encode(role: ModelRole, cells: CellChannels[], labels: string[]): Promise<{ mean: Float32Array[]; logvar: Float32Array[] }>;
  decode(role: ModelRole, z: Float32Array, cells: CellChannels[], labels: string[]): Promise<CellChannels[]>;
  reconstructCell(cell: CellChannels, label: string): Promise<CellChannels>;
  generate(seed: number, n: number): Promise<{ z: Float32Array; cells: CellChannels[] }>;
  structuresIn(cell: CellChannels, labels: string[], seed: number): Promise<Record<string, Float32Array>>;
  /** web/explorer.ts fingerprint() of site cell i, and of batches of `batch` (the "same numbers" tests). */
  fingerprint(i: number, batch: number): Promise<Record<string, Float32Array>>;
}

export type Method = keyof WorkerApi;
export interface Request {
  id: number;
  method: Method;
  args: unknown[];
}
export type Answer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** `v` with every typed array that views part of a larger buffer replaced by a copy of its values. */
export function compact<T>(v: T): T {
  if (ArrayBuffer.isView(v)) {
    const a = v as unknown as Float32Array;
    return (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice()) as T;
  }
  if (Array.isArray(v)) return v.map(compact) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, compact(x)])) as T;
  return v;
}

/** The buffers of the typed arrays in `v` (what an answer transfers; shared memory cannot be). */
export function buffers(v: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  if (ArrayBuffer.isView(v)) {
    if (v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  } else if (Array.isArray(v)) v.forEach((x) => buffers(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => buffers(x, out));
  return out;
}

/** The page's end: starts the worker and calls its methods. */
export class ModelWorker {
  private next = 1;
  private readonly waiting = new Map<number, { ok: (v: unknown) => void; err: (e: Error) => void }>();

  constructor(private readonly worker: Worker) {
    worker.addEventListener('message', (e: MessageEvent<Answer>) => {
      const a = e.data;
      const w = this.waiting.get(a.id);
      if (!w) return;
      this.waiting.delete(a.id);
      if (a.ok) w.ok(a.value);
      else w.err(new Error(a.error));
    });
    // A worker that cannot load, or dies: every pending call fails with the reason.
    worker.addEventListener('error', (e) => {
      const err = new Error(`the model worker failed: ${e.message || 'its script did not load'}`);
      for (const w of this.waiting.values()) w.err(err);
      this.waiting.clear();
    });
  }

  static start(): ModelWorker {
    return new ModelWorker(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }));
  }

  call<M extends Method>(method: M, ...args: Parameters<WorkerApi[M]>): Promise<Awaited<ReturnType<WorkerApi[M]>>> {
    const id = this.next++;
    return new Promise((ok, err) => {
      this.waiting.set(id, { ok: ok as (v: unknown) => void, err });
      this.worker.postMessage({ id, method, args: compact(args) } satisfies Request);
    });
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/** web/explorer.ts's Explorer as the page uses it, its models in the worker. */
export class RemoteExplorer {
  private readonly latents = new Map<ModelRole, number>();

  constructor(readonly site: SiteData, readonly worker: ModelWorker) {}

  get size(): number[] {
    return this.site.index.size;
  }

  /** The latent width of a model (asked once). */
  async latent(role: ModelRole): Promise<number> {
    if (!this.latents.has(role)) this.latents.set(role, await this.worker.call('latent', role));
    return this.latents.get(role)!;
  }

  encode(role: ModelRole, cells: CellChannels[], labels: string[]) {
    return this.worker.call('encode', role, cells, labels);
  }
  decode(role: ModelRole, z: Float32Array, cells: CellChannels[], labels: string[]) {
    return this.worker.call('decode', role, z, cells, labels);
  }
  reconstructCell(cell: CellChannels, label: string) {
    return this.worker.call('reconstructCell', cell, label);
  }
  generate(seed: number, n: number) {
    return this.worker.call('generate', seed, n);
  }
  structuresIn(cell: CellChannels, labels: string[], seed: number) {
    return this.worker.call('structuresIn', cell, labels, seed);
  }
  fingerprint(i = 0, batch = 0) {
    return this.worker.call('fingerprint', i, batch);
  }
}
