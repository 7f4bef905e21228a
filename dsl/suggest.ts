// "Did you mean …?" for unknown names: the closest known name by edit distance.

/** Optimal-string-alignment distance: Levenshtein plus swapping two neighbours (`rleu` → `relu`) as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/**
 * The known name closest to `name`: one that differs only in case, else one within a third of
 * the name's length in edits, at least 1 and at most 2 (a one-letter name only by case: `x`
 * suggests nothing, `kk` suggests `k`, `rleu` `relu`); ties go to the first in `known`.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const limit = name.length < 2 ? 0 : Math.min(2, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    if (k === name) continue;
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, k);
    if (d <= limit && d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

/** `["did you mean 'relu'?"]`, or `[]` when no known name is close: spread into a diagnostic's notes. */
export function didYouMean(name: string, known: Iterable<string>): string[] {
  const k = closestName(name, known);
  return k === undefined ? [] : [`did you mean '${k}'?`];
}
