// The paper's batch sampling: each iteration draws a random batch of distinct training cells.
// The draw for iteration t depends only on (seed, t), so a resumed run sees exactly the batches
// an uninterrupted one would, with no generator state to save.

/** splitmix32-style hash of (seed, t, k) to a float in [0, 1). */
function uniform(seed: number, t: number, k: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(t + 0x632be5ab, 0xc2b2ae35) ^ Math.imul(k + 1, 0x27d4eb2f)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** `size` distinct indices in [0, n) for iteration `t` (a partial Fisher–Yates shuffle). */
export function batchIndices(n: number, size: number, seed: number, t: number): number[] {
  if (size > n) throw new Error(`a batch of ${size} distinct cells needs at least ${size} cells, the split has ${n}`);
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let k = 0; k < size; k++) {
    const j = k + Math.floor(uniform(seed, t, k) * (n - k));
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(k) ?? k);
    out.push(vj);
  }
  return out;
}
