// WebGPU backend: the same code drives Dawn in Node (package `webgpu`) and navigator.gpu in a
// browser. Pipelines are cached by shader source; a prepared launch owns its bind groups,
// uniform and scratch buffers, so replaying it allocates nothing.
//
// A launch that compiles new shaders is prepared inside a validation error scope. WebGPU reports
// its errors asynchronously, so the scope is checked at the next sync point (sync(), read()):
// a failed compile is thrown there naming the op, with the shader's own messages, each at its
// line:col under the offending WGSL line. Replays compile nothing and open no scope.

import { opSource } from '../kernels/registry.ts';
import type { Attrs, OpDef, Shape, WgslPass, WgslTarget } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { checkOutputs, type Backend, type DeviceBuffer, type PreparedLaunch } from './backend.ts';

const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST
const UNIFORM = 0x40 | 0x8; // UNIFORM | COPY_DST
const MAP_READ = 0x1 | 0x8; // MAP_READ | COPY_DST
const QUERY_RESOLVE = 0x200 | 0x4; // QUERY_RESOLVE | COPY_SRC
/** WebGPU's largest query set. */
const MAX_QUERIES = 4096;

/** The optional features statcell uses when the adapter offers them (runtime/device.ts requests them). */
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

class GpuBuffer implements DeviceBuffer {
  constructor(readonly buffer: GPUBuffer, readonly elements: number) {}
}

interface GpuLaunch extends PreparedLaunch {
  def: OpDef;
  inShapes: Shape[];
  steps: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number]; code: string; uniform?: GPUBuffer }[];
  owned: GPUBuffer[];
}

