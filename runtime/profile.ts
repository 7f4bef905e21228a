// Per-kernel timing of the launches a backend runs (`--profile`). While a Profiler is attached to a
// backend, every Executable.run on it goes through the profiler instead of Backend.execute:
// - WebGPU with the adapter's 'timestamp-query': each launch's passes get their own compute pass
//   with timestampWrites; the GPU's own begin/end times are resolved and read back later, so the
//   launches still run back to back on the queue;
// - Wasm: execute() is synchronous on this thread (worker threads are joined inside it), so the
//   host's clock around each launch is that launch's cost (a few µs of call overhead included).
// WebGPU without timestamps is refused with a message: host times of queued GPU work say nothing.

import type { Launch, Program } from './program.ts';
import type { Backend, PreparedLaunch } from './backend.ts';

export type ProfileClock = 'gpu-timestamps' | 'host';

/** What a launch is, for the table: its op, the layer whose parameters it uses, its input shapes. */
export interface LaunchLabel {
  op: string;
  /** The layer path (a parameter's name without its last part, e.g. `enc.0.conv`); '' when the launch reads no parameter. */
  layer: string;
  shapes: string;
}

/** A backend that times launches itself (WebGPU with timestamp queries): ms per launch, resolved once read back. */
export interface TimedBackend {
  executeTimed(launches: PreparedLaunch[]): Promise<number[]>;
}

const timed = (b: Backend): b is Backend & TimedBackend & { timestamps: boolean } => typeof (b as Partial<TimedBackend>).executeTimed === 'function';

/** Why this backend cannot be profiled, or null when it can. */
export function profileUnavailable(backend: Backend): string | null {
  if (backend.kind === 'wasm') return null;
  if (timed(backend) && backend.timestamps) return null;
  return `--profile: the WebGPU adapter (${backend.description}) does not offer 'timestamp-query', so per-kernel GPU times cannot be measured on it (host times of queued GPU work would be meaningless); --backend wasm profiles with host timing`;
}

const profilers = new WeakMap<Backend, Profiler>();

/** The profiler attached to a backend, if any (Executable.run asks). */
export const profilerOf = (backend: Backend): Profiler | undefined => profilers.get(backend);

/**
 * The label of each launch of a program (computed once per Executable). Its layer is that of
 * the first parameter (or parameter state: Adam's moments, a gradient accumulator, running
 * statistics) it reads or writes, or of a tensor computed from parameters alone (a
 * spectral-normalised weight, its σ): so a layer's forward conv and its input gradient are
 * named. A launch still unnamed whose result goes next to a launch that reads a parameter of the
 * same size (Adam, the gradient accumulation) is named after that parameter: a weight gradient.
 */
export function launchLabels(program: Program): LaunchLabel[] {
  const layerOf = new Map<number, string>();
  for (const [name, b] of program.inputs)
    if (program.buffers[b].kind === 'param' || program.buffers[b].kind === 'state') layerOf.set(b, name.replace(/^(grad|adam\.[mv])\./, '').replace(/\.[^.]+$/, ''));
  const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  // Forward: buffer → layer, for parameters and what launches made from them alone, as of the launch being walked.
  const fromParams = new Map(layerOf);
  // Per launch: the sizes of what it reads that are parameters or made from them alone.
  const sizes: Set<number>[] = [];
  const layers = program.launches.map((l: Launch, i) => {
    sizes[i] = new Set(l.inputs.flatMap((b, j) => (fromParams.has(b) ? [numel(l.inShapes[j])] : [])));
    // Outputs count only as parameters or their state updated in place: a temp buffer's old contents say nothing.
    const layer = [...l.inputs.map((b) => fromParams.get(b)), ...l.outputs.map((b) => layerOf.get(b))].find((n) => n !== undefined) ?? '';
    const derived = layer !== '' && l.inputs.every((b) => fromParams.has(b));
    for (const b of l.outputs) {
      if (layerOf.has(b)) continue;
      if (derived) fromParams.set(b, layer);
      else fromParams.delete(b);
    }
    return layer;
  });
  // Backward: buffer → the next launch that reads it (its index and the size it reads there). A
  // launch named this way counts as reading a parameter of its result's size (the chain
  // weight gradient → scaling → accumulation → Adam names every link).
  const nextReader = new Map<number, { at: number; elements: number }>();
  for (let i = program.launches.length - 1; i >= 0; i--) {
    const l = program.launches[i];
    if (!layers[i])
      for (const b of l.outputs) {
        const r = nextReader.get(b);
        if (r && layers[r.at] && sizes[r.at].has(r.elements)) {
          layers[i] = layers[r.at];
          sizes[i].add(r.elements);
          break;
        }
      }
    for (const b of l.outputs) nextReader.delete(b);
    l.inputs.forEach((b, j) => {
      if (!layerOf.has(b)) nextReader.set(b, { at: i, elements: numel(l.inShapes[j]) });
    });
  }
  return program.launches.map((l, i) => ({ op: l.op, layer: layers[i], shapes: l.inShapes.map((s) => `[${s.join(',')}]`).join(' ') }));
}

