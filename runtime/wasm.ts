// Wasm backend: the AssemblyScript kernels (build/kernels.wasm, SIMD) over one memory that this
// module owns. Buffers are 16-byte-aligned ranges of that memory handed out by a first-fit
// free list; kernels receive byte offsets. Launches run synchronously, in order.
// With threads (Node or a browser worker, SharedArrayBuffer available): the memory is shared, the module is the
// shared-memory build (build/kernels-mt.wasm) and ops whose plan can split (matmul, the conv
// family) run on a worker pool (wasm-threads.ts); anything failing there falls back to 1 thread.

import type { Attrs, OpDef, Shape, WasmCall, WasmExports, WasmPlan } from '../kernels/types.ts';
import { OPCODES } from '../kernels/elementwise/pointwise.ts';
import { checkOutputs, type Backend, type DeviceBuffer, type PreparedLaunch } from './backend.ts';
import { WasmThreadPool } from './wasm-threads.ts';

const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024 - PAGE; // wasm32

export class WasmBuffer implements DeviceBuffer {
  constructor(readonly offset: number, readonly bytes: number, readonly elements: number) {}
}

interface WasmLaunch extends PreparedLaunch {
  def: OpDef;
  inShapes: Shape[];
  plan: WasmPlan;
  bufs: number[];
  scratch: WasmBuffer[];
  /** The threaded form, when the plan splits: each piece's calls, calls after, its scratch. */
  par?: { pieces: WasmCall[][]; after?: WasmCall[]; scratch: WasmBuffer[] };
}

export interface WasmBackendOptions {
  /**
   * Threads for matmul and the conv family (Node, or a cross-origin isolated browser worker).
   * Default: env STATCELL_WASM_THREADS, else the cores. 1 is the single-thread module and path.
   */
  threads?: number;
  /**
   * Fused multiply-add in the GEMM micro-kernel (relaxed SIMD: build/kernels*-fma.wasm): one
   * rounding instead of two, 1.2–1.4× faster where the CPU has FMA. 'auto' (the default) takes it
   * where the engine has relaxed SIMD (Chromium ≥ 114; Node 20 behind a V8 flag, turned on at
   * load), else the exact build. Its bits differ from the exact build's and may differ between
   * machines (relaxed SIMD lets the engine choose); on one machine they are the same run to run
   * and for any thread count. true requires it (an error without relaxed SIMD), false is the
   * exact build everywhere. Default: env STATCELL_WASM_FMA (0, 1 or auto), else 'auto'.
   */
  fma?: boolean | 'auto';
}

/** Whether this engine runs relaxed SIMD (f32x4.relaxed_madd): a 1-function module validated. */
export function hasRelaxedSimd(): boolean {
  // (func (result v128) v128.const 0 v128.const 0 v128.const 0 f32x4.relaxed_madd)
  const c = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...c, ...c, ...c, 0xfd, 0x85, 0x02, 0x0b];
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0, 0, 0, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, body.length + 2, 0x01, body.length, ...body];
  return WebAssembly.validate(new Uint8Array(bytes));
}

