import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readPng2d, readTiff3d } from '../../data/images.ts';
import { CLASSES, labelIndex, labelStem, parseLabelList, uniqueStems } from '../../data/labels.ts';
import { parseManifest, readManifest } from '../../data/manifest.ts';
import { centreCopy, preprocess2d } from '../../data/preprocess.ts';
import { splitFraction, splitOf } from '../../data/split.ts';
import { synthesize } from '../../data/synth.ts';
import { encodeTiff, imagejDescription } from '../../data/tiff.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-'));

describe('split', () => {
  test('the paper test vectors', () => {
    expect(splitFraction(105772)).toBe(0.00963);
    expect(splitOf(105772)).toBe('test');
    expect(splitFraction(0)).toBe(0.31143);
    expect(splitOf(0)).toBe('train');
  });
  test('roughly 10/10/80 over many ids', () => {
    const n = { train: 0, validate: 0, test: 0 };
    for (let i = 0; i < 5000; i++) n[splitOf(i)]++;
    expect(n.test / 5000).toBeGreaterThan(0.08);
    expect(n.test / 5000).toBeLessThan(0.12);
    expect(n.validate / 5000).toBeGreaterThan(0.08);
    expect(n.validate / 5000).toBeLessThan(0.12);
  });
});

test('labels: the 24 classes are in alphabetical order', () => {
  expect(CLASSES.length).toBe(24);
  expect([...CLASSES]).toEqual([...CLASSES].sort());
  expect(labelIndex(['b', 'a', 'b']).get('b')).toBe(1);
});

test('labels named on the command line: split on ";" or ",", except inside a label of the vocabulary', () => {
  const vocabulary = ['Golgi, "apparatus"', 'Nuclear envelope; rim', 'Golgi', 'Mitochondria', 'Mitochondrien µ–ß 🧬'];
  expect(parseLabelList('Golgi;Mitochondria', vocabulary)).toEqual(['Golgi', 'Mitochondria']);
  expect(parseLabelList(' Golgi , Mitochondria ,', vocabulary)).toEqual(['Golgi', 'Mitochondria']);
  // A plain split gave 'Golgi' and '"apparatus"' (another label, and an unknown one).
  expect(parseLabelList('Golgi, "apparatus"', vocabulary)).toEqual(['Golgi, "apparatus"']);
  expect(parseLabelList('Nuclear envelope; rim,Golgi, "apparatus";Mitochondrien µ–ß 🧬', vocabulary)).toEqual(['Nuclear envelope; rim', 'Golgi, "apparatus"', 'Mitochondrien µ–ß 🧬']);
  // What is no label stays as written, for the caller to name as unknown.
  expect(parseLabelList('Golgi, Tubulin;Mito', vocabulary)).toEqual(['Golgi', 'Tubulin', 'Mito']);
  expect(parseLabelList('', vocabulary)).toEqual([]);
});

test('file stems of labels keep letters of any script and are distinct (three Japanese labels all wrote walk-_.png, each over the last)', () => {
  expect(labelStem('Control - DNA')).toBe('Control_DNA');
  expect(labelStem('Mitochondrien µ–ß 🧬')).toBe('Mitochondrien_µ_ß_');
  expect(uniqueStems(['ゴルジ体', 'ミトコンドリア', '小胞体'])).toEqual(['ゴルジ体', 'ミトコンドリア', '小胞体']);
  expect(uniqueStems(['a,b', 'a;b', 'Golgi', 'golgi', '🧬', '✨'])).toEqual(['a_b', 'a_b-2', 'Golgi', 'golgi-2', '_', '_-2']);
});

