// statcell — the command line: synth, train, eval, embed, generate, and demo (the main job).
// Exit codes: 0 done, 1 error (message on stderr), 130/143 stopped by SIGINT/SIGTERM after
// writing a checkpoint.

import { Command, Option } from 'commander';
import type { Split } from '../data/split.ts';
import { backendOption, checkpointOption, exitOnSignals, fitOption, int, list, log, parseSet, positiveInt, precisionOption, seed } from './options.ts';
import { registerAnalyze } from './analyze.ts';
import { registerSweep } from './sweep.ts';
import { registerWeb } from './web.ts';

// Commands load their code when they run (dynamic imports), so that `--help` and argument errors
// answer at once: the DSL parser, the kernels and the image codecs take a second to load.
const backendFor = async (choice: string) => (await import('./common.ts')).backendFor(choice, log);

const program = new Command('statcell').description('The Statistical Cell on WebGPU and WebAssembly').showHelpAfterError();
// Dawn and the Vulkan loader print from native code; runtime/device.ts keeps that off the terminal unless asked.
program
  .option('--verbose', 'let the GPU drivers\' own messages (Dawn, Vulkan) through to the terminal; also env STATCELL_VERBOSE=1')
  .hook('preAction', () => {
    if (program.opts().verbose) process.env.STATCELL_VERBOSE = '1';
  });

program
  .command('synth')
  .description('write a synthetic data set (manifest + PNG/TIFF) in the Allen Institute format')
  .requiredOption('--out <dir>', 'output folder')
  .option('--cells <n>', 'cells before controls', positiveInt, 200)
  .addOption(new Option('--dims <n>', '2 or 3').choices(['2', '3']).default('2'))
  .option('--size <list>', 'Y,X(,Z); default 160,96 (2D) or 160,96,64 (3D), the paper\'s')
  .option('--seed <n>', 'seed', seed, 1)
  .option('--drugs <n>', 'drug-treated cells per drug × structure (Brefeldin A, paclitaxel, DMSO × Golgi, Microtubules), evaluation-only; 0: none', int, 0)
  .action(async (o) => {
    const [{ synthesize }, { existsSync }, { join }] = await Promise.all([import('../data/synth.ts'), import('node:fs'), import('node:path')]);
    const dims = Number(o.dims) as 2 | 3;
    const size = o.size ? list(o.size) : dims === 3 ? [160, 96, 64] : [160, 96];
    // Rewriting a data set in place would change, unseen, the cells of every run trained on it.
    if (existsSync(join(o.out, 'manifest.csv'))) throw new Error(`synth: ${o.out} holds a data set already (manifest.csv): runs trained on it would read other cells; give a new folder`);
    if (o.cells > 1_000_000) throw new Error(`--cells ${o.cells}: at most 1000000`);
    if (size.some((v) => !Number.isInteger(v) || v < 8 || v > 4096) || size.reduce((a, b) => a * b, 1) > 2 ** 27)
      throw new Error(`--size ${size.join(',')}: each size a whole number from 8 to 4096, at most 2^27 voxels a cell (the paper's 3D cells are 160×96×64)`);
    const m = synthesize({ out: o.out, cells: o.cells, dims, size, seed: o.seed, drugs: o.drugs });
    log(`wrote ${m}`);
  });