async function fmaWanted(asked: boolean | 'auto' | undefined): Promise<boolean> {
  const env = typeof process !== 'undefined' ? process.env?.STATCELL_WASM_FMA : undefined;
  const want = asked ?? (env === '0' ? false : env === '1' ? true : 'auto');
  if (want === false) return false;
  if (!hasRelaxedSimd() && typeof process !== 'undefined' && process.versions?.node) {
    // Node 20's V8 has relaxed SIMD behind a flag; it may be set at run time, before compiling.
    (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
  }
  if (hasRelaxedSimd()) return true;
  if (want === 'auto') return false;
  throw new Error('wasm: fma was asked for but this engine has no relaxed SIMD (Chromium ≥ 114 and Node have it); leave fma on auto, or off for the exact build');
}

/**
 * Whether this thread can run the pool: SharedArrayBuffer (in a browser only when the page is
 * cross-origin isolated) and a thread that may block in Atomics.wait (Node, or a browser worker;
 * not a page's main thread).
 */
export function threadsPossible(): { ok: boolean; why: string } {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (typeof SharedArrayBuffer === 'undefined')
    return { ok: false, why: isNode ? 'this Node has no SharedArrayBuffer' : 'the page is not cross-origin isolated (the host sends no COOP/COEP headers), so there is no SharedArrayBuffer' };
  if (!isNode && typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === 'undefined')
    return { ok: false, why: "a page's main thread may not block in Atomics.wait (the explorer runs its models in a worker)" };
  if (!isNode && typeof Worker === 'undefined') return { ok: false, why: 'this browser cannot start a worker from a worker' };
  return { ok: true, why: '' };
}

/** The thread count asked for, or 1 where threads cannot work (threadsPossible). Default: env
 * STATCELL_WASM_THREADS, else the cores (os.availableParallelism, navigator.hardwareConcurrency). */
async function threadsWanted(asked: number | undefined): Promise<number> {
  if (!threadsPossible().ok) return 1;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  const env = isNode ? process.env.STATCELL_WASM_THREADS : undefined;
  let n = asked ?? (env ? Number(env) : undefined);
  if (n === undefined) {
    if (!isNode) n = globalThis.navigator?.hardwareConcurrency || 1;
    else
      try {
        n = (await import('node:os')).availableParallelism();
      } catch {
        return 1; // a bundle without node:os
      }
  }
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`wasm: threads must be a positive integer, got ${asked ?? env} (option threads or STATCELL_WASM_THREADS)`);
  return n;
}

/** Literal URLs, so that a bundler (Vite for the explorer page) ships these four files and no other. */
const MODULE_URLS: Record<string, () => URL> = {
  'kernels.wasm': () => new URL('../build/kernels.wasm', import.meta.url),
  'kernels-mt.wasm': () => new URL('../build/kernels-mt.wasm', import.meta.url),
  'kernels-fma.wasm': () => new URL('../build/kernels-fma.wasm', import.meta.url),
  'kernels-mt-fma.wasm': () => new URL('../build/kernels-mt-fma.wasm', import.meta.url),
};

async function loadModuleBytes(file: string): Promise<BufferSource> {
  const url = MODULE_URLS[file]();
  if (url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    try {
      return await readFile(url);
    } catch {
      throw new Error(`wasm: ${url.pathname} is missing; build the kernels with \`npm run build:wasm\``);
    }
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`wasm: could not load ${url} (HTTP ${res.status})`);
  return res.arrayBuffer();
}

/** A module whose opcodes differ from the pointwise op table (checkOpcodes). */
export class OpcodeMismatchError extends Error {
  name = 'OpcodeMismatchError';
}

/**
 * The AssemblyScript kernels are compiled ahead, so their opcodes for the pointwise ops (and the
 * fused interpreter's own instructions) cannot come from the table in
 * kernels/elementwise/pointwise.ts: the module exports each as a global OPCODE_<name>, and this
 * throws, naming every op that differs, unless those exports are exactly `table`.
 */
export function checkOpcodes(exports: WasmExports, table: ReadonlyMap<string, number> = OPCODES, file = 'build/kernels.wasm'): void {
  const PREFIX = 'OPCODE_';
  const module = new Map<string, number>();
  for (const [name, v] of Object.entries(exports)) {
    if (name.startsWith(PREFIX) && (v as unknown) instanceof WebAssembly.Global) module.set(name.slice(PREFIX.length), Number((v as unknown as WebAssembly.Global).value));
  }
  const problems: string[] = [];
  for (const [name, code] of table) {
    const got = module.get(name);
    if (got === undefined) problems.push(`'${name}' is opcode ${code} in the table but the module has no ${PREFIX}${name}`);
    else if (got !== code) problems.push(`'${name}' is opcode ${code} in the table but ${got} in the module`);
  }
  for (const [name, got] of module) if (!table.has(name)) problems.push(`'${name}' is opcode ${got} in the module but not in the table`);
  if (problems.length)
    throw new OpcodeMismatchError(
      `wasm: ${file} does not match the pointwise op table (kernels/elementwise/pointwise.ts):\n  ${problems.join('\n  ')}\n` +
        'Make kernels/elementwise/opcodes.as.ts (and pointwise.as.ts) agree with the table, then rebuild with `npm run build:wasm`',
    );
}

export class WasmBackend implements Backend {
  readonly kind = 'wasm' as const;
  readonly description: string;
  readonly limits = { maxBufferBytes: MAX_BYTES, totalBytes: MAX_BYTES };
  /** Free ranges [offset, bytes], sorted by offset. */
  private freeList: [number, number][] = [];

