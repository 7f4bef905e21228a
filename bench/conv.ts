// The convolution benchmark: forward, input gradient and weight gradient of every encoder layer
// of the 2D reference model at batch 8 (see shapes.ts).

import type { ConvPass, Task } from './common.ts';
import { QUICK_LAYERS, encoderLayers } from './shapes.ts';

export const CONV_PASSES: ConvPass[] = ['fwd', 'dx', 'dw'];

export interface ConvBenchOptions {
  batch?: number;
  /** Only the few representative layers of QUICK_LAYERS. */
  quick?: boolean;
  /** Keep layers whose name contains this. */
  filter?: string;
}

export function convTasks(o: ConvBenchOptions = {}): Task[] {
  let layers = encoderLayers(o.batch ?? 8);
  if (o.quick) layers = layers.filter((l) => QUICK_LAYERS.includes(l.name));
  if (o.filter) layers = layers.filter((l) => l.name.includes(o.filter!));
  return layers.flatMap((layer) => CONV_PASSES.map((pass): Task => ({ kind: 'conv', pass, layer })));
}

/** The layers the slow software WebGPU rows run on by default: a k3 and a 1×1. */
export const SOFTWARE_GPU_LAYERS = ['d3.main k3', 'd4.skip k1'];
export const isSoftwareGpuLayer = (t: Task): boolean => t.kind === 'conv' && SOFTWARE_GPU_LAYERS.includes(t.layer.name);
