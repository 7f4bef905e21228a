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
