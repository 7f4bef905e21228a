// Built-in synthetic cells: a data set in the Allen Institute's format (manifest CSV + 3D TIFF +
// 2D PNG) whose cells vary in size, elongation, height and position, some rounded up as in
// mitosis, with all 24 structure classes placed by rules that mirror the biology and the five
// controls built as the paper builds them. Ground truth goes into extra manifest columns.
// Seeded: the same seed writes the same bytes.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { CLASSES } from './labels.ts';
import { seededRandom } from './random.ts';
import { encodeTiff, imagejDescription } from './tiff.ts';
import { makeDirs } from './files.ts';

export interface SynthOptions {
  out: string;
  /** Cells before controls. */
  cells: number;
  dims: 2 | 3;
  /** [Y, X] or [Y, X, Z]. */
  size: number[];
  seed: number;
  /** Fraction of cells cloned into the five controls (the paper: about 1/19). */
  controlFraction?: number;
  /**
   * Drug-treated cells (statistical-cell.md §3.3): this many cells per drug × imaged structure,
   * appended after the other cells with drug_label, concentration and truth_drug_effect columns.
   * Evaluation-only (no split holds them). 0 (the default) writes exactly what it wrote before.
   */
  drugs?: number;
}

/** The paper's drugs, their concentrations and their effect by construction. */
export const DRUGS = [
  { label: 'Brefeldin A', concentration: '5 µM', affects: 'Golgi', effect: 'golgi_dispersed' },
  { label: 'Paclitaxel', concentration: '5 µM', affects: 'Microtubules', effect: 'microtubules_bundled' },
  { label: 'DMSO', concentration: '0.1% v/v', affects: '', effect: 'none' },
] as const;
/** The structures imaged in drug-treated cells. */
export const DRUG_STRUCTURES = ['Golgi', 'Microtubules'] as const;
/** Bundles in a paclitaxel-treated cell (untreated: 24 fine filaments). */
export const BUNDLES = 5;

