// Label fidelity of a target model: does the structure it generates for a label sit where that
// structure sits in real cells? Measured by one number per cell that the synthetic rules fix per
// structure — the fraction of the structure's signal inside the nucleus (nucleoli ≈ 1, nuclear
// envelope in between, mitochondria or the plasma membrane ≈ 0) — compared between structures
// generated in real cells and real cells of that label.

/** The nucleus of a cell: its DNA channel above `level` × its maximum (DNA fills the nucleus). */
export function nucleusMask(dna: ArrayLike<number>, level = 0.2): Uint8Array {
  let max = 0;
  for (let i = 0; i < dna.length; i++) max = Math.max(max, dna[i]);
  const mask = new Uint8Array(dna.length);
  if (max <= 0) return mask;
  for (let i = 0; i < dna.length; i++) mask[i] = dna[i] > level * max ? 1 : 0;
  return mask;
}

/** Σ s·mask / Σ s over the positive signal s (NaN when there is none: an empty image says nothing). */
export function fractionInside(structure: ArrayLike<number>, mask: ArrayLike<number>): number {
  let inside = 0;
  let total = 0;
  for (let i = 0; i < structure.length; i++) {
    const s = Math.max(0, structure[i]);
    total += s;
    if (mask[i]) inside += s;
  }
  return total > 0 ? inside / total : NaN;
}

export interface LabelFidelity {
  label: string;
  /** Mean fraction inside the nucleus over real cells of the label (NaN: none in the data). */
  real: number;
  nReal: number;
  /** Mean fraction inside the nucleus of the structure generated for the label in each given cell. */
  generated: number;
  nGenerated: number;
  /** |generated − real|. */
  error: number;
}

export interface FidelityCell {
  dna: ArrayLike<number>;
  structure: ArrayLike<number>;
}

const mean = (xs: number[]) => {
  const v = xs.filter((x) => !Number.isNaN(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
};

/**
 * Per label: `real` from the real cells of that label, `generated` from the structures generated
 * for that label (each in a real cell, whose DNA gives the nucleus).
 */
export function labelFidelity(labels: readonly string[], real: { label: string; cell: FidelityCell }[], generated: { label: string; cell: FidelityCell }[]): LabelFidelity[] {
  const inside = (c: FidelityCell) => fractionInside(c.structure, nucleusMask(c.dna));
  return labels.map((label) => {
    const r = real.filter((x) => x.label === label).map((x) => inside(x.cell));
    const g = generated.filter((x) => x.label === label).map((x) => inside(x.cell));
    const fr = mean(r);
    const fg = mean(g);
    return { label, real: fr, nReal: r.length, generated: fg, nGenerated: g.length, error: Math.abs(fg - fr) };
  });
}

/**
 * How much the generated structure depends on the label against how much it depends on the cell:
 * the mean absolute pixel difference between two labels generated in the same cell, and between
 * two cells generated with the same label (`images[label][cell]`, same size everywhere). A model
 * that ignores its label has the first near 0; one that has learned its labels has it larger
 * than the second.
 */
export function labelVersusCellDifference(images: ArrayLike<number>[][]): { betweenLabels: number; betweenCells: number } {
  const mad = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
    return s / a.length;
  };
  const pairs = (n: number) => Array.from({ length: n }, (_, i) => Array.from({ length: i }, (_, j) => [j, i] as const)).flat();
  const L = images.length;
  const C = images[0]?.length ?? 0;
  const betweenLabels = mean(Array.from({ length: C }, (_, c) => pairs(L).map(([a, b]) => mad(images[a][c], images[b][c]))).flat());
  const betweenCells = mean(images.flatMap((row) => pairs(C).map(([a, b]) => mad(row[a], row[b]))));
  return { betweenLabels, betweenCells };
}
