// Worker threads for the Wasm backend: N−1 workers each instantiate the
// shared-memory kernels (build/kernels-mt.wasm) on the backend's one WebAssembly.Memory; run()
// posts each worker its kernel calls through a SharedArrayBuffer, runs piece 0 itself and blocks
// in Atomics.wait until all are done, so execute() stays synchronous. In Node the workers are
// worker_threads; in a browser they are module Workers, and the pool runs only inside a worker
// itself (the explorer's model worker, web/worker.ts): a page's main thread may not Atomics.wait.

import type { WasmCall, WasmExports } from '../kernels/types.ts';

const SLOT_FLOATS = 4096;
/** How long the workers may make no progress on one launch before the pool counts as stuck. */
const STALL_MS = 120_000;

export interface PoolOptions {
  /** No progress for this long on one launch is an error (default STALL_MS, or env STATCELL_WASM_STALL_MS). */
  stallMs?: number;
  /** Test aid: worker 1 hangs on its n-th launch without counting it done (the watchdog test). */
  stallAt?: number;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
/** How long a browser worker thread may take to start and instantiate the kernels. */
const BROWSER_START_MS = 30_000;

function stallMsOf(asked: number | undefined): number {
  const env = isNode ? process.env.STATCELL_WASM_STALL_MS : undefined;
  const v = asked ?? (env ? Number(env) : STALL_MS);
  if (!(v > 0)) throw new Error(`wasm: the thread pool's stall timeout must be a positive number of ms, got ${asked ?? env} (option stallMs or STATCELL_WASM_STALL_MS)`);
  return v;
}
// Control words: [0] generation (−1: quit), [1] pieces pending, [2] error flag, [3] error length;
// from byte ERR_AT the first error's text, ERR_CHARS UTF-16 units (as in wasm-worker.mjs).
const ERR_AT = 16;
const ERR_CHARS = 512;

interface PoolWorker {
  /** Resolves once the worker has instantiated the kernels; rejects if it fails or exits first. */
  ready: Promise<void>;
  terminate(): unknown;
}

/** One worker running wasm-worker.mjs: a Node worker_threads Worker (unref'd once ready: idle
 * workers must not keep the process alive), or a browser module Worker handed its data in a first message. */
async function startWorker(data: Record<string, unknown>): Promise<PoolWorker> {
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(new URL('./wasm-worker.mjs', import.meta.url), { workerData: data });
    const ready = new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`wasm: worker exited (${code}) while starting`)));
    }).then(() => void w.unref()); // unref'd only once started, or the process could exit while waiting
    return { ready, terminate: () => w.terminate() };
  }
  const w = new Worker(new URL('./wasm-worker.mjs', import.meta.url), { type: 'module' });
  const ready = new Promise<void>((resolve, reject) => {
    // A browser may neither start a nested worker nor say why: then the backend runs 1 thread.
    const timer = setTimeout(() => reject(new Error(`wasm: a worker thread did not start within ${BROWSER_START_MS / 1000} s`)), BROWSER_START_MS);
    w.addEventListener('message', () => (clearTimeout(timer), resolve()), { once: true });
    w.addEventListener('error', (e) => (clearTimeout(timer), reject(new Error(`wasm: a worker thread failed to start: ${e.message || 'no message (could its script not load?)'}`))), { once: true });
  });
  w.postMessage(data); // the module and the shared memory and buffers are shared, not copied
  return { ready, terminate: () => w.terminate() };
}

export class WasmThreadPool {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly index: Map<string, number>;
  private gen = 0;
  /** Set once a launch stalled: the pool's state is unknown, it runs nothing more. */
  private broken: Error | null = null;

  private constructor(
    private readonly workers: PoolWorker[], ctl: SharedArrayBuffer, cmd: SharedArrayBuffer,
    names: string[], private readonly stallMs: number,
  ) {
    this.i32 = new Int32Array(ctl);
    this.f64 = new Float64Array(cmd);
    this.index = new Map(names.map((n, i) => [n, i]));
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Starts threads−1 workers; `tables(i)` is worker i's byte offset for its conv tables. */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number, names: string[], tables: number[], opts: PoolOptions = {}): Promise<WasmThreadPool> {
    const stallMs = stallMsOf(opts.stallMs);
    const ctl = new SharedArrayBuffer(ERR_AT + 2 * ERR_CHARS);
    const cmd = new SharedArrayBuffer((threads - 1) * SLOT_FLOATS * 8);
    const workers: PoolWorker[] = [];
    try {
      for (let slot = 0; slot < threads - 1; slot++) {
        const data = { module, memory, ctl, cmd, slot, slotFloats: SLOT_FLOATS, names, tables: tables[slot], stallAt: slot === 0 ? opts.stallAt : undefined };
        workers.push(await startWorker(data));
      }
      await Promise.all(workers.map((w) => w.ready));
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw e;
    }
    return new WasmThreadPool(workers, ctl, cmd, names, stallMs);
  }

