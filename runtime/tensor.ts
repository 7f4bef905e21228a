// Eager execution on a backend: each call prepares and enqueues one launch. Used by tests, the
// benchmarks and interactive use; the compiler's static programs prepare launches ahead instead.

import { getOp } from '../kernels/registry.ts';
import type { Attrs, Emitter, Shape } from '../kernels/types.ts';
import { OpError, fmtShape, numel } from '../kernels/types.ts';
import type { Backend, DeviceBuffer, PreparedLaunch } from './backend.ts';

export class Tensor {
  constructor(readonly shape: Shape, readonly buf: DeviceBuffer) {}
}

export class Eager implements Emitter<Tensor> {
  /** Launches enqueued since the last sync; their scratch memory is released then. */
  private pending: PreparedLaunch[] = [];

  constructor(readonly backend: Backend) {}

  upload(shape: Shape, data: ArrayLike<number>): Tensor {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    const t = new Tensor([...shape], this.backend.alloc(numel(shape)));
    this.backend.write(t.buf, Float32Array.from(data));
    return t;
  }

  async read(t: Tensor): Promise<Float32Array> {
    await this.sync();
    const all = await this.backend.read(t.buf);
    return all.length === numel(t.shape) ? all : all.slice(0, numel(t.shape));
  }

  async sync(): Promise<void> {
    await this.backend.sync();
    for (const l of this.pending) this.backend.release(l);
    this.pending = [];
  }

  shape(t: Tensor): Shape {
    return t.shape;
  }

  call(name: string, inputs: Tensor[], attrs: Attrs = {}): Tensor[] {
    const op = getOp(name);
    const inShapes = inputs.map((t) => t.shape);
    const outShapes = op.shape(inShapes, attrs);
    if (op.view) return [new Tensor(outShapes[0], inputs[0].buf)];
    const outs = outShapes.map((s, i) => {
      const j = op.inplace?.[i];
      if (j === undefined) return new Tensor(s, this.backend.alloc(numel(s)));
      if (numel(inputs[j].shape) !== numel(s)) throw new OpError(name, `in-place output ${i} does not match input ${j}`, inShapes);
      return new Tensor(s, inputs[j].buf);
    });
    const launch = this.backend.prepare(op, inShapes, attrs, inputs.map((t) => t.buf), outs.map((t) => t.buf));
    this.backend.execute([launch]);
    this.pending.push(launch);
    return outs;
  }

  dispose(...ts: Tensor[]): void {
    for (const t of ts) this.backend.free(t.buf);
  }
}
