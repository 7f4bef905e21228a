// Generation (session/generate.ts) on the tiny model: every cell is drawn in one batch, so a count
// past the backend's memory must say to generate fewer, not to change a batch the command lacks.

import { expect, test } from 'vitest';
import { WasmBackend } from '../../runtime/wasm.ts';
import { generate } from '../../session/generate.ts';
import { ModelRuntime } from '../../session/model.ts';
import type { OpenedRun } from '../../session/run.ts';
import { TINY_TARGET, tinyModel } from './tiny-model.ts';

test('20 million cells (7.7 GB of output) are refused at once, naming --n', async () => {
  const model = tinyModel();
  const runtime = new ModelRuntime(await WasmBackend.create(), model);
  runtime.init(1);
  const reference = { model, runtime, info: { labels: [] } } as unknown as OpenedRun;
  const t0 = performance.now();
  const err = await generate({ reference, n: 20_000_000, labels: [] }).then(() => undefined, (e: Error) => e);
  expect(err?.message).toMatch(/^generate: the 20000000 cells are generated in one batch, which does not fit Tiny on this backend; generate fewer \(--n\)\. \(wasm: out of memory: 7680000000 more bytes would exceed the 4 GiB WebAssembly limit \(\d+ in use\)\)$/);
  expect(performance.now() - t0).toBeLessThan(2000);
  // Within bounds the same runtime generates.
  expect((await generate({ reference, n: 2, labels: [] })).cells).toHaveLength(2);
  runtime.destroy();
});

test('a reference and a target run of different image sizes are refused, naming both runs (the target failed on a channel of "768 values, not 2048")', async () => {
  const backend = await WasmBackend.create();
  const opened = (model: ReturnType<typeof tinyModel>, dir: string) => ({ model, runtime: new ModelRuntime(backend, model), dir, info: { labels: ['Golgi'] } }) as unknown as OpenedRun;
  const reference = opened(tinyModel(), 'runs/ref');
  const target = opened(tinyModel({ ...TINY_TARGET, size: [6, 4], classes: 1 }), 'runs/tgt3');
  await expect(generate({ reference, target, n: 1, labels: ['Golgi'] })).rejects.toThrow('generate: the reference model (runs/ref) takes 8×6 cells but the target model (runs/tgt3) takes 6×4; give two runs of one image size');
  for (const r of [reference, target]) r.runtime.destroy();
});
