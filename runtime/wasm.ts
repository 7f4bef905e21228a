// Wasm backend: the AssemblyScript kernels (build/kernels.wasm, SIMD) over one memory that this
// module owns. Buffers are 16-byte-aligned ranges of that memory handed out by a first-fit
// free list; kernels receive byte offsets. Launches run synchronously, in order.

import type { Attrs, OpDef, Shape, WasmExports, WasmPlan } from '../kernels/types.ts';
import { checkOutputs, type Backend, type DeviceBuffer, type PreparedLaunch } from './backend.ts';

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
}

async function loadModuleBytes(): Promise<BufferSource> {
  const url = new URL('../build/kernels.wasm', import.meta.url);
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

export class WasmBackend implements Backend {
  readonly kind = 'wasm' as const;
  readonly description = 'WebAssembly SIMD, 1 thread';
  readonly limits = { maxBufferBytes: MAX_BYTES, totalBytes: MAX_BYTES };
  /** Free ranges [offset, bytes], sorted by offset. */
  private freeList: [number, number][] = [];

  private constructor(readonly memory: WebAssembly.Memory, readonly exports: WasmExports, heapBase: number) {
    const start = align(heapBase, 16);
    this.freeList.push([start, memory.buffer.byteLength - start]);
  }

  static async create(): Promise<WasmBackend> {
    const memory = new WebAssembly.Memory({ initial: 256 });
    const { instance } = await WebAssembly.instantiate(await loadModuleBytes(), {
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
    const heapBase = exports.__heap_base ? Number((exports.__heap_base as unknown as WebAssembly.Global).value) : 65536;
    return new WasmBackend(memory, exports, heapBase);
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
    return { op: op.name, def: op, inShapes, plan, bufs, scratch };
  }

  update(launch: PreparedLaunch, attrs: Attrs): boolean {
    const l = launch as WasmLaunch;
    const plan = l.def.wasm(l.inShapes, attrs);
    if ((plan.scratch ?? []).join() !== l.scratch.map((b) => b.elements).join()) return false;
    l.plan = plan;
    return true;
  }

  execute(launches: PreparedLaunch[]): void {
    for (const l of launches as WasmLaunch[]) l.plan.run(this.exports, l.bufs);
  }

  async sync(): Promise<void> {}

  release(launch: PreparedLaunch): void {
    for (const b of (launch as WasmLaunch).scratch) this.free(b);
  }

  destroy(): void {
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
