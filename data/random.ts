// mulberry32: the one small seeded generator of statcell (synthetic cells, permutation tests,
// coupling partners, UMAP in the page, test inputs). No imports, so any layer and the fuzzer's
// child processes can use it.

/** Uniform numbers in [0, 1) from a 32-bit state (taken as given: 0 is a valid seed here). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** mulberry32 whose seed 0 is replaced by a fixed odd constant (the generators that always did so). */
export const seededRandom = (seed: number): (() => number) => mulberry32(seed >>> 0 || 0x9e3779b9);