describe('manifest', () => {
  const header = 'CellId,StructureDisplayName,save_reg_path,save_reg_path_flat,ch_dna,ch_memb,ch_struct,ch_seg_cell,ch_seg_nuc,drug_label';
  test('rows, relative paths, extra columns and lines', () => {
    const rows = parseManifest(`${header}\n7,Golgi,a/7.tiff,a/7.png,2,3,4,1,0,DMSO\n105772,Microtubules,/abs/x.tiff,,2,3,6,1,0,Paclitaxel\n`, '/data/m.csv');
    expect(rows.map((r) => r.line)).toEqual([2, 3]);
    expect(rows[0].tiff3d).toBe('/data/a/7.tiff');
    expect(rows[1].tiff3d).toBe('/abs/x.tiff');
    expect(rows[1].png2d).toBeUndefined();
    expect(rows[1].channels).toEqual({ dna: 2, memb: 3, struct: 6, seg_cell: 1, seg_nuc: 0 });
    expect(rows[1].split).toBe('test');
    expect(rows[0].columns.drug_label).toBe('DMSO');
  });
  test('errors name the file and line', () => {
    expect(() => parseManifest(`${header}\n7,Golgi,a.tiff,a.png,2,x,4,1,0,\n`, 'm.csv')).toThrow(/^m\.csv:2: ch_memb must be a channel index/);
    expect(() => parseManifest('Id,StructureDisplayName\n1,Golgi\n', 'm.csv')).toThrow(/^m\.csv:1: missing column 'CellId'/);
    expect(() => parseManifest('CellId,StructureDisplayName\n1,Golgi\n2,\n', 'm.csv')).toThrow(/^m\.csv:3: empty StructureDisplayName/);
    expect(() => readManifest('/nonexistent/m.csv')).toThrow(/cannot read the manifest/);
    // A row given twice (a manifest concatenated with itself) counted twice in the analyses' statistics; controls share their cell's CellId.
    expect(parseManifest('CellId,StructureDisplayName\n1,Golgi\n1,Control - DNA\n2,Golgi\n', 'm.csv').length).toBe(3);
    expect(() => parseManifest('CellId,StructureDisplayName\n1,Golgi\n1,Control - DNA\n2,Golgi\n1,Golgi\n', 'm.csv')).toThrow("m.csv:5: CellId 1 with StructureDisplayName 'Golgi' is already on line 2: each cell once");
  });
  test('a channel cell that is empty, hex or an exponent is refused (Number() read them as indices); a header column given twice too', () => {
    const h = 'CellId,StructureDisplayName,ch_dna,ch_memb,ch_struct,ch_seg_cell,ch_seg_nuc\n';
    expect(() => parseManifest(`${h}1,Golgi,2,,4,1,0\n`, 'm.csv')).toThrow(/^m\.csv:2: ch_memb must be a channel index \(a whole number ≥ 0\), got ''/);
    expect(() => parseManifest(`${h}1,Golgi,0x2,3,4,1,0\n`, 'm.csv')).toThrow(/^m\.csv:2: ch_dna .* got '0x2'/);
    expect(() => parseManifest(`${h}1,Golgi,2,1e0,4,1,0\n`, 'm.csv')).toThrow(/^m\.csv:2: ch_memb .* got '1e0'/);
    // pandas writes an integer column holding a NaN as floats; a row with no channel cells at all gives none.
    expect(parseManifest(`${h}1,Golgi,2.0,3,4,1,0\n`, 'm.csv')[0].channels).toEqual({ dna: 2, memb: 3, struct: 4, seg_cell: 1, seg_nuc: 0 });
    expect(parseManifest(`${h}1,Golgi,,,,,\n`, 'm.csv')[0].channels).toBeUndefined();
    expect(() => parseManifest('CellId,StructureDisplayName,save_reg_path_flat,CellId\n1,Golgi,a.png,2\n', 'm.csv')).toThrow(/^m\.csv:1: column 'CellId' appears twice in the header \(columns 1 and 4\)/);
  });
});