program
  .command('train')
  .description('train a model; checkpoints every epoch in <out>/checkpoints, metrics in <out>/metrics.jsonl')
  .option('--model <file>', 'a .vae model file (models/reference2d.vae, … or your own); with --resume, default: the run\'s')
  .option('--data <manifest>', "manifest CSV; with --resume, default: the run's")
  .requiredOption('--out <dir>', 'run directory')
  .option('--set <name=value>', 'override a model parameter (repeatable), e.g. --set beta=0.3 --set size=[64,40]', parseSet, {})
  .addOption(backendOption())
  .option('--batch <n>', "batch size (default: 32, or the run's with --resume)", positiveInt)
  .option('--micro-batch <n>', 'run the batch in micro-batches of n and accumulate gradients (when a batch does not fit the device)', positiveInt)
  .option('--profile', 'before training, print the top kernels of one training step by time (WebGPU: timestamp queries when the adapter has them; Wasm: host clock)')
  .addOption(precisionOption(true))
  .option('--epochs <n>', "epochs (one epoch = ceil(n_train / batch) iterations; default 1, or the run's with --resume)", positiveInt)
  .option('--iterations <n>', 'total iterations (instead of --epochs)', positiveInt)
  .option('--seed <n>', "seed of initialisation and batch sampling (default: 1, or the run's with --resume)", seed)
  .option('--checkpoint-every <n>', 'also checkpoint every n iterations', positiveInt)
  .option('--keep <n>', 'epoch checkpoints kept besides the best and the latest (older ones are deleted)', int, 5)
  .option('--resume', 'continue from <out>/checkpoints/latest')
  .option('--skip-bad', 'log and skip unreadable manifest rows instead of stopping')
  .addOption(fitOption(true))
  .option('--eval-samples <n>', 'z samples per cell for the validation ELBO', positiveInt, 10)
  .option('--log-every <n>', 'without a terminal: a progress line every n steps', positiveInt)
  .addOption(new Option('--step-delay-ms <n>', 'test aid: pause after each step').argParser(int).hideHelp())
  .action(async (o) => {
    const { trainCommand } = await import('./train.ts');
    const r = await trainCommand({ ...o, evalSamples: o.evalSamples });
    log(`${r.stopped === 'done' ? 'finished' : `stopped by ${r.stopped}`} at iteration ${r.iteration}; latest checkpoint ${r.latest}${r.best ? `, best ${r.best.name} (validation ELBO ${r.best.elbo.toFixed(3)})` : ''}`);
    if (r.stopped !== 'done') process.exitCode = r.stopped === 'SIGINT' ? 130 : 143;
    r.runtime.destroy();
  });

program
  .command('eval')
  .description("the model's own evaluation of a split (its `evaluate` values: the ELBO and its parts, eval mode, JSON on stdout)")
  .requiredOption('--run <dir>', 'run directory of statcell train')
  .addOption(checkpointOption('best', 'of the run'))
  .addOption(new Option('--split <split>', 'which cells').choices(['train', 'validate', 'test', 'all']).default('test'))
  .option('--data <manifest>', 'manifest (default: the one the run trained on)')
  .option('--samples <n>', 'z samples per cell', positiveInt, 10)
  .option('--batch <n>', "batch size (default: the run's); the z draws follow the batches, so another batch gives other draws", positiveInt)
  .option('--skip-bad', 'log and skip unreadable rows')
  .addOption(fitOption(true))
  .addOption(backendOption())
  .action(async (o) => {
    const { evalCommand } = await import('./evaluate.ts');
    const backend = await backendFor(o.backend);
    const s = await evalCommand({ ...o, split: o.split as Split }, backend, log);
    process.stdout.write(JSON.stringify(s) + '\n');
  });

program
  .command('embed')
  .description("write the encoder's mean of every cell of a split as CSV: CellId, split, label, mu_0 … mu_k")
  .requiredOption('--run <dir>', 'run directory')
  .requiredOption('--out <file>', 'CSV file')
  .addOption(checkpointOption('best', 'of the run'))
  .addOption(new Option('--split <split>', 'which cells').choices(['train', 'validate', 'test', 'all']).default('all'))
  .option('--data <manifest>', 'manifest (default: the run\'s)')
  .option('--batch <n>', 'batch size', positiveInt)
  .option('--skip-bad', 'log and skip unreadable rows')
  .addOption(fitOption(true))
  .addOption(backendOption())
  .action(async (o) => {
    const { embedCommand } = await import('./evaluate.ts');
    const backend = await backendFor(o.backend);
    const n = await embedCommand(o, backend, log);
    log(`wrote ${n} cells to ${o.out}`);
  });

