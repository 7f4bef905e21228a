// Option parsers and options shared by the subcommands.

import { InvalidArgumentError, Option } from 'commander';

export const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};
export const list = (v: string) => {
  const s = v.replace(/^\[|\]$/g, '').split(/[,x×]/).map(Number);
  if (s.some((n) => !Number.isInteger(n) || n <= 0)) throw new InvalidArgumentError('expected positive integers, e.g. 64,40');
  return s;
};
/** Training fixes how images of another size are treated (default exact); later commands follow the run unless told. */
export const fitOption = (forRun = false) => {
  const o = new Option('--fit <how>', `images of another size than the model's: exact (an error) or crop-pad (centre-crop / zero-pad, as the paper does)${forRun ? "; default: as the run was trained" : ''}`).choices(['exact', 'crop-pad']);
  return forRun ? o : o.default('exact');
};
export const backendOption = () => new Option('--backend <kind>', 'auto (a hardware GPU → webgpu, else wasm), webgpu or wasm').default('auto');
