// Worker threads for the Wasm backend: N−1 workers (Node worker_threads) each instantiate the
// shared-memory kernels (build/kernels-mt.wasm) on the backend's one WebAssembly.Memory; run()
// posts each worker its kernel calls through a SharedArrayBuffer, runs piece 0 itself and blocks
// in Atomics.wait until all are done, so execute() stays synchronous. Node only: a browser main
// thread may not Atomics.wait, so there the backend keeps its single-thread path.

import type { WasmCall, WasmExports } from '../kernels/types.ts';

const SLOT_FLOATS = 4096;
/** How long the workers may make no progress on one launch before the pool counts as stuck. */
const STALL_MS = 120_000;
// Control words: [0] generation (−1: quit), [1] pieces pending, [2] error flag, [3] error length;
// from byte ERR_AT the first error's text, ERR_CHARS UTF-16 units (as in wasm-worker.mjs).
const ERR_AT = 16;
const ERR_CHARS = 512;

export class WasmThreadPool {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly index: Map<string, number>;
  private gen = 0;

  private constructor(
    private readonly workers: { terminate(): unknown }[], ctl: SharedArrayBuffer, cmd: SharedArrayBuffer,
    names: string[],
  ) {
    this.i32 = new Int32Array(ctl);
    this.f64 = new Float64Array(cmd);
    this.index = new Map(names.map((n, i) => [n, i]));
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Starts threads−1 workers; `tables(i)` is worker i's byte offset for its conv tables. */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number, names: string[], tables: number[]): Promise<WasmThreadPool> {
    const { Worker } = await import('node:worker_threads');
    const ctl = new SharedArrayBuffer(ERR_AT + 2 * ERR_CHARS);
    const cmd = new SharedArrayBuffer((threads - 1) * SLOT_FLOATS * 8);
    const workers = [];
    try {
      for (let slot = 0; slot < threads - 1; slot++) {
        workers.push(new Worker(new URL('./wasm-worker.mjs', import.meta.url), {
          workerData: { module, memory, ctl, cmd, slot, slotFloats: SLOT_FLOATS, names, tables: tables[slot] },
        }));
      }
      await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`wasm: worker exited (${code}) while starting`)));
      })));
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw e;
    }
    for (const w of workers) {
      w.unref(); // idle workers must not keep the process alive
    }
    return new WasmThreadPool(workers, ctl, cmd, names);
  }

  /** Runs pieces[0] here and pieces[i] on worker i−1, then `after` here; throws a worker's error. */
  run(k: WasmExports, pieces: WasmCall[][], after: WasmCall[] = []): void {
    const { i32, f64 } = this;
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
   * Blocks until every worker has counted its piece done. A watchdog: every second without progress
   * the generation is announced again (a worker that missed the wake-up takes it; a busy one is not
   * disturbed), and after `STALL_MS` with none the pool is declared stuck with an error, so a
   * lost worker stops the run (which resumes from its last checkpoint) instead of hanging it.
   */
  private waitForWorkers(): void {
    const { i32 } = this;
    let left = Atomics.load(i32, 1);
    let since = Date.now();
    while (left !== 0) {
      if (Atomics.wait(i32, 1, left, 1000) === 'timed-out') {
        Atomics.notify(i32, 0);
        if (Date.now() - since > STALL_MS) throw new Error(`wasm: ${left} of ${this.workers.length} worker thread(s) made no progress for ${STALL_MS / 1000} s; the thread pool is stuck (STATCELL_WASM_THREADS=1 runs without workers)`);
      }
      const now = Atomics.load(i32, 1);
      if (now !== left) since = Date.now();
      left = now;
    }
  }

  destroy(): void {
    Atomics.store(this.i32, 0, -1);
    Atomics.notify(this.i32, 0);
    for (const w of this.workers) void w.terminate();
  }
}