program
  .command('generate')
  .description('generate whole cells (reference model, then target model per label) or structures in real cells (--data)')
  .option('--reference <dir>', 'run directory of the reference model')
  .option('--target <dir>', 'run directory of the target model')
  .option('--labels <names>', 'structure labels, separated by ";" or "," (a label of the run that holds them is taken whole); default: every label of the target run')
  .option('--n <n>', 'how many cells; each gets one structure per label, written as <cell>-<label> (003-Golgi)', positiveInt, 4)
  .option('--data <manifest>', 'take the membrane and DNA of real cells from this manifest instead of generating them')
  .addOption(new Option('--split <split>', 'split of --data').choices(['train', 'validate', 'test', 'all']).default('test'))
  .option('--format <f>', 'png, ome-tiff (tiff), zarr (OME-Zarr), both (png + ome-tiff) or all', 'png')
  .option('--seed <n>', 'which noise draws', seed, 0)
  .requiredOption('--out <dir>', 'output folder')
  .addOption(checkpointOption())
  .addOption(fitOption(true))
  .addOption(backendOption())
  .action(async (o) => {
    const [{ openRun }, { openSplit }, { generate }, { writeGeneratedFiles, fileKinds, pixelSizeForRun }, { parseLabelList }, { imageDims }] = await Promise.all([import('../session/run.ts'), import('./common.ts'), import('../session/generate.ts'), import('./generate.ts'), import('../data/labels.ts'), import('../data/decode.ts')]);
    fileKinds(o.format); // a bad --format fails before anything is opened
    exitOnSignals('generate');
    const backend = await backendFor(o.backend);
    const reference = o.reference ? await openRun(o.reference, backend, o.checkpoint, log) : undefined;
    const target = o.target ? await openRun(o.target, backend, o.checkpoint, log) : undefined;
    // A label named twice would write its files twice over.
    const labels = [...new Set(o.labels === undefined ? (target?.info.labels ?? []) : parseLabelList(String(o.labels), (target ?? reference)?.info.labels ?? []))];
    let real;
    if (o.data) {
      const run = (target ?? reference)!;
      // The real cells give their channels only (their own labels play no part), so any labels will do.
      const ds = openSplit(o.data, run.model, o.split as Split, { log, fit: o.fit ?? run.info.fit });
      real = await ds.batch(Array.from({ length: Math.min(o.n, ds.length) }, (_, i) => i));
      if (ds.length < o.n) log(`generate: the ${o.split} split of ${o.data} has ${ds.length} cell${ds.length === 1 ? '' : 's'}: ${ds.length} generated, not --n ${o.n} (--split all takes every cell)`);
    }
    const g = await generate({ reference, target, n: real ? real.rows.length : o.n, labels, real, iteration: o.seed });
    const files = await writeGeneratedFiles(g, o.out, o.format, await pixelSizeForRun(o.data ?? (target ?? reference)!.info.data, imageDims(g.size)));
    log(`wrote ${files.length} files to ${o.out}`);
  });

program
  .command('report')
  .description('write a report folder (index.html with loss curves, reconstructions, generated cells) for trained runs')
  .requiredOption('--reference <dir>', 'run directory of the reference (or any) model')
  .option('--target <dir>', 'run directory of the target model')
  .option('--data <manifest>', "cells to reconstruct: this manifest's test split (default: the reference run's)")
  .option('--labels <names>', 'structures to generate in real cells, separated by ";" or "," (a label of the run that holds them is taken whole; default: the first four labels of the target run)')
  .requiredOption('--out <dir>', 'report folder')
  .addOption(checkpointOption())
  .addOption(fitOption(true))
  .addOption(backendOption())
  .action(async (o) => {
    const [{ openRun }, { openSplit }, { writeReport }, { parseLabelList }] = await Promise.all([import('../session/run.ts'), import('./common.ts'), import('../viz/report.ts'), import('../data/labels.ts')]);
    const backend = await backendFor(o.backend);
    const reference = await openRun(o.reference, backend, o.checkpoint, log);
    const target = o.target ? await openRun(o.target, backend, o.checkpoint, log) : undefined;
    const cells = openSplit(o.data ?? reference.info.data, reference.model, 'test', { log, labels: (target ?? reference).info.labels, fit: o.fit ?? reference.info.fit });
    const labels = o.labels ? parseLabelList(String(o.labels), (target ?? reference).info.labels) : (target?.info.labels ?? []).slice(0, 4);
    const html = await writeReport(o.out, { reference: { run: reference, dir: o.reference }, target: target && { run: target, dir: o.target }, cells, labels, backend: backend.description });
    log(`report written: ${html}`);
  });

