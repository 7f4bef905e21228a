// Option parsers and options shared by the subcommands. This module loads nothing but commander,
// so that `statcell --help` answers at once; the commands load their code when they run.

import { InvalidArgumentError, Option } from 'commander';

export const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};
/** A seed: below 2^31, so that the seeds derived from it stay integers that the random kernels take (a larger one failed after start-up). */
export const seed = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 31) throw new InvalidArgumentError('expected a whole number from 0 to 2147483647');
  return n;
};
/** A count that must be at least 1 (a batch, z samples, epochs, cells): 0 would loop forever, average over nothing or do nothing. */
export const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
export const list = (v: string) => {
  const s = v.replace(/^\[|\]$/g, '').split(/[,x×]/).map(Number);
  if (s.some((n) => !Number.isInteger(n) || n <= 0)) throw new InvalidArgumentError('expected positive integers, e.g. 64,40');
  return s;
};
/**
 * `--fit`: training fixes how images of another size are treated (exact unless told); later
 * commands, and train --resume, follow the run. No default here, so that they can take the run's.
 */
export const fitOption = (forRun = false) =>
  new Option('--fit <how>', `images of another size than the model's: exact (an error) or crop-pad (centre-crop / zero-pad, as the paper does); default: ${forRun ? 'as the run was trained' : 'exact'}`).choices(['exact', 'crop-pad']);
export const backendOption = () => new Option('--backend <kind>', 'auto (a hardware GPU → webgpu, else wasm), webgpu or wasm').default('auto');
/** The checkpoint a command reads of each run (session/run.ts runModel says which it took). */
export const checkpointOption = (dflt: 'best' | 'latest' = 'best', of = 'of each run') => new Option('--checkpoint <name>', `best, latest or a checkpoint name, ${of}`).default(dflt);
/** Checked where it is used (compiler/precision.ts parsePrecision), so the message names the values allowed. */
export const precisionOption = (resumable = false) =>
  new Option('--precision <p>', `f32, or f16-storage: every activation and activation gradient rounded to binary16 as f16 buffers would hold it (parameters, gradients of weights, Adam and the loss stay f32); default f32${resumable ? ", or the run's with --resume" : ''}`);

/** `--set k=v`: v as JSON when it parses (numbers, lists, booleans), else as a string. */
export function parseSet(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new Error(`--set ${value}: expected name=value, e.g. --set beta=0.3 or --set size=[64,40]`);
  const k = value.slice(0, eq).trim();
  const raw = value.slice(eq + 1).trim();
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    // Numbers JSON does not write (.3, 3., +3) are numbers all the same.
    v = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  // JSON reads 1e309 as Infinity: no parameter wants that.
  const finite = (x: unknown): boolean => (typeof x === 'number' ? Number.isFinite(x) : Array.isArray(x) ? x.every(finite) : true);
  if (!finite(v)) throw new Error(`--set ${value}: ${Array.isArray(v) ? 'a number in the list' : raw} is beyond ±1.8e308, the largest a 64-bit float holds (it would be Infinity); give a finite number`);
  // As the model language refuses an override given twice (SC1103): the last would win unseen.
  if (Object.hasOwn(previous, k)) throw new Error(`--set ${k} is given twice (${JSON.stringify(previous[k])}, then ${raw}); give it once`);
  return { ...previous, [k]: v };
}

export const log = (line: string) => process.stderr.write(line + '\n');

/**
 * The command line that started this statcell (node, its flags such as tsx's loader, and the
 * entry script: cli/statcell.js, dist/statcell.mjs or an installed bin), so child processes and
 * scheduler scripts start the same one, wherever the code that spawns them was bundled.
 */
export const selfCommand = (): string[] => [process.execPath, ...process.execArgv, process.argv[1]];

/**
 * A command that writes a folder whole exits on SIGINT, SIGTERM and SIGHUP as `train` does
 * (130/143/129), saying so: the exit runs the removal of its temporary folder (data/files.ts
 * writeFolder), which a death by the signal itself would skip.
 */
export function exitOnSignals(what: string): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const)
    process.once(signal, () => {
      log(`${what}: interrupted (${signal}); nothing written`);
      process.exit(code);
    });
}
