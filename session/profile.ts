// `--profile`: the per-kernel times of a model's training step (runtime/profile.ts measures them).
// A first profiled step whose times are dropped (it compiles the shaders, lets V8 tier the Wasm
// up and computes the launches' labels), optional further warm-up steps before it, then `steps`
// profiled steps on the same inputs. The runtime's weights move on as in training, so profile a
// throw-away runtime (or accept those steps as part of the run).

import { Profiler, summarize, type ProfileResult } from '../runtime/profile.ts';
import type { ModelRuntime } from './model.ts';

export interface ProfileOptions {
  /** Unprofiled steps before the dropped one; default 0. */
  warmup?: number;
  /** Profiled steps; default 1. */
  steps?: number;
  /**
   * Instead of `steps`: as many steps (1 to 5) as fit this many ms by the dropped step's time. One
   * step's per-kernel times vary by tens of percent on a loaded CPU (the top kernel changed from
   * run to run); the mean of a few is steadier, and a slow device still profiles just one.
   */
  budgetMs?: number;
  /** The iteration of the first warm-up step (the KL warm-up and the random draws follow it); default 0. */
  iteration?: number;
}

export async function profileTrainStep(rt: ModelRuntime, inputs: Record<string, Float32Array>, batch: number, o: ProfileOptions = {}): Promise<ProfileResult> {
  const warmup = o.warmup ?? 0;
  let steps = o.steps ?? 1;
  let it = o.iteration ?? 0;
  for (let i = 0; i < warmup; i++) await rt.trainStep(inputs, batch, it++);
  await rt.backend.sync();
  const profiler = Profiler.attach(rt.backend);
  let wall = 0;
  try {
    // One profiled step untimed: it computes the launches' labels and warms the profiled path.
    const t = performance.now();
    await rt.trainStep(inputs, batch, it++);
    await rt.backend.sync();
    if (o.budgetMs !== undefined) steps = Math.max(1, Math.min(5, Math.floor(o.budgetMs / (performance.now() - t))));
    await profiler.reset();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await rt.trainStep(inputs, batch, it++);
    await rt.backend.sync();
    wall = performance.now() - t0;
  } catch (e) {
    await profiler.stop().catch(() => {}); // detach: the backend runs unprofiled again
    throw e;
  }
  const samples = await profiler.stop();
  return summarize(samples, steps, wall, profiler.clock, `${rt.backend.kind} (${rt.backend.description})`);
}