program
  .command('compile')
  .description("print a model's layers with output shapes and parameter counts, the totals, and the planned memory per entry point")
  .argument('<model>', 'a .vae model file')
  .option('--set <name=value>', 'override a model parameter (repeatable)', parseSet, {})
  .option('--batch <n>', 'batch size for shapes and planned memory', positiveInt, 8)
  .option('--emit <what>', 'also dump the training step lowered: ir or wgsl')
  .addOption(precisionOption())
  .action(async (file, o) => {
    if (o.emit && !['ir', 'wgsl'].includes(o.emit)) throw new Error(`--emit ${o.emit}: expected ir or wgsl`);
    const [{ compileReport }, { loadModel }] = await Promise.all([import('./compile.ts'), import('../session/run.ts')]);
    process.stdout.write(compileReport(loadModel(file, o.set), o.batch, o.emit, o.precision).text + '\n');
  });

program
  .command('run')
  .description('run one entry point of a model (encode, decode, generate, …) on tensors from a safetensors file')
  .argument('[model]', 'a .vae model file (or --run)')
  .option('--run <dir>', "a training run: its model with the run's overrides, and (without --weights) its checkpoint")
  .addOption(checkpointOption('best', 'with --run'))
  .option('--weights <file>', 'safetensors with every parameter and state tensor (names as in test/golden/README.md; a param/ prefix is accepted)')
  .requiredOption('--entry <name>', 'entry point')
  .option('--input <file>', "safetensors with the entry's inputs by their names (none for an entry without inputs)")
  .option('--batch <n>', 'items to run when the entry has no inputs (a generator)', positiveInt)
  .requiredOption('--out <file>', 'safetensors to write the outputs to, by the entry\'s output names')
  .option('--set <name=value>', 'override a model parameter (repeatable)', parseSet, {})
  .option('--seed <n>', 'random draws of the entry (generate)', seed, 0)
  .addOption(backendOption())
  .action(async (file, o) => {
    if (!file === !o.run) throw new Error('statcell run: give a model file or --run <dir>, not both');
    const [{ loadModel, runModel }, { runEntry }, { join }] = await Promise.all([import('../session/run.ts'), import('./compile.ts'), import('node:path')]);
    let model;
    let weights = o.weights;
    if (o.run) {
      const r = runModel(o.run, o.checkpoint, o.weights ? undefined : log, o.set); // with --weights, the checkpoint gives only the model
      model = r.model;
      weights ??= join(o.run, 'checkpoints', `${r.name}.safetensors`);
    } else {
      if (!weights) throw new Error('statcell run: --weights <file> is needed with a model file');
      model = loadModel(file, o.set);
    }
    const backend = await backendFor(o.backend);
    const names = await runEntry(model, backend, { weights, entry: o.entry, input: o.input, out: o.out, iteration: o.seed, batch: o.batch });
    log(`wrote ${names.join(', ')} to ${o.out}`);
  });

program
  .command('demo', { isDefault: false })
  .description('the main job: synthesize 2D cells, train the reference and the target model, write report/index.html')
  .option('--data <dir>', 'data set folder (synthesized when it has no manifest.csv)', 'datasets/synthetic-2d')
  .option('--cells <n>', 'cells to synthesize (before controls)', int, 240)
  .option('--size <list>', 'image size Y,X', list, [64, 40])
  .option('--runs <dir>', 'run directories', 'runs/demo')
  .option('--report <dir>', 'report folder', 'report')
  .option('--batch <n>', 'batch size', positiveInt, 16)
  .option('--epochs <n>', 'epochs per model', positiveInt, 30)
  .option('--eval-samples <n>', 'z samples per cell for validation', positiveInt, 2)
  .option('--channels <list>', 'encoder widths', list, [16, 32, 64])
  .option('--latent <n>', 'latent size', positiveInt, 32)
  .option('--resume', 'continue interrupted runs')
  .addOption(backendOption())
  .action(async (o) => {
    const { demoCommand } = await import('./demo.ts');
    await demoCommand({ ...o, runs: o.runs, report: o.report });
  });

// Each area registers its own subcommands (cli/analyze.ts, cli/sweep.ts, cli/web.ts).
registerAnalyze(program);
registerSweep(program);
registerWeb(program);

program.parseAsync(process.argv).catch((e: Error) => {
  // Model diagnostics are already `file:line:col: error[CODE]: …` with the source line.
  log(e.name === 'DiagnosticError' ? e.message : `statcell: ${e.message}`);
  if (process.env.STATCELL_DEBUG) log(e.stack ?? '');
  process.exit(1);
});