interface Sample {
  label: LaunchLabel;
  ms: number;
}

export class Profiler {
  readonly clock: ProfileClock;
  private pending: Promise<Sample[]>[] = [];
  private hostSamples: Sample[] = [];

  private constructor(readonly backend: Backend) {
    this.clock = backend.kind === 'wasm' ? 'host' : 'gpu-timestamps';
  }

  /** Attaches a profiler to the backend; throws the reason when the backend cannot be profiled. */
  static attach(backend: Backend): Profiler {
    const why = profileUnavailable(backend);
    if (why) throw new Error(why);
    if (profilers.has(backend)) throw new Error('profile: this backend is already being profiled');
    const p = new Profiler(backend);
    profilers.set(backend, p);
    return p;
  }

  /** Runs (enqueues) one program's launches, timing each. */
  run(launches: PreparedLaunch[], labels: LaunchLabel[]): void {
    const b = this.backend;
    if (this.clock === 'gpu-timestamps' && timed(b)) {
      this.pending.push(b.executeTimed(launches).then((ms) => ms.map((x, i) => ({ label: labels[i], ms: x }))));
      return;
    }
    launches.forEach((l, i) => {
      const t = performance.now();
      b.execute([l]);
      this.hostSamples.push({ label: labels[i], ms: performance.now() - t });
    });
  }

  /** Drops what was timed so far (e.g. a first profiled step, which also computes the launches' labels). */
  async reset(): Promise<void> {
    await this.backend.sync();
    await Promise.all(this.pending);
    this.pending = [];
    this.hostSamples = [];
  }

  /** Detaches the profiler and returns every launch timed since it was attached (or reset). */
  async stop(): Promise<Sample[]> {
    profilers.delete(this.backend);
    await this.backend.sync();
    const gpu = (await Promise.all(this.pending)).flat();
    return [...this.hostSamples, ...gpu];
  }
}

/** One row of the table: launches of the same op on the same layer and shapes. */
export interface ProfileRow extends LaunchLabel {
  launches: number;
  ms: number;
  share: number;
}

export interface ProfileResult {
  clock: ProfileClock;
  backend: string;
  steps: number;
  /** Wall time of the profiled steps (readbacks included) and the sum of the kernels' times, both per step. */
  wallMs: number;
  kernelMs: number;
  /** Per step, most time first. */
  rows: ProfileRow[];
}

/** Groups samples by (op, layer, shapes), per step, most time first. */
export function summarize(samples: Sample[], steps: number, wallMs: number, clock: ProfileClock, backend: string): ProfileResult {
  const groups = new Map<string, ProfileRow>();
  for (const s of samples) {
    const key = `${s.label.op}|${s.label.layer}|${s.label.shapes}`;
    const g = groups.get(key) ?? { ...s.label, launches: 0, ms: 0, share: 0 };
    g.launches++;
    g.ms += s.ms;
    groups.set(key, g);
  }
  const rows = [...groups.values()].map((g) => ({ ...g, launches: g.launches / steps, ms: g.ms / steps }));
  const kernelMs = rows.reduce((a, r) => a + r.ms, 0);
  for (const r of rows) r.share = kernelMs > 0 ? r.ms / kernelMs : 0;
  rows.sort((a, b) => b.ms - a.ms);
  return { clock, backend, steps, wallMs: wallMs / steps, kernelMs, rows };
}

/** The table `--profile` prints: the top kernels of a step, then the totals and the clock used. */
export function formatProfile(p: ProfileResult, top = 15): string {
  const clock = p.clock === 'gpu-timestamps' ? "GPU timestamps ('timestamp-query', one compute pass per launch)" : 'host clock around each launch (Wasm runs synchronously)';
  const shown = p.rows.slice(0, top);
  const cells = shown.map((r) => [r.op, r.layer || '-', r.shapes, fmtN(r.launches), r.ms.toFixed(2), `${(100 * r.share).toFixed(1)}%`]);
  const head = ['op', 'layer', 'input shapes', 'launches', 'ms/step', 'share'];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i >= 3 ? x.padStart(width[i]) : x.padEnd(width[i]))).join('  ');
  const launches = p.rows.reduce((a, r) => a + r.launches, 0);
  return [
    `profile of ${p.steps === 1 ? 'one training step' : `${p.steps} training steps (per step)`} on ${p.backend}: ${clock}`,
    line(head),
    ...cells.map(line),
    `top ${shown.length} of ${p.rows.length} kernels (op × layer × shapes); all ${fmtN(launches)} launches: ${p.kernelMs.toFixed(1)} ms of kernels in a step of ${p.wallMs.toFixed(1)} ms wall (${((100 * p.kernelMs) / p.wallMs).toFixed(0)}%)`,
  ].join('\n');
}

const fmtN = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