  /** Runs pieces[0] here and pieces[i] on worker i−1, then `after` here; throws a worker's error. */
  run(k: WasmExports, pieces: WasmCall[][], after: WasmCall[] = []): void {
    const { i32, f64 } = this;
    if (this.broken) throw this.broken;
    if (pieces.length > this.threads) throw new Error(`wasm: ${pieces.length} pieces for ${this.threads} threads`);
    for (let w = 0; w < this.workers.length; w++) {
      const calls = pieces[w + 1] ?? [];
      let p = w * SLOT_FLOATS;
      f64[p++] = calls.length;
      for (const [fn, ...args] of calls) {
        const idx = this.index.get(fn);
        if (idx === undefined) throw new Error(`wasm: no kernel ${fn}`);
        if (p + 2 + args.length > (w + 1) * SLOT_FLOATS) throw new Error('wasm: too many kernel calls for a worker slot');
        f64[p++] = idx;
        f64[p++] = args.length;
        for (const a of args) f64[p++] = a;
      }
    }
    // Order matters: the slots and the pending count are written before the generation that
    // publishes them (seq-cst stores), and a worker acts only on a generation it has not run.
    Atomics.store(i32, 2, 0);
    Atomics.store(i32, 1, this.workers.length);
    this.gen = (this.gen + 1) & 0x3fffffff;
    Atomics.store(i32, 0, this.gen);
    Atomics.notify(i32, 0);
    let mine: unknown = null;
    try {
      for (const [fn, ...args] of pieces[0] ?? []) k[fn](...args);
    } catch (e) {
      mine = e;
    }
    this.waitForWorkers();
    if (mine) throw mine;
    if (Atomics.load(i32, 2)) {
      const u16 = new Uint16Array(i32.buffer, ERR_AT, Atomics.load(i32, 3));
      throw new Error(`wasm: a worker thread failed: ${String.fromCharCode(...u16)}`);
    }
    for (const [fn, ...args] of after) k[fn](...args);
  }

  /**
   * Blocks until every worker has counted its piece done. Atomics.wait compares and sleeps
   * atomically, so neither side can miss the other's store; the timed wait is only a watchdog:
   * after `stallMs` without progress the pool is declared stuck with an error, so a lost worker
   * stops the run (which resumes from its last checkpoint) instead of hanging it. (It used to also
   * re-notify the workers each second; a worker took that spurious wake-up for a new launch, ran
   * its piece twice and drove the count to −1: the hang of issue 11.)
   */
  private waitForWorkers(): void {
    const { i32 } = this;
    let left = Atomics.load(i32, 1);
    let since = Date.now();
    while (left !== 0) {
      if (left < 0) throw (this.broken = new Error(`wasm: the thread pool's pending count is ${left}; a worker counted a piece twice (a bug)`));
      const tick = Math.min(1000, this.stallMs);
      if (Atomics.wait(i32, 1, left, tick) === 'timed-out' && Date.now() - since >= this.stallMs)
        throw (this.broken = new Error(`wasm: ${left} of ${this.workers.length} worker thread(s) made no progress for ${this.stallMs / 1000} s; the thread pool is stuck (STATCELL_WASM_THREADS=1 runs without workers; STATCELL_WASM_STALL_MS sets this timeout)`));
      const now = Atomics.load(i32, 1);
      if (now !== left) since = Date.now();
      left = now;
    }
  }

  /** Test aid: wakes every waiting worker without a new launch; a worker must run nothing. */
  spuriousWake(): void {
    Atomics.notify(this.i32, 0);
  }

  destroy(): void {
    Atomics.store(this.i32, 0, -1);
    Atomics.notify(this.i32, 0);
    for (const w of this.workers) void w.terminate();
  }
}
