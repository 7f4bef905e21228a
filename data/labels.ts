// The 24 structure classes of the Allen Institute data; sorted alphabetically they give the
// class index (statistical-cell.md §3.1).

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