/** A shader module created by a prepare, kept until its error scope has been checked. */
interface NewShader {
  module: GPUShaderModule;
  code: string;
  /** Its pass in the launch, and how many passes the launch has. */
  pass: number;
  passes: number;
}

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  private pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private lost: string | null = null;
  private error: string | null = null;
  /** Error scopes not yet checked: of prepares that compiled shaders (true when that failed), and of submissions meanwhile. */
  private scopes: Promise<boolean>[] = [];
  /** The first failed compile (or pipeline creation) those scopes found. */
  private compileError: Error | null = null;

  /** The device's features among OPTIONAL_FEATURES, as requested from the adapter: detected, never assumed. */
  readonly features: string[];
  /** Per-pass GPU timestamps ('timestamp-query'): what --profile needs (runtime/profile.ts). */
  readonly timestamps: boolean;
  /** What the WGSL generators may use on this device (OpDef.wgsl's target). */
  readonly target: WgslTarget;

  /**
   * `keepAlive` holds Dawn's GPU object: dropping it while the device lives can crash Node.
   * `disabled`: features the adapter offers that were not requested (openWebGpu's `disable`), for the backend line.
   */
  constructor(readonly device: GPUDevice, readonly description: string, private keepAlive?: unknown, readonly disabled: readonly OptionalFeature[] = []) {
    this.features = OPTIONAL_FEATURES.filter((f) => device.features.has(f));
    this.timestamps = this.features.includes('timestamp-query');
    this.target = { subgroups: this.features.includes('subgroups') };
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
    if (this.compileError) {
      // The root cause: what followed from it (a bind group or a pass using the invalid
      // pipeline) is dropped with the work recorded since.
      const e = this.compileError;
      this.compileError = null;
      this.error = null;
      this.encoder = null;
      throw e;
    }
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw new Error(`webgpu: device error: ${e}`);
    }
  }

  /** The largest tensor: one buffer bound whole, its size rounded up to 16 bytes (alloc), within both limits. WebGPU does not tell the device's memory. */
  get limits(): { maxBufferBytes: number } {
    const l = this.device.limits;
    return { maxBufferBytes: Math.floor(Math.min(l.maxBufferSize, l.maxStorageBufferBindingSize) / 16) * 16 };
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
    if (this.scopes.length) await this.checkScopes();
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
    const plan = op.wgsl(inShapes, attrs, this.target);
    const owned: GPUBuffer[] = [];
    const scratch = (plan.scratch ?? []).map((n) => {
      const b = this.alloc(n);
      owned.push(b.buffer);
      return b;
    });
    const all = [...inputs, ...outputs, ...scratch] as GpuBuffer[];
    // New shaders are compiled, and bound, inside an error scope that sync() checks.
    const fresh = plan.passes.some((p) => !this.pipelines.has(p.code));
    const created: NewShader[] = [];
    if (fresh) this.device.pushErrorScope('validation');
    try {
      return { op: op.name, def: op, inShapes, steps: this.bindPasses(op, plan.passes, all, owned, created), owned };
    } finally {
      if (fresh) this.watch(this.device.popErrorScope(), op, inShapes, created);
    }
  }

  private bindPasses(op: OpDef, passes: WgslPass[], all: GpuBuffer[], owned: GPUBuffer[], created: NewShader[]): GpuLaunch['steps'] {
    return passes.map((pass, i) => {
      const pipeline = this.pipeline(op.name, pass.code, created, i, passes.length);
      const entries: GPUBindGroupEntry[] = pass.bindings.map((idx, binding) => ({ binding, resource: { buffer: this.bindable(op, all[idx]) } }));
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
  }

  /** A buffer a pass binds whole: said here, naming the op, when it is over the binding limit (Dawn would say it later, as a bind group error). */
  private bindable(op: OpDef, b: GpuBuffer): GPUBuffer {
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (b.buffer.size > max)
      throw new Error(`webgpu: ${op.name} binds a tensor of ${b.elements} floats (${b.buffer.size} bytes), over this adapter's maxStorageBufferBindingSize ${max}; train such a batch in micro-batches (the trainer picks them by itself; --micro-batch n)`);
    return b.buffer;
  }

  /** Records the outcome of a prepare's error scope: a failed compile becomes `compileError`. */
  private watch(scope: Promise<GPUError | null>, op: OpDef, inShapes: Shape[], created: NewShader[]): void {
    this.track(
      scope.then(async (err) => {
        if (!err) return false;
        // Compile again next time: the cached pipelines of this scope are invalid.
        for (const c of created) this.pipelines.delete(c.code);
        this.compileError ??= await describeFailure(err, op, inShapes, created);
        return true;
      }),
    );
  }

  private track(check: Promise<boolean>): void {
    const tracked: Promise<boolean> = check
      .catch((e: unknown) => {
        this.compileError ??= e instanceof Error ? e : new Error(String(e));
        return true;
      })
      .finally(() => {
        const i = this.scopes.indexOf(tracked);
        if (i >= 0) this.scopes.splice(i, 1);
      });
    this.scopes.push(tracked);
  }

  /** Waits for the error scopes still open (none in a replayed step). */
  private async checkScopes(): Promise<void> {
    while (this.scopes.length) await Promise.all(this.scopes);
  }

  update(launch: PreparedLaunch, attrs: Attrs): boolean {
    const l = launch as GpuLaunch;
    const passes = l.def.wgsl(l.inShapes, attrs, this.target).passes;
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

  /**
   * execute() for --profile: each pass of each launch in its own compute pass with begin/end
   * timestamps, submitted at once; resolves to each launch's GPU time in ms once read back.
   */
  executeTimed(launches: PreparedLaunch[]): Promise<number[]> {
    this.check();
    if (!this.timestamps) throw new Error(`webgpu: the adapter (${this.description}) does not offer 'timestamp-query'`);
    const enc = this.encoder ?? (this.encoder = this.device.createCommandEncoder());
    const steps = (launches as GpuLaunch[]).flatMap((l, launch) => l.steps.filter((s) => !s.workgroups.some((n) => n === 0)).map((s) => ({ s, launch })));
    const chunks: { from: number; n: number; read: GPUBuffer; temp: (GPUBuffer | GPUQuerySet)[] }[] = [];
    for (let from = 0; from < steps.length; from += MAX_QUERIES / 2) {
      const n = Math.min(MAX_QUERIES / 2, steps.length - from);
      const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * n });
      for (let k = 0; k < n; k++) {
        const { s } = steps[from + k];
        const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.workgroups);
        pass.end();
      }
      const resolved = this.device.createBuffer({ size: 16 * n, usage: QUERY_RESOLVE });
      const read = this.device.createBuffer({ size: 16 * n, usage: MAP_READ });
      enc.resolveQuerySet(querySet, 0, 2 * n, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, read, 0, 16 * n);
      chunks.push({ from, n, read, temp: [querySet, resolved] });
    }
    // A buffer may be mapped only after the work that writes it is submitted.
    this.flush();
    return Promise.all(
      chunks.map(async (c) => {
        await c.read.mapAsync(1 /* READ */);
        const t = new BigUint64Array(c.read.getMappedRange().slice(0));
        for (const x of [c.read, ...c.temp]) x.destroy();
        return { ...c, t };
      }),
    ).then((done) => {
      const ms = new Array<number>(launches.length).fill(0);
      for (const c of done) for (let k = 0; k < c.n; k++) ms[steps[c.from + k].launch] += t2ms(c.t[2 * k], c.t[2 * k + 1]);
      return ms;
    });
  }

  async sync(): Promise<void> {
    if (this.scopes.length) await this.checkScopes();
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
    if (!this.encoder) return;
    // While a compile is still being checked (write() flushes before sync() looks), what the
    // work recorded with its pipeline says about it is a consequence: dropped if it failed.
    const pending = this.scopes.length ? [...this.scopes] : null;
    if (pending) this.device.pushErrorScope('validation');
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    if (pending)
      this.track(
        this.device.popErrorScope().then(async (err) => {
          if (err && !(await Promise.all(pending)).some(Boolean)) this.error ??= err.message;
          return false;
        }),
      );
  }

  private takeEncoder(): GPUCommandEncoder {
    const enc = this.encoder ?? this.device.createCommandEncoder();
    this.encoder = null;
    return enc;
  }

  /** The cached pipeline of a shader, or a new one (recorded in `created` for the error scope's check). */
  private pipeline(op: string, code: string, created: NewShader[], pass: number, passes: number): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code, label: op });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: op });
      this.pipelines.set(code, p);
      created.push({ module, code, pass, passes });
    }
    return p;
  }
}

