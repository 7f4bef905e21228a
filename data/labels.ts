// Structure labels. The 24 classes of the Allen Institute data, sorted alphabetically, give the
// class index (statistical-cell.md §3.1) and are the default vocabulary; data with other labels
// bring their own (their distinct names, sorted).

export const CLASSES = [
  'Actin filaments',
  'Actomyosin bundles',
  'Adherens junctions',
  'Centrosome',
  'Control - Blank',
  'Control - DNA',
  'Control - Memb',
  'Control - Noise',
  'Control - Random',
  'Desmosomes',
  'Endoplasmic reticulum',
  'Endosomes',
  'Gap junctions',
  'Golgi',
  'Lysosome',
  'Matrix adhesions',
  'Microtubules',
  'Mitochondria',
  'Nuclear envelope',
  'Nucleolus (Dense Fibrillar Component)',
  'Nucleolus (Granular Component)',
  'Peroxisomes',
  'Plasma membrane',
  'Tight junctions',
] as const;

export type ClassName = (typeof CLASSES)[number];

/** Class indices from the names present, sorted alphabetically (as the authors' loader does). */
export function labelIndex(names: Iterable<string>): Map<string, number> {
  const sorted = [...new Set(names)].sort();
  return new Map(sorted.map((n, i) => [n, i]));
}

/** The label vocabulary of a data set: the 24 Allen classes when every label is one of them, else the data's own names, sorted. */
export function labelsOf(names: Iterable<string>): readonly string[] {
  const distinct = [...new Set(names)];
  const allen = new Set<string>(CLASSES);
  return distinct.every((n) => allen.has(n)) ? CLASSES : distinct.sort();
}

/**
 * Structure labels named in one argument, separated by ";" or ",", read against the vocabulary they
 * must come from: labels may hold those characters themselves ("Golgi, apparatus"), so at each
 * place the longest run of pieces that, rejoined, is a label of the vocabulary is taken; a piece
 * that starts no label is taken alone, as written, for the caller to report as unknown.
 */
export function parseLabelList(text: string, vocabulary: readonly string[]): string[] {
  const known = new Set(vocabulary);
  // Pieces and separators alternate: [piece, sep, piece, …]; pieces i…j−1 rejoined as written are tokens 2i…2j−2.
  const tokens = text.split(/([;,])/);
  const pieces = (tokens.length + 1) / 2;
  const run = (i: number, j: number) => tokens.slice(2 * i, 2 * j - 1).join('').trim();
  const out: string[] = [];
  for (let i = 0; i < pieces; ) {
    let j = pieces;
    while (j > i + 1 && !known.has(run(i, j))) j--;
    if (run(i, j)) out.push(run(i, j));
    i = j;
  }
  return out;
}

/** A label as part of a file name: runs of anything but letters and digits (of any script) become '_'. */
export const labelStem = (label: string): string => label.replace(/[^\p{L}\p{N}]+/gu, '_') || '_';

/**
 * File-name stems of several labels, each distinct even on a case-insensitive file system: a stem
 * already taken gets '-2', '-3', … (labels that differ only in punctuation, "a,b" and "a;b", would
 * otherwise write the same files, the later over the earlier).
 */
export function uniqueStems(labels: readonly string[]): string[] {
  const taken = new Set<string>();
  return labels.map((label) => {
    const stem = labelStem(label);
    let s = stem;
    for (let k = 2; taken.has(s.toLowerCase()); k++) s = `${stem}-${k}`;
    taken.add(s.toLowerCase());
    return s;
  });
}