describe('manifest, as labs write them (tester reports)', () => {
  test('a split column decides the split (it was ignored), in any case, val and validation for validate; a bad value names its line', () => {
    const rows = parseManifest('CellId,StructureDisplayName,split\n1,Golgi,test\n2,Golgi,Train\n3,Golgi,val\n4,Golgi,validation\n', 'm.csv');
    expect(rows.map((r) => r.split)).toEqual(['test', 'train', 'validate', 'validate']);
    expect(() => parseManifest('CellId,StructureDisplayName,split\n1,Golgi,test\n2,Golgi,holdout\n', 'm.csv')).toThrow(/^m\.csv:3: split must be train, validate or test, got 'holdout'/);
    expect(() => parseManifest('CellId,StructureDisplayName,split\n1,Golgi,\n', 'm.csv')).toThrow(/^m\.csv:2: split must be/);
  });
  test('an empty split says how the cells fell and what to do (it said only "no usable rows")', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const rows = parseManifest('CellId,StructureDisplayName,save_reg_path_flat,split\n1,Golgi,a.png,train\n2,Golgi,b.png,test\n', '/d/m.csv');
    expect(() => new CellDataset(rows, { dims: 2, size: [8, 8], manifestFile: 'm.csv', split: 'validate' })).toThrow("m.csv: no usable rows in the validate split: of its 2 cells, its split column put 1 in train, 0 in validate and 1 in test; add cells, or give the manifest a split column (train, validate, test)");
    const hashed = parseManifest('CellId,StructureDisplayName,save_reg_path_flat\nx0,Golgi,a.png\n', '/d/m.csv');
    expect(() => new CellDataset(hashed, { dims: 2, size: [8, 8], manifestFile: 'm.csv', split: hashed[0].split === 'test' ? 'train' : 'test' })).toThrow(/of its 1 cells, a hash of each CellId \(80% train, 10% validate, 10% test; docs\/formats\.md\) put/);
  });
  test('rows of empty fields (a spreadsheet\'s trailing ",,,") are skipped; a header in another case or with another separator is named as such', () => {
    expect(parseManifest('CellId,StructureDisplayName,x\n1,Golgi,a\n,,\n,,\n', 'm.csv')).toHaveLength(1);
    expect(() => parseManifest('cellid,StructureDisplayName\n1,Golgi\n', 'm.csv')).toThrow("m.csv:1: missing column 'CellId' (column names are case-sensitive: 'cellid' should be 'CellId')");
    expect(() => parseManifest('CellId;StructureDisplayName\n1;Golgi, Apparatus\n', 'm.csv')).toThrow('m.csv:1: statcell reads comma-separated manifests; this header is semicolon-separated');
    expect(() => parseManifest('\uFEFFCellId\tStructureDisplayName\n1\tGolgi\n', 'm.csv')).toThrow('this header is tab-separated');
  });
});

describe('images', () => {
  test('a multi-page TIFF (pages Z then C) reads back as C × Y × X × Z', async () => {
    const [C, Y, X, Z] = [3, 5, 4, 2];
    const pages: Uint8Array[] = [];
    for (let z = 0; z < Z; z++) for (let c = 0; c < C; c++) pages.push(Uint8Array.from({ length: Y * X }, (_, i) => c * 50 + z * 10 + i));
    const file = join(tmp(), 'x.tiff');
    writeFileSync(file, encodeTiff({ width: X, height: Y, pages, description: imagejDescription(C, Z) }));
    const im = await readTiff3d(file);
    expect(im.channels).toBe(C);
    expect(im.spatial).toEqual([Y, X, Z]);
    for (const [c, y, x, z] of [[0, 0, 0, 0], [2, 1, 3, 1], [1, 4, 2, 0]]) expect(im.data[((c * Y + y) * X + x) * Z + z]).toBe(c * 50 + z * 10 + y * X + x);
  });
  test('missing, truncated and wrong-dimensional files name the file', async () => {
    const dir = tmp();
    await expect(readTiff3d(join(dir, 'none.tiff'), 6)).rejects.toThrow(/none\.tiff: cannot read: no such file/);
    const good = encodeTiff({ width: 4, height: 4, pages: [new Uint8Array(16), new Uint8Array(16)], description: imagejDescription(2, 1) });
    writeFileSync(join(dir, 'cut.tiff'), good.subarray(0, 20));
    await expect(readTiff3d(join(dir, 'cut.tiff'))).rejects.toThrow(/cut\.tiff: not a readable 3D TIFF/);
    writeFileSync(join(dir, 'flat.tiff'), encodeTiff({ width: 4, height: 4, pages: [new Uint8Array(16)] }));
    await expect(readTiff3d(join(dir, 'flat.tiff'), 6)).rejects.toThrow(/flat\.tiff: .*wrong dimensionality/);
    writeFileSync(join(dir, 'bad.png'), new Uint8Array([137, 80, 78, 71, 1, 2, 3]));
    await expect(readPng2d(join(dir, 'bad.png'))).rejects.toThrow(/bad\.png: not a readable PNG/);
  });
});

describe('preprocessing', () => {
  test('centre crop takes the floor of the excess off the start; padding centres', () => {
    const src = Float32Array.from({ length: 5 }, (_, i) => i);
    const crop = new Float32Array(2);
    centreCopy(src, [5], crop, [2]);
    expect([...crop]).toEqual([1, 2]);
    const pad = new Float32Array(8);
    centreCopy(src, [5], pad, [8]);
    expect([...pad]).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
  });
  test('2D: RGB → [membrane, DNA] and structure, divided by 255', () => {
    const img = { channels: 3, spatial: [2, 2], data: Uint8Array.from([255, 0, 0, 0, 51, 51, 51, 51, 102, 0, 0, 0]) };
    const t = preprocess2d(img, { size: [2, 2] });
    expect([...t.reference]).toEqual([1, 0, 0, 0, 0.4, 0, 0, 0].map(Math.fround));
    expect([...t.structure]).toEqual([0.2, 0.2, 0.2, 0.2].map(Math.fround));
  });
});

