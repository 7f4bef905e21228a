// Opening a finished (or interrupted) training run: rebuild its model from run.json and load a
// checkpoint (best, latest, or a name) into a runtime.

import { join } from 'node:path';
import type { CompiledModel } from '../compiler/model.ts';
import type { Backend } from '../runtime/backend.ts';
import { ModelRuntime } from '../runtime/model.ts';
import { loadCheckpoint, resolveCheckpoint, type Sidecar } from '../train/checkpoint.ts';
import { loadModel, readRunInfo, type RunInfo } from './common.ts';

export interface OpenedRun {
  info: RunInfo;
  model: CompiledModel;
  runtime: ModelRuntime;
  sidecar: Sidecar;
  checkpoint: string;
}

export async function openRun(dir: string, backend: Backend, which = 'best'): Promise<OpenedRun> {
  const info = readRunInfo(dir);
  const ckDir = join(dir, 'checkpoints');
  // `best` exists only once a validation ran; fall back to the latest checkpoint.
  const name = resolveCheckpoint(ckDir, which) ?? (which === 'best' ? resolveCheckpoint(ckDir, 'latest') : null);
  if (!name) throw new Error(`${dir}: no checkpoint '${which}' in ${ckDir}`);
  const model = await loadModel(info.model, info.overrides);
  const { sidecar, tensors } = loadCheckpoint(ckDir, name, model);
  const runtime = new ModelRuntime(backend, model);
  runtime.writeAll(tensors, join(ckDir, name));
  return { info, model, runtime, sidecar, checkpoint: name };
}
