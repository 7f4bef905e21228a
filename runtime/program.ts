// Runs a compiled Program on a backend: buffers allocated and launches prepared once, then each
// run only writes its inputs, replays the launches and reads back what is asked for.
// Parameters and state can live in a shared store so several programs (train step, encode,
// decode) work on the same weights. The Program contract (buffers, launches, lifetimes) is
// defined here, in the device layer; the compiler's planner (compiler/plan.ts) produces it.

import { getOp } from '../kernels/registry.ts';
import type { Attrs } from '../kernels/types.ts';
import { fmtShape, numel } from '../kernels/types.ts';
import type { Shape } from '../kernels/types.ts';
import type { Backend, DeviceBuffer, PreparedLaunch } from './backend.ts';
import { launchLabels, profilerOf, type LaunchLabel } from './profile.ts';

// ---- The Program contract: what the compiler hands the device layer ----------------------

/** What a graph input holds: data fed each run, a trainable parameter, or persistent state. */
export type InputKind = 'input' | 'param' | 'state';

/** Attributes computed at run time from the run's arguments (Adam's step, a random draw's offset). */
export type DynamicAttrs = Record<string, (args: Record<string, number>) => number>;

export interface BufferSpec {
  elements: number;
  /** Graph inputs keep their own buffer; temps are shared by values whose lifetimes do not overlap. */
  kind: InputKind | 'temp';
  name?: string;
}

export interface Launch {
  op: string;
  attrs: Attrs;
  inShapes: Shape[];
  inputs: number[];
  outputs: number[];
  /** Attributes computed from each run's arguments (e.g. Adam's step). */
  dynamic?: DynamicAttrs;
}

/** A value's buffer and the launches [from, to] over which it must stay intact. */
export interface Lifetime {
  value: number;
  buffer: number;
  from: number;
  to: number;
  elements: number;
  /** Set for a view (reshape): it shares its source's buffer by design. */
  view?: boolean;
}

export interface Program {
  buffers: BufferSpec[];
  launches: Launch[];
  /** Graph input name → its buffer. */
  inputs: Map<string, number>;
  /** Output name → buffer and shape. */
  outputs: Map<string, { buffer: number; shape: Shape }>;
  lifetimes: Lifetime[];
}


export class Executable {
  private buffers: DeviceBuffer[];
  private owned: DeviceBuffer[] = [];
  private prepared: PreparedLaunch[];
  private lastArgs = '';
  private labels?: LaunchLabel[];

  /** `store` maps graph input names to buffers that outlive this program (weights, optimizer state). */
  constructor(readonly backend: Backend, readonly program: Program, store: Map<string, DeviceBuffer> = new Map()) {
    const byBuffer = new Map([...program.inputs].map(([name, b]) => [b, name]));
    this.buffers = program.buffers.map((spec, i) => {
      const shared = store.get(byBuffer.get(i) ?? '');
      if (shared) {
        if (shared.elements < spec.elements) throw new Error(`program: stored buffer '${byBuffer.get(i)}' holds ${shared.elements} elements, the program needs ${spec.elements}`);
        return shared;
      }
      const b = backend.alloc(spec.elements);
      this.owned.push(b);
      return b;
    });
    this.prepared = program.launches.map((l) => this.prepare(l, l.attrs));
  }

  bufferOf(name: string): DeviceBuffer {
    const b = this.program.inputs.get(name) ?? this.program.outputs.get(name)?.buffer;
    if (b === undefined) throw new Error(`program: no input or output named '${name}'`);
    return this.buffers[b];
  }

  write(name: string, data: Float32Array): void {
    const b = this.program.inputs.get(name);
    if (b === undefined) throw new Error(`program: no input named '${name}'; inputs: ${[...this.program.inputs.keys()].join(', ')}`);
    const want = this.program.buffers[b].elements;
    if (data.length !== want) throw new Error(`program: input '${name}' takes ${want} values, got ${data.length}`);
    this.backend.write(this.buffers[b], data);
  }

  /** Enqueues one run. `args` feed the launches' dynamic attributes (e.g. { iteration: 12 }). */
  run(args: Record<string, number> = {}): void {
    const key = JSON.stringify(args);
    if (key !== this.lastArgs) {
      this.program.launches.forEach((l, i) => {
        if (!l.dynamic) return;
        const attrs: Attrs = { ...l.attrs };
        for (const [name, f] of Object.entries(l.dynamic)) attrs[name] = f(args);
        if (this.backend.update(this.prepared[i], attrs)) return;
        this.backend.release(this.prepared[i]);
        this.prepared[i] = this.prepare(l, attrs);
      });
      this.lastArgs = key;
    }
    // Under --profile (runtime/profile.ts) each launch is timed.
    const profiler = profilerOf(this.backend);
    if (profiler) profiler.run(this.prepared, (this.labels ??= launchLabels(this.program)));
    else this.backend.execute(this.prepared);
  }

  async read(name: string): Promise<Float32Array> {
    const out = this.program.outputs.get(name);
    const b = out?.buffer ?? this.program.inputs.get(name);
    if (b === undefined) throw new Error(`program: no output named '${name}'; outputs: ${[...this.program.outputs.keys()].join(', ')}`);
    await this.backend.sync();
    const data = await this.backend.read(this.buffers[b]);
    const n = out ? numel(out.shape) : this.program.buffers[b].elements;
    return data.length === n ? data : data.slice(0, n);
  }

  destroy(): void {
    for (const l of this.prepared) this.backend.release(l);
    for (const b of this.owned) this.backend.free(b);
  }

  private prepare(l: Launch, attrs: Attrs): PreparedLaunch {
    const op = getOp(l.op);
    try {
      return this.backend.prepare(op, l.inShapes, attrs, l.inputs.map((i) => this.buffers[i]), l.outputs.map((i) => this.buffers[i]));
    } catch (e) {
      throw new Error(`program: preparing ${l.op} on ${l.inShapes.map(fmtShape).join(', ')}: ${(e as Error).message}`);
    }
  }
}
