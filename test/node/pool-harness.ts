// A Wasm thread pool on its own (runtime/wasm-threads.ts) for the pool test and the long stress
// script (bench/pool-stress.ts): every thread adds a source row into its own accumulator with the
// kernels' vec_add, so after r launches each accumulator holds exactly r · source — a piece run
// twice, skipped, or read before its worker finished shows up as a wrong count.

import { readFileSync } from 'node:fs';
import { type PoolOptions, WasmThreadPool } from '../../runtime/wasm-threads.ts';
import type { WasmCall, WasmExports } from '../../kernels/types.ts';

export interface Harness {
  pool: WasmThreadPool;
  /** One launch: thread t adds the source into accumulator t. */
  launch(): void;
  /** The accumulators' values that are not `runs` (0 when every launch ran exactly once per thread). */
  wrong(runs: number): number;
  destroy(): void;
}

const N = 64;

export async function poolHarness(threads: number, opts: PoolOptions = {}): Promise<Harness> {
  const bytes = readFileSync(new URL('../../build/kernels-mt.wasm', import.meta.url));
  const module = await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 4096, shared: true });
  const instance = await WebAssembly.instantiate(module, { env: { memory, abort: () => { throw new Error('wasm: kernel aborted'); }, seed: () => 0, trace: () => {} } });
  const k = instance.exports as unknown as WasmExports & { __heap_base?: WebAssembly.Global; CONV_TABLE_BYTES: WebAssembly.Global };
  const names = Object.keys(k).filter((n) => typeof k[n] === 'function');
  // As in runtime/wasm.ts: the heap starts at __heap_base where the build exports it.
  let at = Math.ceil(Number(k.__heap_base?.value ?? 65536) / 16) * 16;
  const take = (b: number) => ((at += Math.ceil(b / 16) * 16), at - Math.ceil(b / 16) * 16);
  const tables = Array.from({ length: threads - 1 }, () => take(Number(k.CONV_TABLE_BYTES.value)));
  const src = take(N * 4);
  const acc = Array.from({ length: threads }, () => take(N * 4));
  new Float32Array(memory.buffer, src, N).fill(1);
  const pool = await WasmThreadPool.start(module, memory, threads, names, tables, opts);
  const pieces = acc.map((a): WasmCall[] => [['vec_add', a, src, N]]);
  return {
    pool,
    launch: () => pool.run(k, pieces),
    wrong: (runs) => acc.reduce((n, a) => n + new Float32Array(memory.buffer, a, N).filter((v) => v !== runs).length, 0),
    destroy: () => pool.destroy(),
  };
}