describe('synthetic cells', () => {
  const out = tmp();
  const manifest = synthesize({ out, cells: 46, dims: 2, size: [64, 40], seed: 5 });
  const rows = readManifest(manifest);

  test('every class, controls cloned five times, ground truth columns', () => {
    expect(new Set(rows.map((r) => r.structure))).toEqual(new Set(CLASSES));
    const controls = rows.filter((r) => r.structure.startsWith('Control'));
    expect(controls.length % 5).toBe(0);
    for (const c of controls) expect(rows.some((r) => r.cellId === c.cellId && !r.structure.startsWith('Control'))).toBe(true);
    expect(rows[0].columns.truth_mitotic).toMatch(/^[01]$/);
  });

  test('the same seed writes the same data', () => {
    const again = synthesize({ out: tmp(), cells: 3, dims: 2, size: [64, 40], seed: 5 });
    const first = readManifest(again);
    expect(first.map((r) => r.columns.truth_elongation)).toEqual(rows.slice(0, 3).map((r) => r.columns.truth_elongation));
  });

  test('placement rules: cytoplasmic structures avoid the nucleus, nucleoli stay inside', async () => {
    const inside = async (structure: string) => {
      let inNuc = 0;
      let total = 0;
      for (const r of rows.filter((x) => x.structure === structure)) {
        const im = await readPng2d(r.png2d!);
        const n = 64 * 40;
        for (let i = 0; i < n; i++) {
          const s = im.data[n + i];
          total += s;
          if (im.data[2 * n + i] > 0) inNuc += s;
        }
      }
      return inNuc / Math.max(total, 1);
    };
    expect(await inside('Mitochondria')).toBeLessThan(0.02);
    expect(await inside('Plasma membrane')).toBeLessThan(0.02);
    expect(await inside('Nucleolus (Granular Component)')).toBeGreaterThan(0.95);
  });

  test('Control - DNA copies the DNA channel', async () => {
    const c = rows.find((r) => r.structure === 'Control - DNA')!;
    const im = await readPng2d(c.png2d!);
    const n = 64 * 40;
    expect([...im.data.subarray(n, 2 * n)]).toEqual([...im.data.subarray(2 * n)]);
  });
});