  private pool: WasmThreadPool | null = null;
  /** Launches run split over the thread pool so far (tests check that a comparison across thread counts splits at all). */
  splitLaunches = 0;
  /** Why this backend runs one thread ('' when it runs more): what the explorer page shows. */
  readonly oneThreadWhy: string = '';

  private constructor(readonly memory: WebAssembly.Memory, readonly exports: WasmExports, heapBase: number) {
    const start = align(heapBase, 16);
    this.freeList.push([start, memory.buffer.byteLength - start]);
    this.description = 'WebAssembly SIMD, 1 thread';
  }

  /** Threads that split ops run on (1: the single-thread path). */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const threads = await threadsWanted(options.threads);
    const fma = await fmaWanted(options.fma);
    const suffix = fma ? '-fma.wasm' : '.wasm';
    const possible = threadsPossible();
    let why = threads > 1 ? '' : possible.ok ? '1 thread was asked for, or there is 1 core' : possible.why;
    if (threads > 1) {
      try {
        return await WasmBackend.createThreaded(threads, `kernels-mt${suffix}`);
      } catch (e) {
        if (e instanceof OpcodeMismatchError) throw e; // a stale build is an error, not a reason for 1 thread
        // No shared-memory build, no workers (e.g. a bundler without worker_threads): 1 thread.
        why = `the worker threads could not start (${(e as Error).message ?? e})`;
      }
    }
    const be = await WasmBackend.instantiate(await WebAssembly.compile(await loadModuleBytes(`kernels${suffix}`)), new WebAssembly.Memory({ initial: 256 }), `kernels${suffix}`);
    if (fma) (be as { description: string }).description = 'WebAssembly SIMD + relaxed FMA, 1 thread';
    (be as { oneThreadWhy: string }).oneThreadWhy = why;
    return be;
  }

  private static async instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory, file: string): Promise<WasmBackend> {
    const instance = await WebAssembly.instantiate(module, {
      env: {
        memory,
        abort: (_msg: number, _file: number, line: number, col: number) => {
          throw new Error(`wasm: kernel aborted at kernels ${line}:${col}`);
        },
        seed: () => Date.now(),
        trace: () => {},
      },
    });
    const exports = instance.exports as unknown as WasmExports & { __heap_base?: WebAssembly.Global };
    checkOpcodes(exports, OPCODES, `build/${file}`);
    const heapBase = exports.__heap_base ? Number((exports.__heap_base as unknown as WebAssembly.Global).value) : 65536;
    return new WasmBackend(memory, exports, heapBase);
  }

  private static async createThreaded(threads: number, file: string): Promise<WasmBackend> {
    const module = await WebAssembly.compile(await loadModuleBytes(file));
    const memory = new WebAssembly.Memory({ initial: 256, maximum: MAX_BYTES / PAGE, shared: true });
    const be = await WasmBackend.instantiate(module, memory, file);
    const tableBytes = Number((be.exports.CONV_TABLE_BYTES as unknown as WebAssembly.Global).value);
    const tables = Array.from({ length: threads - 1 }, () => be.alloc(tableBytes / 4).offset);
    const names = Object.keys(be.exports).filter((n) => typeof be.exports[n] === 'function');
    be.pool = await WasmThreadPool.start(module, memory, threads, names, tables);
    (be as { description: string }).description = `WebAssembly SIMD${file.includes('-fma') ? ' + relaxed FMA' : ''}, ${threads} threads`;
    return be;
  }

  /** A Float32Array view of a buffer; valid until the memory next grows. */
  view(buf: DeviceBuffer): Float32Array {
    const b = buf as WasmBuffer;
    return new Float32Array(this.memory.buffer, b.offset, b.elements);
  }

  alloc(elements: number): WasmBuffer {
    const bytes = align(Math.max(4, elements * 4), 16);
    let i = this.freeList.findIndex(([, n]) => n >= bytes);
    if (i < 0) {
      this.grow(bytes);
      i = this.freeList.findIndex(([, n]) => n >= bytes);
    }
    const [off, n] = this.freeList[i];
    if (n === bytes) this.freeList.splice(i, 1);
    else this.freeList[i] = [off + bytes, n - bytes];
    return new WasmBuffer(off, bytes, elements);
  }

  free(buf: DeviceBuffer): void {
    const { offset, bytes } = buf as WasmBuffer;
    const list = this.freeList;
    let i = list.findIndex(([o]) => o > offset);
    if (i < 0) i = list.length;
    list.splice(i, 0, [offset, bytes]);
    // Coalesce with the neighbours.
    if (i + 1 < list.length && list[i][0] + list[i][1] === list[i + 1][0]) {
      list[i][1] += list[i + 1][1];
      list.splice(i + 1, 1);
    }
    if (i > 0 && list[i - 1][0] + list[i - 1][1] === list[i][0]) {
      list[i - 1][1] += list[i][1];
      list.splice(i, 1);
    }
  }

  write(buf: DeviceBuffer, data: Float32Array, offsetElements = 0): void {
    const b = buf as WasmBuffer;
    if (offsetElements + data.length > b.elements)
      throw new Error(`wasm: writing ${data.length} floats at ${offsetElements} overflows a buffer of ${b.elements}`);
    new Float32Array(this.memory.buffer, b.offset + offsetElements * 4, data.length).set(data);
  }

  async read(buf: DeviceBuffer): Promise<Float32Array> {
    return this.view(buf).slice();
  }

  prepare(op: OpDef, inShapes: Shape[], attrs: Attrs, inputs: DeviceBuffer[], outputs: DeviceBuffer[]): WasmLaunch {
    checkOutputs(op, inShapes, attrs, outputs);
    const plan = op.wasm(inShapes, attrs);
    const scratch = (plan.scratch ?? []).map((n) => this.alloc(n));
    const bufs = [...inputs, ...outputs, ...scratch].map((b) => (b as WasmBuffer).offset);
    const launch: WasmLaunch = { op: op.name, def: op, inShapes, plan, bufs, scratch };
    this.prepareSplit(launch, bufs.slice(0, inputs.length + outputs.length));
    return launch;
  }

  /** Sets launch.par when threads are on and the plan splits (its pieces' scratch, their calls). */
  private prepareSplit(l: WasmLaunch, io: number[]): void {
    const split = this.pool ? l.plan.split?.(this.pool.threads) : null;
    if (!split) return;
    const scratch = split.scratch.map((sizes) => sizes.map((n) => this.alloc(n)));
    const { pieces, after } = split.calls(io, scratch.map((bs) => bs.map((b) => b.offset)));
    l.par = { pieces, after, scratch: scratch.flat() };
  }

  update(launch: PreparedLaunch, attrs: Attrs): boolean {
    const l = launch as WasmLaunch;
    const plan = l.def.wasm(l.inShapes, attrs);
    if ((plan.scratch ?? []).join() !== l.scratch.map((b) => b.elements).join()) return false;
    l.plan = plan;
    if (l.par) {
      for (const b of l.par.scratch) this.free(b);
      l.par = undefined;
      this.prepareSplit(l, l.bufs.slice(0, l.bufs.length - l.scratch.length));
    }
    return true;
  }

  execute(launches: PreparedLaunch[]): void {
    for (const l of launches as WasmLaunch[]) {
      if (l.par) {
        this.splitLaunches++;
        this.pool!.run(this.exports, l.par.pieces, l.par.after);
      }
      else l.plan.run(this.exports, l.bufs);
    }
  }

  async sync(): Promise<void> {}

  release(launch: PreparedLaunch): void {
    const l = launch as WasmLaunch;
    for (const b of l.scratch) this.free(b);
    for (const b of l.par?.scratch ?? []) this.free(b);
  }

  destroy(): void {
    this.pool?.destroy();
    this.pool = null;
    this.freeList = [];
  }

  private grow(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    const last = this.freeList[this.freeList.length - 1];
    const tailFree = last && last[0] + last[1] === have ? last[1] : 0;
    const pages = Math.ceil((bytes - tailFree) / PAGE);
    if (have + pages * PAGE > MAX_BYTES)
      throw new Error(`wasm: out of memory: ${bytes} more bytes would exceed the 4 GiB WebAssembly limit (${have} in use); use a smaller batch or micro-batches`);
    this.memory.grow(pages);
    if (tailFree) last[1] += pages * PAGE;
    else this.freeList.push([have, pages * PAGE]);
  }
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;
