// Deterministic pseudo-random numbers for test inputs: mulberry32 (data/random.ts, which has no
// imports, so the fuzzer's child processes outside vitest use it too).

export { mulberry32 as rng } from '../data/random.ts';
