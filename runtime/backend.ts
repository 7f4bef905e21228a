// The interface both backends implement. Buffers hold float32 elements. Launches are prepared
// once (pipelines, bind groups, scratch memory) and then replayed: a static program prepares
// every launch ahead and executes them all per step without allocating.

import type { Attrs, OpDef, Shape } from '../kernels/types.ts';
import { OpError, fmtShape, numel } from '../kernels/types.ts';

export type BackendKind = 'webgpu' | 'wasm';

export interface DeviceBuffer {
  readonly elements: number;
}

export interface PreparedLaunch {
  readonly op: string;
}

export interface Backend {
  readonly kind: BackendKind;
  /** Human-readable device description, e.g. the adapter's vendor and architecture. */
  readonly description: string;
  /** What fits: the largest single buffer, and all buffers together where the backend knows it. */
  readonly limits: { maxBufferBytes: number; totalBytes?: number };
  alloc(elements: number): DeviceBuffer;
  free(buf: DeviceBuffer): void;
  write(buf: DeviceBuffer, data: Float32Array, offsetElements?: number): void;
  read(buf: DeviceBuffer): Promise<Float32Array>;
  /** Binds an op to concrete buffers; inplace outputs must be passed as the same buffer as their input. */
  prepare(op: OpDef, inShapes: Shape[], attrs: Attrs, inputs: DeviceBuffer[], outputs: DeviceBuffer[]): PreparedLaunch;
  /** Enqueues launches in order (one command encoder on WebGPU; synchronous on Wasm). */
  execute(launches: PreparedLaunch[]): void;
  /** Waits until every enqueued launch has finished. */
  sync(): Promise<void>;
  /**
   * Gives a prepared launch new attributes (Adam's step, a random draw's offset) without
   * allocating: only uniforms change. Returns false when the new attributes need another
   * kernel, and then the caller prepares the launch anew.
   */
  update(launch: PreparedLaunch, attrs: Attrs): boolean;
  /** Releases the scratch memory a launch holds. */
  release(launch: PreparedLaunch): void;
  destroy(): void;
}

/** A launch's output buffers must hold the op's output shapes (the shape rule also validates the inputs). */
export function checkOutputs(op: OpDef, inShapes: Shape[], attrs: Attrs, outputs: DeviceBuffer[]): void {
  for (const [i, s] of op.shape(inShapes, attrs).entries()) {
    const want = numel(s);
    if (!outputs[i] || outputs[i].elements < want)
      throw new OpError(op.name, `output ${i} needs ${want} elements for shape ${fmtShape(s)} but its buffer holds ${outputs[i]?.elements ?? 0}`, inShapes);
  }
}