describe('batches', () => {
  test('distinct cells per batch, reproducible per iteration, every cell reachable', async () => {
    const { batchIndices } = await import('../../data/sampler.ts');
    const seen = new Set<number>();
    for (let t = 0; t < 50; t++) {
      const b = batchIndices(40, 8, 3, t);
      expect(new Set(b).size).toBe(8);
      expect(b.every((i) => i >= 0 && i < 40)).toBe(true);
      expect(batchIndices(40, 8, 3, t)).toEqual(b);
      b.forEach((i) => seen.add(i));
    }
    expect(seen.size).toBe(40);
    expect(batchIndices(40, 8, 4, 0)).not.toEqual(batchIndices(40, 8, 3, 0));
    expect(() => batchIndices(4, 8, 1, 0)).toThrow(/needs at least 8 cells/);
  });

  test('a batch of 30000 indices repeating two cells reads each file once, a few at a time (it opened 30000 at once: EMFILE)', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const file = synthesize({ out: tmp(), cells: 2, dims: 2, size: [32, 24], seed: 2 });
    const ds = new CellDataset(readManifest(file).slice(0, 2), { dims: 2, size: [32, 24], manifestFile: file });
    const indices = Array.from({ length: 30000 }, (_, k) => k % 2);
    const b = await ds.batch(indices);
    const one = await ds.batch([0, 1]);
    const v = 2 * 32 * 24;
    expect(b.rows.length).toBe(30000);
    expect(b.reference.subarray(29998 * v, 30000 * v)).toEqual(one.reference);
  }, 60_000);

  test('rows without their image are found before any cell is read, each split on its own, and skipped with --skip-bad; a manifest without the image column fails at its header (a missing validation image stopped training after its first epoch)', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const dir = tmp();
    const file = synthesize({ out: dir, cells: 12, dims: 2, size: [32, 24], seed: 2 });
    const rows = readManifest(file);
    const v = rows.filter((r) => r.split === 'validate');
    expect(v.length).toBeGreaterThan(1);
    const { rmSync } = await import('node:fs');
    for (const r of v) rmSync(r.png2d!);
    const open = (split: 'train' | 'validate', skipBad = false, log?: (l: string) => void) => new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file, split, skipBad, log });
    expect(open('train').length).toBe(rows.filter((r) => r.split === 'train' && !r.columns.drug_label).length);
    expect(() => open('validate')).toThrow(`manifest.csv:${v[0].line} (CellId ${v[0].cellId}): ${v[0].png2d}: no such file or folder (and ${v.length - 1} more row(s) of the validate split without their image); fix the paths, or skip such rows with --skip-bad`);
    const logs: string[] = [];
    expect(() => open('validate', true, (l) => logs.push(l))).toThrow('no usable rows in the validate split');
    expect(logs).toHaveLength(v.length);
    const csv = (await import('node:fs')).readFileSync(file, 'utf8');
    const noColumn = join(dir, 'no-column.csv');
    writeFileSync(noColumn, csv.replace('save_reg_path_flat', 'flat_path'));
    expect(() => new CellDataset(readManifest(noColumn), { dims: 2, size: [32, 24], manifestFile: noColumn })).toThrow(`${noColumn}:1: no save_reg_path_flat column: a 2D model reads each cell's image`);
  });

  test('for evaluation, --skip-bad leaves unreadable rows out instead of replacing them (embed and eval counted another cell twice, under its CellId)', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const dir = tmp();
    const file = synthesize({ out: dir, cells: 6, dims: 2, size: [32, 24], seed: 2 });
    const rows = readManifest(file).slice(0, 6);
    for (const i of [1, 4]) writeFileSync(rows[i].png2d!, readFileSync(rows[i].png2d!).subarray(0, 60));
    const logs: string[] = [];
    const ds = await new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file, skipBad: true, log: (l) => logs.push(l) }).readable();
    expect(ds.length).toBe(4);
    const b = await ds.batch([0, 1, 2, 3]);
    expect(b.rows.map((r) => r.line)).toEqual([rows[0], rows[2], rows[3], rows[5]].map((r) => r.line));
    expect(logs.filter((l) => l.startsWith('skipping'))).toHaveLength(2);
    expect(logs[0]).toBe('--skip-bad: reading the 6 cells once, to leave out the unreadable ones');
    const strict = new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file });
    expect(await strict.readable()).toBe(strict);
  });

  test('a cell with a NaN or an infinity is a bad row, named with its file and channel, and --skip-bad skips it (embed wrote NaN codes; training stopped steps later with a NaN loss)', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const { omeTiffOf } = await import('../../data/ome-tiff.ts');
    const dir = tmp();
    const file = synthesize({ out: dir, cells: 3, dims: 2, size: [32, 24], seed: 2 });
    const rows = readManifest(file);
    const flat = (v: number) => Float32Array.from({ length: 32 * 24 }, () => v);
    for (const [i, bad] of [[1, NaN], [2, -Infinity]] as const) {
      const dna = flat(0.5);
      dna[7] = bad;
      rows[i] = { ...rows[i], png2d: join(dir, `bad${i}.ome.tiff`) };
      writeFileSync(rows[i].png2d!, omeTiffOf([32, 24], [{ name: 'membrane', data: flat(0.3), color: [1, 0, 1] }, { name: 'Golgi', data: flat(0.2), color: [0, 1, 0] }, { name: 'DNA', data: dna, color: [0, 0, 1] }]));
    }
    const strict = new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file });
    await expect(strict.batch([0])).resolves.toBeDefined();
    await expect(strict.batch([1])).rejects.toThrow(`manifest.csv:3 (CellId ${rows[1].cellId}): ${join(dir, 'bad1.ome.tiff')}: 1 value(s) in the DNA channel are not finite (NaN or ±Inf), the first at voxel 7 of 768`);
    await expect(strict.batch([2])).rejects.toThrow(/manifest\.csv:4 .*bad2\.ome\.tiff: 1 value\(s\) in the DNA channel are not finite/);
    const logs: string[] = [];
    const lenient = new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file, skipBad: true, log: (l) => logs.push(l) });
    const b = await lenient.batch([0, 1, 2]);
    expect(b.rows.map((r) => r.cellId)).toEqual([rows[0].cellId, rows[0].cellId, rows[0].cellId]);
    expect(b.reference.every(Number.isFinite)).toBe(true);
    expect(logs.filter((l) => l.startsWith('skipping'))).toHaveLength(2);
  });

  test('a dataset batch stacks preprocessed cells; bad rows stop the run or are skipped', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const dir = tmp();
    const file = synthesize({ out: dir, cells: 6, dims: 2, size: [64, 40], seed: 2 });
    const rows = readManifest(file);
    // An image of another size is an error naming the row, unless cropping / padding is asked for.
    await expect(new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file }).batch([0])).rejects.toThrow(/manifest\.csv:2 .*the image is 64×40 but the model takes 32×24.*--fit crop-pad/);
    const ds = new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file, fit: 'crop-pad' });
    const b = await ds.batch([0, 1]);
    expect(b.reference.length).toBe(2 * 2 * 32 * 24);
    expect(b.onehot.reduce((a, x) => a + x, 0)).toBe(2);
    expect(Math.max(...b.reference)).toBeLessThanOrEqual(1);
    expect(Math.max(...b.reference)).toBeGreaterThan(0.2);

    writeFileSync(rows[1].png2d!, new Uint8Array([1, 2, 3]));
    const strict = new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file, fit: 'crop-pad' });
    await expect(strict.batch([1])).rejects.toThrow(new RegExp(`manifest\\.csv:3 \\(CellId ${rows[1].cellId}\\): .*_reg_flat\\.png: not a readable PNG`));
    const logs: string[] = [];
    const lenient = new CellDataset(rows, { dims: 2, size: [32, 24], manifestFile: file, fit: 'crop-pad', skipBad: true, log: (l) => logs.push(l) });
    const ok = await lenient.batch([1, 2]);
    expect(ok.rows.map((r) => r.cellId)).not.toContain(rows[1].cellId);
    expect(logs.filter((l) => l.startsWith('skipping'))[0]).toMatch(/skipping: .*manifest\.csv:3/);
    const unknown = rows.map((r, i) => (i === 0 ? { ...r, structure: 'Cilia' } : r));
    // Labels come from the data: a label outside the Allen 24 makes the data's own vocabulary …
    expect(new CellDataset(unknown, { dims: 2, size: [32, 24], manifestFile: file }).classes).toEqual([...new Set(unknown.map((r) => r.structure))].sort());
    // … and a label outside a trained run's vocabulary is an error naming the row.
    expect(() => new CellDataset(unknown, { dims: 2, size: [32, 24], manifestFile: file, labels: CLASSES })).toThrow(/manifest\.csv:2 .*unknown structure label 'Cilia'/);
    expect(() => new CellDataset(rows, { dims: 3, size: [8, 8, 8], manifestFile: file })).toThrow(/manifest\.csv:2 .*no save_reg_path \(3D TIFF\) in this row \(and 5 more row\(s\) without their image\)/);
  });
});