/** Deterministic generator: mulberry32 with Box–Muller normals. */
class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hi: number): number {
    return Math.floor(this.range(lo, hi + 1));
  }
  normal(): number {
    return Math.sqrt(-2 * Math.log(this.next() + 1e-12)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** A cell's geometry in voxel coordinates (y, x, z); z is ignored in 2D. */
export interface Cell {
  centre: number[];
  /** Semi-axes along the cell's own long axis, short axis, height. */
  axes: number[];
  angle: number;
  nucleusCentre: number[];
  nucleusAxes: number[];
  /** The nucleus's centre in the cell's frame (u, v), in units of the cell's semi-axes. */
  nucleusOffset: number[];
  /** Nucleoli (every interphase cell has them; the nucleolus classes image them; DNA stain is dimmer there). */
  nucleoli: Spots;
  /** Chromatin foci: bright spots of the DNA stain, a per-cell pattern only the DNA channel shows. */
  chromatin: Spots;
  mitotic: boolean;
  /** Boundary wobble: amplitudes and phases of low angular harmonics. */
  wobble: [number, number][];
}

/** How far (normalised cell radius) the nucleus's edge may reach: below the 0.79 of the deepest wobble (three harmonics of ≤ 0.07). */
const NUCLEUS_REACH = 0.75;

function randomCell(r: Rng, size: number[], dims: 2 | 3): Cell {
  const [Y, X] = size;
  const Z = dims === 3 ? size[2] : 1;
  const mitotic = r.next() < 0.1;
  const long = r.range(0.26, 0.4) * Y;
  const elong = mitotic ? r.range(1, 1.1) : r.range(1.1, 1.9);
  const short = Math.min(long / elong, 0.45 * X);
  const height = dims === 3 ? (mitotic ? r.range(0.32, 0.42) : r.range(0.16, 0.3)) * Z : 1;
  const centre = [Y / 2 + r.range(-0.08, 0.08) * Y, X / 2 + r.range(-0.08, 0.08) * X, dims === 3 ? Z * 0.1 + height : 0];
  const angle = r.range(-0.5, 0.5);
  // The nucleus's semi-axes (fractions of the cell's) and its offset from the cell's centre (in
  // the cell's frame, fractions of its semi-axes) are drawn on their own, as in real cells, so the
  // DNA channel says what the membrane does not: with the nucleus's size and place following the
  // cell's, the membrane predicted the DNA and a model could ignore the DNA channel. The offset's
  // length is at most NUCLEUS_REACH − the larger relative semi-axis, which keeps the nucleus inside
  // the cell's wobbling boundary.
  const rel = mitotic ? [0.12, r.range(0.33, 0.44)] : [r.range(0.3, 0.55), r.range(0.4, 0.62)];
  const nucleusAxes = [long * rel[0], short * rel[1], height * (mitotic ? 0.6 : 0.65)];
  const reach = r.range(0, Math.max(0, NUCLEUS_REACH - Math.max(...rel)));
  const towards = r.range(-Math.PI, Math.PI);
  const nucleusOffset = [reach * Math.cos(towards), reach * Math.sin(towards)];
  const [ou, ov] = [nucleusOffset[0] * long, nucleusOffset[1] * short];
  const nucleusCentre = [centre[0] + ou * Math.cos(angle) - ov * Math.sin(angle), centre[1] + ou * Math.sin(angle) + ov * Math.cos(angle), centre[2] - height * 0.1];
  const wobble: [number, number][] = [2, 3, 5].map(() => [mitotic ? 0.01 : r.range(0, 0.07), r.range(0, 2 * Math.PI)]);
  const cell: Cell = { centre, axes: [long, short, height], angle, nucleusCentre, nucleusAxes, nucleusOffset, nucleoli: [], chromatin: [], mitotic, wobble };
  const inNucleus = (within: number) => (u: number, v: number, h: number) => frameAt(cell, toVoxel(cell, { u, v, h }), dims).rn < within;
  // Nucleoli disassemble in mitosis, and the chromosomes condense (no foci).
  if (!mitotic) {
    cell.nucleoli = spots(r, r.int(1, 3), inNucleus(0.6), [2.5, 4.5]);
    cell.chromatin = spots(r, r.int(6, 12), inNucleus(0.85), [0.8, 1.4]);
  }
  return cell;
}

/** A point given in the cell's frame (u, v in units of its semi-axes, h its height fraction) in voxel coordinates. */
function toVoxel(cell: Cell, s: { u: number; v: number; h: number }): number[] {
  const c = Math.cos(cell.angle);
  const sn = Math.sin(cell.angle);
  const a = s.u * cell.axes[0];
  const b = s.v * cell.axes[1];
  return [cell.centre[0] + a * c - b * sn, cell.centre[1] + a * sn + b * c, cell.centre[2] - cell.axes[2] + s.h * 2 * cell.axes[2]];
}

/** The brightest of Gaussian spots at voxel p (spots' centres precomputed by toVoxel); z counts double (anisotropic voxels). */
function spotIntensity(list: Spots, centres: number[][], p: number[], dims: number): number {
  let best = 0;
  for (const [i, s] of list.entries()) {
    let d2 = (p[0] - centres[i][0]) ** 2 + (p[1] - centres[i][1]) ** 2;
    if (dims === 3) d2 += ((p[2] - centres[i][2]) * 2) ** 2;
    if (d2 < 9 * s.radius * s.radius) best = Math.max(best, s.weight * Math.exp(-d2 / (2 * s.radius * s.radius)));
  }
  return best;
}

/** Per-voxel coordinates relative to a cell: normalised radii of the cell and the nucleus, and more. */
interface Frame {
  rc: number; // cell: < 1 inside, 1 at the membrane
  rn: number; // nucleus
  nu: number; // along the nucleus's long axis, in units of its long semi-axis
  u: number; // along the long axis, in units of the long semi-axis
  v: number; // along the short axis
  h: number; // height in the cell: 0 basal … 1 apical (3D), 0.5 in 2D
  theta: number; // angle around the cell centre
}

function frameAt(cell: Cell, p: number[], dims: number): Frame {
  const dy = p[0] - cell.centre[0];
  const dx = p[1] - cell.centre[1];
  const c = Math.cos(cell.angle);
  const s = Math.sin(cell.angle);
  const a = (dy * c + dx * s) / cell.axes[0];
  const b = (-dy * s + dx * c) / cell.axes[1];
  const theta = Math.atan2(b, a);
  let wob = 1;
  for (const [k, [amp, ph]] of cell.wobble.entries()) wob += amp * Math.cos((k + 2) * theta + ph);
  let rc2 = a * a + b * b;
  let h = 0.5;
  if (dims === 3) {
    const base = cell.centre[2] - cell.axes[2];
    h = (p[2] - base) / (2 * cell.axes[2]);
    // A dome: flat basal side, rounded apical side.
    const zz = h < 0 ? 1e3 : h > 0.5 ? ((h - 0.5) * 2) ** 2 : 0;
    rc2 = rc2 + zz;
  }
  const ny = (p[0] - cell.nucleusCentre[0]) ;
  const nx = (p[1] - cell.nucleusCentre[1]);
  const na = (ny * c + nx * s) / cell.nucleusAxes[0];
  const nb = (-ny * s + nx * c) / cell.nucleusAxes[1];
  let rn2 = na * na + nb * nb;
  if (dims === 3) rn2 += ((p[2] - cell.nucleusCentre[2]) / cell.nucleusAxes[2]) ** 2;
  return { rc: Math.sqrt(rc2) / wob, rn: Math.sqrt(rn2), nu: na, u: a, v: b, h, theta };
}

/** Point-like features: centres in cell coordinates (u, v, h) and radii in voxels. */
type Spots = { u: number; v: number; h: number; radius: number; weight: number }[];

function spots(r: Rng, n: number, where: (u: number, v: number, h: number) => boolean, radius: [number, number]): Spots {
  const out: Spots = [];
  for (let tries = 0; out.length < n && tries < n * 200; tries++) {
    const u = r.range(-1, 1);
    const v = r.range(-1, 1);
    const h = r.range(0.05, 0.95);
    if (where(u, v, h)) out.push({ u, v, h, radius: r.range(radius[0], radius[1]), weight: r.range(0.6, 1) });
  }
  return out;
}

/** A structure's intensity (0…1) at a voxel, built once per cell from the class's placement rule. */
type Painter = (f: Frame, p: number[]) => number;

/** drug: the drug_label of a treated cell; only Brefeldin A (Golgi) and paclitaxel (microtubules) change anything. */
function structurePainter(name: string, cell: Cell, r: Rng, dims: number, drug = ''): Painter {
  const inCytoplasm = (u: number, v: number, h: number) => {
    const f = frameAt(cell, toVoxel(cell, { u, v, h }), dims);
    return f.rc < 0.9 && f.rn > 1.15;
  };
  const blobPainter = (list: Spots, mask: (f: Frame) => boolean = () => true): Painter => {
    const centres = list.map((s) => toVoxel(cell, s));
    return (f, p) => (mask(f) ? spotIntensity(list, centres, p, dims) : 0);
  };
  const shell = (x: number, at: number, width: number) => Math.exp(-(((x - at) / width) ** 2));
  /** exp(−k·Δθ²) with Δθ the wrapped angle between θ and t. */
  const ray = (theta: number, t: number, k: number) => {
    const d = ((theta - t + 3 * Math.PI) % (2 * Math.PI)) - Math.PI;
    return Math.exp(-k * d * d);
  };
  const lateral = (f: Frame, lo: number, hi: number) => (dims === 3 ? (f.h >= lo && f.h <= hi ? 1 : 0) : 1);
  const cytoplasm = (f: Frame) => f.rc < 1 && f.rn > 1.05;
  const edge = 3 / cell.axes[1]; // about 3 voxels in normalised radius

  switch (name) {
    case 'Plasma membrane':
      return (f) => shell(f.rc, 1, edge);
    case 'Nuclear envelope':
      return (f) => (cell.mitotic ? 0 : shell(f.rn, 1, 2.5 / cell.nucleusAxes[1]));
    case 'Nucleolus (Granular Component)':
    case 'Nucleolus (Dense Fibrillar Component)': {
      if (cell.mitotic) return () => 0; // nucleoli disassemble in mitosis
      // The cell's own nucleoli; the dense fibrillar component sits inside the granular component: smaller, same centres.
      const dense = name.includes('Dense');
      const list = cell.nucleoli.map((s) => ({ ...s, radius: dense ? s.radius * 0.45 : s.radius }));
      return blobPainter(list, (f) => f.rn < 1);
    }
    case 'Mitochondria': {
      const segs = spots(r, 40, inCytoplasm, [1, 1.6]);
      // Tubules: each spot smeared along a random direction.
      const extra: Spots = [];
      for (const s of segs) for (let k = 1; k <= 3; k++) extra.push({ ...s, u: s.u + 0.04 * k * Math.cos(s.radius * 9), v: s.v + 0.04 * k * Math.sin(s.radius * 9) });
      return blobPainter([...segs, ...extra], cytoplasm);
    }
    case 'Endoplasmic reticulum': {
      const phase = [r.range(0, 6), r.range(0, 6), r.range(0, 6)];
      return (f, p) => {
        if (!cytoplasm(f)) return 0;
        const net = Math.abs(Math.sin(p[0] * 0.5 + phase[0]) + Math.sin(p[1] * 0.55 + phase[1]) + (dims === 3 ? Math.sin(p[2] * 0.6 + phase[2]) : 0));
        return Math.max(0, 1 - net) * Math.exp(-Math.max(0, f.rn - 1) * 1.5);
      };
    }
    case 'Golgi': {
      // Brefeldin A disperses the Golgi: small puncta scattered over the whole cytoplasm.
      if (drug === 'Brefeldin A') return blobPainter(spots(r, 30, inCytoplasm, [0.9, 1.4]), cytoplasm);
      // A compact ribbon capping the nucleus on the side with more cytoplasm (away from the
      // nucleus's offset along the cell's long axis), a little off its envelope, apical in 3D.
      const side = cell.nucleusOffset[0] > 0 ? -1 : 1;
      const list = spots(r, 10, (u, v, h) => {
        const f = frameAt(cell, toVoxel(cell, { u, v, h }), dims);
        return f.rc < 0.9 && f.rn > 1.3 && f.rn < 2 && f.nu * side > 0.3 && h > 0.45;
      }, [1.5, 2.5]);
      return blobPainter(list, cytoplasm);
    }
    case 'Endosomes':
      return blobPainter(spots(r, 25, (u, v, h) => inCytoplasm(u, v, h) && u * u + v * v > 0.45, [1, 1.8]), cytoplasm);
    case 'Lysosome':
      return blobPainter(spots(r, 15, (u, v, h) => inCytoplasm(u, v, h) && u * u + v * v < 0.6, [1.5, 2.5]), cytoplasm);
    case 'Peroxisomes':
      return blobPainter(spots(r, 45, inCytoplasm, [0.8, 1.2]), cytoplasm);
    case 'Centrosome': {
      // One pair of centrioles next to the nucleus; two pairs at the spindle poles in mitosis.
      const poles = cell.mitotic ? [-0.45, 0.45] : [r.range(-0.3, 0.3)];
      const list: Spots = poles.flatMap((u) => {
        // Interphase: just outside the nuclear envelope, on the short axis.
        const v = cell.mitotic ? 0 : cell.nucleusOffset[1] + (cell.nucleusAxes[1] / cell.axes[1]) * 1.1 + 0.1;
        const base = { u: cell.mitotic ? u : cell.nucleusOffset[0] + u * 0.2, v, h: 0.6, radius: 1.2, weight: 1 };
        return [base, { ...base, u: base.u + 0.03 }];
      });
      return blobPainter(list, (f) => f.rc < 1);
    }
    case 'Microtubules': {
      // Radial filaments from the centrosome to the periphery; paclitaxel bundles them into a
      // few thick, bright bundles, evenly spread in angle so that they stay distinct, which curl
      // along the cortex at their ends (the peripheral bundles of taxol-treated cells).
      const bundled = drug === 'Paclitaxel';
      const start = r.range(-Math.PI, Math.PI);
      const rays = bundled ? Array.from({ length: BUNDLES }, (_, k) => start + (2 * Math.PI * k) / BUNDLES + r.range(-0.2, 0.2)) : Array.from({ length: 24 }, () => r.range(-Math.PI, Math.PI));
      const [k, gain] = bundled ? [30, 1] : [400, 0.9];
      return (f) => {
        if (f.rc >= 0.97 || (!cell.mitotic && f.rn < 1)) return 0;
        let m = 0;
        for (const t of rays) m = Math.max(m, ray(f.theta, t, k));
        if (bundled) m = Math.max(m, 0.8 * shell(f.rc, 0.85, 0.08));
        return m * gain;
      };
    }
    case 'Actin filaments':
      // Cortical actin under the membrane, strongest at the base.
      return (f) => shell(f.rc, 0.95, edge * 1.5) * (dims === 3 ? 1.2 - f.h : 1) * 0.9;
    case 'Actomyosin bundles': {
      // Stress fibres: straight bundles along the long axis at the basal surface.
      const rows = Array.from({ length: 5 }, () => r.range(-0.7, 0.7));
      return (f) => (f.rc < 0.95 && lateral(f, 0, 0.2) ? Math.max(...rows.map((v0) => Math.exp(-(((f.v - v0) * cell.axes[1]) ** 2 / 1.5)))) : 0);
    }
    case 'Tight junctions':
      return (f) => shell(f.rc, 1, edge) * lateral(f, 0.75, 0.95);
    case 'Adherens junctions':
      return (f) => shell(f.rc, 1, edge) * lateral(f, 0.5, 0.8);
    case 'Desmosomes':
    case 'Gap junctions': {
      const n = name === 'Desmosomes' ? 16 : 5;
      const at = Array.from({ length: n }, () => [r.range(-Math.PI, Math.PI), r.range(0.2, 0.8)]);
      return (f) => {
        const s = shell(f.rc, 1, edge * 1.2);
        if (s < 0.05) return 0;
        let m = 0;
        for (const [t, hh] of at) m = Math.max(m, ray(f.theta, t, 300) * (dims === 3 ? Math.exp(-(((f.h - hh) * 8) ** 2)) : 1));
        return s * m;
      };
    }
    case 'Matrix adhesions': {
      const at = Array.from({ length: 12 }, () => r.range(-Math.PI, Math.PI));
      return (f) => {
        if (f.rc > 1 || f.rc < 0.7 || !lateral(f, 0, 0.12)) return 0;
        let m = 0;
        for (const t of at) m = Math.max(m, ray(f.theta, t, 200));
        return m;
      };
    }
    default:
      throw new Error(`synth: no placement rule for '${name}'`);
  }
}

const BIOLOGICAL = CLASSES.filter((c) => !c.startsWith('Control'));

interface Rendered {
  /** Channels of the 3D TIFF layout: seg DNA, seg membrane, DNA, membrane, structure, transmitted; each spatial-sized. */
  planes: Uint8Array[];
  truth: Record<string, string>;
}

function render(cell: Cell, structure: string, r: Rng, size: number[], dims: 2 | 3, drug = ''): Rendered {
  const n = size.reduce((a, b) => a * b, 1);
  const [segDna, segMemb, dna, memb, struct, trans] = Array.from({ length: 6 }, () => new Uint8Array(n));
  const paint = structurePainter(structure, cell, r, dims, drug);
  const nuclear = structure.startsWith('Nucle');
  const foci = cell.chromatin.map((s) => toVoxel(cell, s));
  const nucleoli = cell.nucleoli.map((s) => toVoxel(cell, s));
  const p = [0, 0, 0];
  let cellVox = 0;
  let nucVox = 0;
  for (let i = 0; i < n; i++) {
    // Index → (y, x, z) in Y × X (× Z) order.
    if (dims === 3) {
      p[2] = i % size[2];
      p[1] = Math.floor(i / size[2]) % size[1];
      p[0] = Math.floor(i / (size[2] * size[1]));
    } else {
      p[1] = i % size[1];
      p[0] = Math.floor(i / size[1]);
    }
    const f = frameAt(cell, p, dims);
    const inCell = f.rc <= 1;
    const inNuc = f.rn <= 1 && inCell;
    trans[i] = 90 + Math.round(40 * Math.exp(-Math.abs(f.rc - 1) * 4));
    if (!inCell) continue;
    cellVox++;
    segMemb[i] = 255;
    memb[i] = Math.round(255 * Math.min(1, 0.15 + 0.85 * Math.exp(-((((f.rc - 1) * cell.axes[1]) / 2.5) ** 2))));
    if (inNuc) {
      nucVox++;
      segDna[i] = 255;
      // Interphase chromatin: a base brighter toward the centre, bright foci (a pattern of the
      // cell's own that the membrane does not predict), dimmer over the nucleoli (to at most 0.6×,
      // so the nucleus stays above 0.2 × its maximum everywhere).
      const chromatin = 0.45 + 0.2 * (1 - f.rn) + 0.35 * spotIntensity(cell.chromatin, foci, p, dims);
      const nucleolar = 1 - 0.4 * spotIntensity(cell.nucleoli, nucleoli, p, dims);
      dna[i] = Math.round(255 * (cell.mitotic ? 0.95 : Math.min(1, chromatin * nucleolar)));
    }
    // Outside mitosis the nuclear envelope keeps every non-nuclear structure out of the nucleus.
    if (inNuc && !nuclear && !cell.mitotic) continue;
    struct[i] = Math.round(255 * Math.min(1, Math.max(0, paint(f, p))));
  }
  const truth = {
    truth_mitotic: cell.mitotic ? '1' : '0',
    truth_cell_voxels: String(cellVox),
    truth_nucleus_voxels: String(nucVox),
    truth_elongation: (cell.axes[0] / cell.axes[1]).toFixed(4),
    truth_height: dims === 3 ? (2 * cell.axes[2]).toFixed(3) : '',
    truth_centre_y: cell.centre[0].toFixed(2),
    truth_centre_x: cell.centre[1].toFixed(2),
    truth_angle: cell.angle.toFixed(4),
  };
  return { planes: [segDna, segMemb, dna, memb, struct, trans], truth };
}

/** 2D max-projection PNG (R membrane, G structure, B DNA, masked), as the Allen package stores it. */
function pngOf(planes: Uint8Array[], structPlane: Uint8Array, size: number[], dims: 2 | 3): Uint8Array {
  const [Y, X] = size;
  const Z = dims === 3 ? size[2] : 1;
  const rgb = new Uint8Array(Y * X * 3);
  for (let y = 0; y < Y; y++)
    for (let x = 0; x < X; x++) {
      let m = 0;
      let s = 0;
      let d = 0;
      for (let z = 0; z < Z; z++) {
        const i = (y * X + x) * Z + z;
        const cellMask = planes[1][i] > 0;
        if (cellMask) {
          m = Math.max(m, planes[3][i]);
          s = Math.max(s, structPlane[i]);
        }
        if (planes[0][i] > 0) d = Math.max(d, planes[2][i]);
      }
      rgb.set([m, s, d], (y * X + x) * 3);
    }
  return encode({ width: X, height: Y, data: rgb, channels: 3, depth: 8 });
}

/** The TIFF: pages ordered Z then C, each Y × X. */
function tiffOf(planes: Uint8Array[], size: number[]): Uint8Array {
  const [Y, X, Z] = size;
  const pages: Uint8Array[] = [];
  for (let z = 0; z < Z; z++)
    for (const plane of planes) {
      const page = new Uint8Array(Y * X);
      for (let i = 0; i < Y * X; i++) page[i] = plane[i * Z + z];
      pages.push(page);
    }
  return encodeTiff({ width: X, height: Y, pages, description: imagejDescription(planes.length, Z) });
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Writes the data set; returns the manifest path. */
export function synthesize(opts: SynthOptions): string {
  const { out, cells, dims, size, seed } = opts;
  if (size.length !== dims) throw new Error(`synth: size ${size.join('×')} does not have ${dims} dimensions`);
  makeDirs(join(out, 'cells'));
  const r = new Rng(seed);
  const header = ['CellId', 'StructureDisplayName', 'save_reg_path', 'save_reg_path_flat', 'ch_seg_nuc', 'ch_seg_cell', 'ch_dna', 'ch_memb', 'ch_struct', 'ch_trans', 'truth_mitotic', 'truth_cell_voxels', 'truth_nucleus_voxels', 'truth_elongation', 'truth_height', 'truth_centre_y', 'truth_centre_x', 'truth_angle', 'truth_control_of'];
  const rows: string[][] = [];
  const structures: Uint8Array[] = [];
  const controlEvery = Math.max(1, Math.round(1 / (opts.controlFraction ?? 1 / 19)));
  const size3 = dims === 3 ? size : [...size, 1];

  const write = (id: string, structure: string, planes: Uint8Array[], structCh: number, truth: Record<string, string>, tag: string) => {
    const base = `cells/${id}${tag}`;
    const flat = `${base}_reg_flat.png`;
    writeFileSync(join(out, flat), pngOf(planes, planes[structCh], size, dims));
    let tiff = '';
    if (dims === 3) {
      tiff = `${base}_reg.tiff`;
      writeFileSync(join(out, tiff), tiffOf(planes, size3));
    }
    rows.push([id, structure, tiff, flat, '0', '1', '2', '3', String(structCh), '5', ...Object.values(truth), tag ? id : '']);
  };

  for (let k = 0; k < cells; k++) {
    const id = String(100000 + k);
    const structure = BIOLOGICAL[k % BIOLOGICAL.length];
    const cell = randomCell(r, size3, dims);
    const { planes, truth } = render(cell, structure, r, size3, dims);
    structures.push(planes[4]);
    write(id, structure, planes, 4, truth, '');
    if (k % controlEvery !== controlEvery - 1) continue;
    // Controls: the same cell with its structure channel replaced (an extra channel 6).
    const noise = new Uint8Array(planes[4].length).map(() => Math.max(0, Math.min(255, Math.round(60 + 40 * r.normal()))));
    const other = structures[r.int(0, structures.length - 1)];
    const controls: [string, Uint8Array][] = [
      ['Control - DNA', planes[2].map((v, i) => (planes[0][i] ? v : 0))],
      ['Control - Memb', planes[3].map((v, i) => (planes[1][i] ? v : 0))],
      ['Control - Blank', new Uint8Array(planes[4].length)],
      ['Control - Noise', noise],
      ['Control - Random', other],
    ];
    for (const [name, plane] of controls) write(id, name, [...planes, plane], 6, truth, `_${name.split(' - ')[1].toLowerCase()}`);
  }
  const drugs = opts.drugs ?? 0;
  if (!Number.isInteger(drugs) || drugs < 0) throw new Error(`synth: drugs must be a whole number of cells per drug × structure (≥ 0), got ${drugs}`);
  if (drugs > 0) {
    // Drawn from their own stream, so that adding them leaves every other cell unchanged, and
    // treated and vehicle cells come from the same distribution of cells.
    const rd = new Rng((seed ^ 0x5eed1e55) >>> 0);
    header.push('drug_label', 'concentration', 'truth_drug_effect');
    for (const row of rows) row.push('', '', '');
    let k = cells;
    for (const drug of DRUGS)
      for (const structure of DRUG_STRUCTURES)
        for (let j = 0; j < drugs; j++, k++) {
          const id = String(100000 + k);
          const cell = randomCell(rd, size3, dims);
          const { planes, truth } = render(cell, structure, rd, size3, dims, drug.label);
          write(id, structure, planes, 4, truth, '');
          rows[rows.length - 1].push(drug.label, drug.concentration, drug.affects === structure ? drug.effect : 'none');
        }
  }
  const manifest = join(out, 'manifest.csv');
  writeFileSync(manifest, [header, ...rows].map((row) => row.map(csvField).join(',')).join('\n') + '\n');
  return manifest;
}
