// statcell as a library: compile a .vae model, open a backend, run and train it, read runs.
// The command line (cli/statcell.ts) is built on the same entry points.

export { compileModel } from './compiler/compile.ts';
export { compileModelFile, parameterCount } from './compiler/index.ts';
export { openBackend } from './runtime/device.ts';
export { ModelRuntime } from './session/model.ts';
export { openRun, loadModel, readRunInfo } from './session/run.ts';
export { evaluateCells } from './session/evaluate.ts';
export { generate } from './session/generate.ts';
export { train } from './train/trainer.ts';
export { synthesize } from './data/synth.ts';
export { readManifest } from './data/manifest.ts';
export { CellDataset } from './data/dataset.ts';
export { openSplit } from './cli/common.ts';
export type { CellSource } from './session/evaluate.ts';
export type { TrainOptions } from './train/trainer.ts';