/**
 * The error a failed prepare throws: the shader compiler's messages (each at line:col, with the
 * WGSL line and a caret), or, when the shaders compiled, what pipeline or bind group creation said.
 */
async function describeFailure(err: GPUError, op: OpDef, inShapes: Shape[], created: NewShader[]): Promise<Error> {
  const source = opSource(op);
  const head = `op ${op.name}${source ? ` (${source})` : ''}`;
  const launch = `the launch of ${op.name} for inputs ${inShapes.map(fmtShape).join(', ') || '(none)'}`;
  const messages: string[] = [];
  for (const c of created) {
    const info = await c.module.getCompilationInfo();
    const pass = c.passes > 1 ? `pass ${c.pass + 1} of ${c.passes}: ` : '';
    for (const m of info.messages) if (m.type === 'error') messages.push(pass + formatMessage(m, c.code));
  }
  if (messages.length) return new Error(`WGSL compile error in ${head}: ${messages.join('\n')}\n(${launch})`);
  return new Error(`webgpu: preparing ${head} failed: ${err.message.trim()}\n(${launch})`);
}

/** `12:5: error: unresolved identifier 'foo'`, then the source line and a caret under column 5. */
export function formatMessage(m: Pick<GPUCompilationMessage, 'type' | 'message' | 'lineNum' | 'linePos'>, code: string): string {
  if (!m.lineNum) return `${m.type}: ${m.message}`;
  const line = code.split('\n')[m.lineNum - 1] ?? '';
  const num = String(m.lineNum);
  const pad = ' '.repeat(num.length);
  return `${m.lineNum}:${m.linePos}: ${m.type}: ${m.message}\n  ${num} | ${line}\n  ${pad} | ${' '.repeat(Math.max(0, m.linePos - 1))}^`;
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** A pass's time from its begin and end timestamps (ns); 0 when the implementation gave end < begin (allowed by the spec). */
const t2ms = (begin: bigint, end: bigint): number => (end > begin ? Number(end - begin) / 1e6 : 0);
