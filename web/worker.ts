// The explorer's model worker: loads and compiles the site (web/site.ts), opens the backend
// (runtime/device.ts: WebGPU through the worker's navigator.gpu, or Wasm) and answers the page's
// calls (web/rpc.ts) by running web/explorer.ts. Wasm runs its thread pool here when the page is
// cross-origin isolated: a worker may block in Atomics.wait, a page's main thread may not.
// WebGPU runs here too, so that every backend has one code path and the page never waits on a
// model (a decode is a message away either way).

import { backendReason, openBackend, summarize } from '../runtime/device.ts';
import { WasmBackend } from '../runtime/wasm.ts';
import { Explorer, fingerprint } from './explorer.ts';
import { buffers, compact, type Answer, type Opened, type Request, type WorkerApi } from './rpc.ts';
import { httpFetcher, loadSite } from './site.ts';

let ex: Explorer | null = null;
const explorer = (): Explorer => {
  if (!ex) throw new Error('explorer worker: call open first');
  return ex;
};

async function gpuSeen(): Promise<Opened['gpu']> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const a = gpu ? await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null) : null;
  if (!a) return { kind: 'none', name: gpu ? 'navigator.gpu gave no adapter' : 'this browser has no navigator.gpu in workers' };
  const s = summarize(a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean });
  return { kind: s.software ? 'software' : 'hardware', name: s.name };
}

const api: WorkerApi = {
  async open(base, choice, threads) {
    const t0 = performance.now();
    const site = await loadSite(httpFetcher(base));
    const t1 = performance.now();
    // ?threads=N (tests, benchmark): Wasm on N threads, whatever the choice.
    const opened = threads ? await WasmBackend.create({ threads }).then((backend) => ({ backend, reason: backendReason('wasm', backend) })) : await openBackend(choice);
    const be = opened.backend;
    ex = new Explorer(site, be);
    const wasm = be instanceof WasmBackend ? be : null;
    return {
      kind: be.kind,
      description: be.description,
      reason: opened.reason,
      threads: wasm?.threads ?? 1,
      oneThreadWhy: wasm?.oneThreadWhy ?? '',
      gpu: await gpuSeen(),
      compileMs: t1 - t0,
      openMs: performance.now() - t1,
    };
  },
  latent: (role) => explorer().latent(role),
  encode: (role, cells, labels) => explorer().encode(role, cells, labels),
  decode: (role, z, cells, labels) => explorer().decode(role, z, cells, labels),
  reconstructCell: (cell, label) => explorer().reconstructCell(cell, label),
  generate: (seed, n) => explorer().generate(seed, n),
  structuresIn: (cell, labels, seed) => explorer().structuresIn(cell, labels, seed),
  fingerprint: (i, batch) => fingerprint(explorer(), i, batch),
};

// One call at a time, in order: the backend's launches are not reentrant.
let queue: Promise<unknown> = Promise.resolve();
self.addEventListener('message', (e: MessageEvent<Request>) => {
  const { id, method, args } = e.data;
  queue = queue.then(async () => {
    let a: Answer;
    try {
      const value = compact(await (api[method] as (...a: unknown[]) => unknown)(...args));
      a = { id, ok: true, value };
    } catch (err) {
      a = { id, ok: false, error: (err as Error)?.message ?? String(err) };
    }
    (self as unknown as Worker).postMessage(a, a.ok ? buffers(a.value) : []);
  });
});
