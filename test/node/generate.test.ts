// Generation (session/generate.ts) on the tiny model: every cell is drawn in one batch, so a count
// past the backend's memory must say to generate fewer, not to change a batch the command lacks.

import { expect, test } from 'vitest';
import { WasmBackend } from '../../runtime/wasm.ts';
import { generate } from '../../session/generate.ts';
import { ModelRuntime } from '../../session/model.ts';
import type { OpenedRun } from '../../session/run.ts';
import { tinyModel } from './tiny-model.ts';

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
