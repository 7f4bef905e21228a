// WebGPU backend: the same code drives Dawn in Node (package `webgpu`) and navigator.gpu in a
// browser. Pipelines are cached by shader source; a prepared launch owns its bind groups,
// uniform and scratch buffers, so replaying it allocates nothing.

import type { Attrs, OpDef, Shape } from '../kernels/types.ts';
import { checkOutputs, type Backend, type DeviceBuffer, type PreparedLaunch } from './backend.ts';

const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST
const UNIFORM = 0x40 | 0x8; // UNIFORM | COPY_DST
const MAP_READ = 0x1 | 0x8; // MAP_READ | COPY_DST

class GpuBuffer implements DeviceBuffer {
  constructor(readonly buffer: GPUBuffer, readonly elements: number) {}
}

interface GpuLaunch extends PreparedLaunch {
  def: OpDef;
  inShapes: Shape[];
  steps: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number]; code: string; uniform?: GPUBuffer }[];
  owned: GPUBuffer[];
}

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  private pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private lost: string | null = null;
  private error: string | null = null;

  /** `keepAlive` holds Dawn's GPU object: dropping it while the device lives can crash Node. */
  constructor(readonly device: GPUDevice, readonly description: string, private keepAlive?: unknown) {
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
    // Validation errors (a shader that fails to compile, a bad binding) arrive asynchronously:
    // keep the first and raise it at the next sync so no wrong result passes silently.
    device.addEventListener?.('uncapturederror', (e: Event) => {
      this.error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
  }

  private check(): void {
    if (this.lost) throw new Error(`webgpu: the device was lost (${this.lost}); create a new backend or use --backend wasm`);
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw new Error(`webgpu: device error: ${e}`);
    }
  }

  get limits(): { maxBufferBytes: number } {
    const l = this.device.limits;
    return { maxBufferBytes: Math.min(l.maxBufferSize, l.maxStorageBufferBindingSize) };
  }

  alloc(elements: number): GpuBuffer {
    this.check();
    const bytes = Math.max(4, elements * 4);
    const max = this.device.limits.maxBufferSize;
    if (bytes > max)
      throw new Error(`webgpu: a buffer of ${elements} floats (${bytes} bytes) exceeds this adapter's maxBufferSize ${max}; use a smaller batch or micro-batches`);
    return new GpuBuffer(this.device.createBuffer({ size: align(bytes, 16), usage: STORAGE }), elements);
  }

  free(buf: DeviceBuffer): void {
    (buf as GpuBuffer).buffer.destroy();
  }

  write(buf: DeviceBuffer, data: Float32Array, offsetElements = 0): void {
    this.check();
    // Queue writes take effect before any later submission: submit what was encoded so far
    // first, so that launches already enqueued still see the old contents.
    this.flush();
    // Dawn rejects views on a SharedArrayBuffer: copy those first.
    const src = data.buffer instanceof ArrayBuffer ? data : new Float32Array(data);
    this.device.queue.writeBuffer((buf as GpuBuffer).buffer, offsetElements * 4, src.buffer, src.byteOffset, src.byteLength);
  }

  async read(buf: DeviceBuffer): Promise<Float32Array> {
    this.check();
    const b = buf as GpuBuffer;
    const bytes = align(Math.max(4, b.elements * 4), 4);
    const staging = this.device.createBuffer({ size: bytes, usage: MAP_READ });
    const enc = this.takeEncoder();
    enc.copyBufferToBuffer(b.buffer, 0, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(1 /* READ */);
    const out = new Float32Array(staging.getMappedRange().slice(0, b.elements * 4));
    staging.destroy();
    return out;
  }

  prepare(op: OpDef, inShapes: Shape[], attrs: Attrs, inputs: DeviceBuffer[], outputs: DeviceBuffer[]): GpuLaunch {
    this.check();
    checkOutputs(op, inShapes, attrs, outputs);
    const plan = op.wgsl(inShapes, attrs);
    const owned: GPUBuffer[] = [];
    const scratch = (plan.scratch ?? []).map((n) => {
      const b = this.alloc(n);
      owned.push(b.buffer);
      return b;
    });
    const all = [...inputs, ...outputs, ...scratch] as GpuBuffer[];
    const steps = plan.passes.map((pass) => {
      const pipeline = this.pipeline(op.name, pass.code);
      const entries: GPUBindGroupEntry[] = pass.bindings.map((idx, binding) => ({ binding, resource: { buffer: all[idx].buffer } }));
      let uniform: GPUBuffer | undefined;
      if (pass.uniform) {
        uniform = this.device.createBuffer({ size: align(pass.uniform.byteLength, 16), usage: UNIFORM });
        this.device.queue.writeBuffer(uniform, 0, pass.uniform);
        owned.push(uniform);
        entries.push({ binding: entries.length, resource: { buffer: uniform } });
      }
      const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      return { pipeline, bindGroup, workgroups: pass.workgroups, code: pass.code, uniform };
    });
    return { op: op.name, def: op, inShapes, steps, owned };
  }

  update(launch: PreparedLaunch, attrs: Attrs): boolean {
    const l = launch as GpuLaunch;
    const passes = l.def.wgsl(l.inShapes, attrs).passes;
    const same = passes.length === l.steps.length && passes.every((p, i) => p.code === l.steps[i].code && p.workgroups.join() === l.steps[i].workgroups.join() && !!p.uniform === !!l.steps[i].uniform);
    if (!same) return false;
    this.flush(); // as in write(): launches enqueued before keep their old uniforms
    passes.forEach((p, i) => p.uniform && this.device.queue.writeBuffer(l.steps[i].uniform!, 0, p.uniform));
    return true;
  }

  execute(launches: PreparedLaunch[]): void {
    this.check();
    const enc = this.encoder ?? (this.encoder = this.device.createCommandEncoder());
    const pass = enc.beginComputePass();
    for (const l of launches as GpuLaunch[]) {
      for (const s of l.steps) {
        if (s.workgroups.some((n) => n === 0)) continue;
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.workgroups);
      }
    }
    pass.end();
  }

  async sync(): Promise<void> {
    this.check();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  release(launch: PreparedLaunch): void {
    for (const b of (launch as GpuLaunch).owned) b.destroy();
  }

  destroy(): void {
    this.device.destroy();
    this.keepAlive = undefined;
  }

  private flush(): void {
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
    }
  }

  private takeEncoder(): GPUCommandEncoder {
    const enc = this.encoder ?? this.device.createCommandEncoder();
    this.encoder = null;
    return enc;
  }

  private pipeline(op: string, code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code, label: op });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: op });
      this.pipelines.set(code, p);
    }
    return p;
  }
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;