describe('channel columns without the segmentations (tester: ch_dna, ch_memb, ch_struct alone were ignored, and the stack read in another order)', () => {
  test('the three indices pick the channels, unmasked; one of them missing is refused at the header, naming it', async () => {
    const { CellDataset } = await import('../../data/dataset.ts');
    const { omeTiffOf } = await import('../../data/ome-tiff.ts');
    const dir = tmp();
    const size = [8, 6, 4];
    const flat = (v: number) => Float32Array.from({ length: 8 * 6 * 4 }, () => v);
    // Page order: structure, DNA, membrane, told only by the manifest's indices.
    writeFileSync(join(dir, 'c.ome.tiff'), omeTiffOf(size, [{ name: 'c0', data: flat(0.25) }, { name: 'c1', data: flat(0.5) }, { name: 'c2', data: flat(0.75) }]));
    const file = join(dir, 'm.csv');
    writeFileSync(file, 'CellId,StructureDisplayName,save_reg_path,ch_dna,ch_memb,ch_struct\n1,Golgi,c.ome.tiff,1,2,0\n');
    const rows = readManifest(file);
    expect(rows[0].channels).toEqual({ dna: 1, memb: 2, struct: 0 });
    const b = await new CellDataset(rows, { dims: 3, size, manifestFile: file, intensityScale: 1 }).batch([0]);
    const vox = 8 * 6 * 4;
    expect([b.reference[0], b.reference[vox], b.structure[0]]).toEqual([0.75, 0.5, 0.25]); // membrane, DNA, structure
    writeFileSync(file, 'CellId,StructureDisplayName,save_reg_path,ch_dna,ch_memb\n1,Golgi,c.ome.tiff,1,2\n');
    expect(() => readManifest(file)).toThrow(`${file}:1: channel columns ch_dna, ch_memb without ch_struct: give ch_dna, ch_memb and ch_struct together (ch_seg_cell, ch_seg_nuc optional), or none`);
  });
});
