// Hostile manifests, image files, checkpoints and run directories (a tester's reports): each was
// a hang, minutes of work, gigabytes, a JavaScript error or a message without the file; each is
// now refused at once, naming the file and the line or field.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zlibSync } from 'fflate';
import { beforeAll, describe, expect, test } from 'vitest';
import { CellDataset } from '../../data/dataset.ts';
import { readImage, readImageHeader } from '../../data/images.ts';
import { MAX_COLUMNS, MAX_ROW_CHARS, readManifest } from '../../data/manifest.ts';
import { synthesize } from '../../data/synth.ts';
import { writeSafetensors } from '../../runtime/safetensors.ts';
import { loadCheckpoint, saveCheckpoint } from '../../session/checkpoint.ts';
import { modelOfCheckpoint, readRunInfo, writeRunInfo } from '../../session/run.ts';
import { TINY_FILE, tinyModel } from './tiny-model.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'statcell-hostile-'));
const CLI = join(import.meta.dirname, '../../cli/statcell.js');

/** `f()`'s error message, and how long it took. */
async function failure(f: () => unknown): Promise<{ message: string; ms: number }> {
  const t = performance.now();
  try {
    await f();
  } catch (e) {
    return { message: (e as Error).message, ms: performance.now() - t };
  }
  return { message: '(no error)', ms: performance.now() - t };
}

describe('manifests too wide or too long for the CSV parser', () => {
  const write = (text: string) => {
    const file = join(tmp(), 'm.csv');
    writeFileSync(file, text);
    return file;
  };
  const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(',');

  test(`a header of more than ${MAX_COLUMNS} columns: refused at line 1 (a million columns, 9 MB, had not finished after 2 minutes)`, async () => {
    const some = write(`CellId,StructureDisplayName,${columns(20_000)}\n1,Golgi${','.repeat(20_000)}\n`);
    expect((await failure(() => readManifest(some))).message).toBe(`${some}:1: more than ${MAX_COLUMNS} columns in the header`);
    const million = write(`CellId,StructureDisplayName,${columns(1_000_000)}\n1,Golgi${','.repeat(1_000_000)}\n`);
    const r = await failure(() => readManifest(million));
    expect(r.message).toBe(`${million}:1: more than ${MAX_COLUMNS} columns in the header`);
    expect(r.ms).toBeLessThan(10_000);
  });

  test('a row with more fields than the header is named by its line before it is parsed', async () => {
    const file = write(`CellId,StructureDisplayName,save_reg_path_flat\n1,Golgi,a.png\n2,Golgi,b.png${','.repeat(5_000_000)}\n`);
    const r = await failure(() => readManifest(file));
    expect(r.message).toBe(`${file}:3: more fields than the header's 3 columns`);
    expect(r.ms).toBeLessThan(5000);
  });

  test(`a row of more than ${MAX_ROW_CHARS} characters, in the header or below (a 50 MB header name took 33 s to parse)`, async () => {
    const long = 'a'.repeat(5_000_000);
    for (const [text, line] of [[`CellId,StructureDisplayName,${long}\n1,Golgi,x\n`, 1], [`CellId,StructureDisplayName,save_reg_path_flat\n1,Golgi,a.png\n2,Golgi,"${long}\n`, 3]] as const) {
      const file = write(text);
      const r = await failure(() => readManifest(file));
      expect(r.message).toMatch(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}:${line}: a row longer than ${MAX_ROW_CHARS} characters`));
      expect(r.ms).toBeLessThan(5000);
    }
  });

  test('quoted fields holding commas, quotes and line breaks are counted as the parser reads them', () => {
    const file = write('CellId,StructureDisplayName,note\n1,Golgi,"a, ""b"", c\nd,e"\n2,Golgi, "x,y" \n');
    expect(readManifest(file).map((r) => [r.line, r.columns.note])).toEqual([[3, 'a, "b", c\nd,e'], [4, 'x,y']]);
  });
});

test('an image path that is a loop of symbolic links is said as such (it was "no such file or folder")', () => {
  const dir = tmp();
  symlinkSync(join(dir, 'b.png'), join(dir, 'a.png'));
  symlinkSync(join(dir, 'a.png'), join(dir, 'b.png'));
  writeFileSync(join(dir, 'm.csv'), 'CellId,StructureDisplayName,save_reg_path_flat\n1,Golgi,a.png\n');
  expect(() => new CellDataset(readManifest(join(dir, 'm.csv')), { dims: 2, size: [24, 16], manifestFile: 'm.csv' })).toThrow(`m.csv:2 (CellId 1): ${join(dir, 'a.png')}: a loop of symbolic links; fix the paths`);
});

describe('a TIFF page with more strips than its size has', () => {
  /** A 64×64 uint8 page of one deflate strip, listed `n` times in StripOffsets and StripByteCounts. */
  function stripsTiff(n: number): Uint8Array {
    const blob = zlibSync(Uint8Array.from({ length: 4096 }, (_, i) => i & 255));
    const at = { blob: 8, offsets: 8 + blob.length, counts: 8 + blob.length + 4 * n, ifd: 8 + blob.length + 8 * n };
    const entries: [number, number, number, number][] = [[256, 3, 1, 64], [257, 3, 1, 64], [258, 3, 1, 8], [259, 3, 1, 8], [262, 3, 1, 1], [273, 4, n, at.offsets], [277, 3, 1, 1], [278, 3, 1, 64], [279, 4, n, at.counts]];
    const b = new Uint8Array(at.ifd + 2 + 12 * entries.length + 4);
    const v = new DataView(b.buffer);
    b.set([0x49, 0x49, 42, 0]);
    v.setUint32(4, at.ifd, true);
    b.set(blob, at.blob);
    for (let i = 0; i < n; i++) {
      v.setUint32(at.offsets + 4 * i, at.blob, true);
      v.setUint32(at.counts + 4 * i, blob.length, true);
    }
    v.setUint16(at.ifd, entries.length, true);
    entries.forEach(([tag, type, count, value], k) => {
      const e = at.ifd + 2 + 12 * k;
      v.setUint16(e, tag, true);
      v.setUint16(e + 2, type, true);
      v.setUint32(e + 4, count, true);
      if (type === 3) v.setUint16(e + 8, value, true);
      else v.setUint32(e + 8, value, true);
    });
    return b;
  }

  test('a million entries for one strip (8 MB) is refused from the header within 1 s (reading it took 112 s)', async () => {
    const f = join(tmp(), 'strips.tiff');
    writeFileSync(f, stripsTiff(1_000_000));
    const o = { dims: 2 as const, channelsHint: 1, bounds: { size: [64, 64] } };
    for (const read of [() => readImageHeader(f, o), () => readImage(f, o)]) {
      const r = await failure(read);
      expect(r.message).toBe(`${f}: page 0: 1000000 strip offsets and 1000000 byte counts, but a 64×64 page in 64×64 strips has 1`);
      expect(r.ms).toBeLessThan(5000);
    }
  });
});

describe('checkpoints and run.json that lie', () => {
  /** A checkpoint of the tiny model whose tensors file is `edit`ed, with the sidecar's hash made to match (as a careful forger would). */
  function forged(edit: (tensors: Map<string, { shape: number[]; data: Float32Array | BigInt64Array; dtype?: 'F32' | 'I64' }>) => void, raw?: (b: Uint8Array) => Uint8Array) {
    const dir = tmp();
    const model = tinyModel({ size: [6, 4] });
    const values = new Map(model.tensors.map((t) => [t.name, new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(0.5)]));
    const side = { name: 'epoch-0001', iteration: 3, epoch: 1, seeds: { init: 1, data: 1 }, model: { name: model.name, config: model.config, source: model.source, sourceHash: model.sourceHash, files: model.files, entryFile: model.entryFile }, backend: 'wasm', batch: 4, optimizer: { kind: 'adam', lr: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 3 }, metrics: { loss: 1 } };
    const full = saveCheckpoint(dir, model, values, side, ['latest']);
    const tensors = new Map(model.tensors.map((t) => [t.name, { shape: [...t.shape], data: values.get(t.name)! as Float32Array | BigInt64Array, dtype: undefined as 'F32' | 'I64' | undefined }]));
    edit(tensors);
    let bytes = writeSafetensors(tensors);
    if (raw) bytes = raw(bytes);
    writeFileSync(join(dir, 'epoch-0001.safetensors'), bytes);
    writeFileSync(join(dir, 'epoch-0001.json'), JSON.stringify({ ...full, tensorsSha256: createHash('sha256').update(bytes).digest('hex') }));
    return { dir, model, param: model.tensors.find((t) => t.kind === 'param')!.name };
  }

  test('an integer tensor is named (it failed as "Cannot convert a BigInt value to a number")', () => {
    let name = '';
    const { dir, model } = forged((t) => {
      const [n, e] = [...t][0];
      name = n;
      t.set(n, { ...e, data: new BigInt64Array(e.data.length), dtype: 'I64' });
    });
    expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(`checkpoint ${join(dir, 'epoch-0001')}.safetensors: tensor '${name}' is I64; a checkpoint holds float tensors (F32)`);
  });

  test('a NaN weight is refused, as saveCheckpoint refuses to write one (eval printed a null ELBO)', () => {
    let p = '';
    const { dir, model } = forged((t) => {
      p = tinyModel({ size: [6, 4] }).tensors.find((x) => x.kind === 'param')!.name;
      t.get(p)!.data = Float32Array.from(t.get(p)!.data as Float32Array, (v, i) => (i === 2 ? NaN : v));
    });
    expect(() => loadCheckpoint(dir, 'epoch-0001', model)).toThrow(`checkpoint ${join(dir, 'epoch-0001')}.safetensors: parameter '${p}' holds NaN at index 2; a checkpoint's weights are finite`);
  });

  test('a malformed tensors file names the file (it said only "safetensors: …"), and a shape of a million dimensions is not repeated in the message', () => {
    const lie = (b: Uint8Array, f: (h: Record<string, { shape: number[]; data_offsets: number[] }>) => void) => {
      const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)));
      f(header);
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + b.length - 8 - n);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      out.set(b.subarray(8 + n), 8 + json.length);
      return out;
    };
    const first = (h: Record<string, { shape: number[]; data_offsets: number[] }>) => Object.keys(h).find((k) => k !== '__metadata__')!;
    const offsets = forged(() => {}, (b) => lie(b, (h) => (h[first(h)].data_offsets = [0, 2 ** 52])));
    expect(() => loadCheckpoint(offsets.dir, 'epoch-0001', offsets.model)).toThrow(new RegExp(`^checkpoint ${offsets.dir.replace(/[.\\/]/g, '\\$&')}/epoch-0001\\.safetensors: safetensors: tensor '.*': .* data_offsets span`));
    const dims = forged(() => {}, (b) => lie(b, (h) => (h[first(h)].shape = Array(1_000_000).fill(1))));
    const message = (() => { try { loadCheckpoint(dims.dir, 'epoch-0001', dims.model); } catch (e) { return (e as Error).message; } })()!;
    expect(message).toMatch(/epoch-0001\.safetensors: safetensors: tensor '.*': shape \[1,1,.*… \(2000001 characters\) must be a list of at most 32 non-negative integers$/);
    expect(message.length).toBeLessThan(400);
  });

  test('a sidecar that is JSON null or huge: the file and the field named (null gave "Cannot read properties of null")', async () => {
    const { dir } = forged(() => {});
    writeFileSync(join(dir, 'epoch-0001.json'), 'null');
    expect(() => modelOfCheckpoint(dir, 'epoch-0001', {})).toThrow(`${join(dir, 'epoch-0001.json')}: (top level) must be object`);
    truncateSync(join(dir, 'epoch-0001.json'), 3 * 2 ** 30); // sparse
    const r = await failure(() => modelOfCheckpoint(dir, 'epoch-0001', {}));
    expect(r.message).toBe(`checkpoint ${join(dir, 'epoch-0001.json')}: cannot read its sidecar (the file is 3072.0 MiB, more than the 64 MiB allowed)`);
    expect(r.ms).toBeLessThan(5000);
  });

  test('a run.json of 1.5 GB is refused by its size (it was read: 6.7 s, 2.2 GB)', async () => {
    const dir = tmp();
    writeRunInfo(dir, { model: 'm.vae', overrides: {}, data: '/d/m.csv', batch: 4, seed: 1, labels: ['a'] });
    truncateSync(join(dir, 'run.json'), 1.5 * 2 ** 30);
    const r = await failure(() => readRunInfo(dir));
    expect(r.message).toBe(`${join(dir, 'run.json')}: cannot read it (the file is 1536.0 MiB, more than the 64 MiB allowed)`);
    expect(r.ms).toBeLessThan(5000);
  });
});

describe('a FIFO in a run directory or as --resume --data is refused at once (each blocked the command for good)', () => {
  let run: string;
  let data: string;
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, CI: '1' }, encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, err: r.stderr };
  };
  beforeAll(() => {
    data = tmp();
    synthesize({ out: data, cells: 24, dims: 2, size: [24, 16], seed: 3 });
    run = join(tmp(), 'run');
    const trained = cli(['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--out', run, '--backend', 'wasm', '--batch', '4', '--iterations', '1']);
    expect(trained.code, trained.err).toBe(0);
  });
  const fifoAt = (file: string) => {
    const copy = join(tmp(), 'run');
    cpSync(run, copy, { recursive: true });
    file = file.replace('NAME', readFileSync(join(run, 'checkpoints', 'latest'), 'utf8').trim());
    rmSync(join(copy, file));
    expect(spawnSync('mkfifo', [join(copy, file)]).status).toBe(0);
    return copy;
  };
  for (const [file, why] of [
    ['checkpoints/latest', /checkpoints\/latest: the pointer must hold the name of a checkpoint .*; not a regular file: it is a FIFO/],
    ['run.json', /run\.json: cannot read it \(not a regular file: it is a FIFO/],
    ['checkpoints/NAME.json', /\.json: cannot read its sidecar \(not a regular file: it is a FIFO/],
    ['checkpoints/NAME.safetensors', /\.safetensors: cannot read its tensors \(not a regular file: it is a FIFO/],
  ] as const)
    test(`${file}, for eval`, () => {
      const dir = fifoAt(file);
      rmSync(join(dir, 'checkpoints', 'best'), { force: true }); // eval reads the best, else the latest
      const r = cli(['eval', '--run', dir, '--split', 'test', '--backend', 'wasm']);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(why);
    });
  test('a FIFO named lock is no live trainer\'s lock: a fresh train takes the directory', () => {
    const out = join(tmp(), 'run');
    mkdirSync(out);
    expect(spawnSync('mkfifo', [join(out, 'lock')]).status).toBe(0);
    const r = cli(['train', '--model', TINY_FILE, '--set', 'size=[24,16]', '--data', join(data, 'manifest.csv'), '--out', out, '--backend', 'wasm', '--batch', '4', '--iterations', '1']);
    expect(r.code, r.err).toBe(0);
  });
  test('metrics.jsonl, for --resume and report', () => {
    const dir = fifoAt('metrics.jsonl');
    const resumed = cli(['train', '--out', dir, '--resume', '--iterations', '2', '--backend', 'wasm']);
    expect(resumed.code, resumed.err).toBe(1);
    expect(resumed.err).toMatch(/metrics\.jsonl: cannot read the run's metrics \(not a regular file: it is a FIFO/);
    const report = cli(['report', '--reference', dir, '--out', join(tmp(), 'report'), '--backend', 'wasm']);
    expect(report.code, report.err).toBe(1);
    expect(report.err).toMatch(/metrics\.jsonl: cannot read the run's metrics \(not a regular file: it is a FIFO/);
  });
  test('--data of a resume', () => {
    const fifo = join(tmp(), 'm.csv');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = cli(['train', '--out', run, '--resume', '--data', fifo, '--iterations', '2', '--backend', 'wasm']);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain(`statcell: ${fifo}: cannot read the manifest: not a regular file: it is a FIFO (named pipe)`);
  });
});

describe('the manifest pre-check reads rows as the CSV parser does (review: it took a blank first line for the header)', () => {
  test('blank rows and rows of commas before the header or among the rows are skipped; a row with content and too many fields is not', async () => {
    const { parseManifest } = await import('../../data/manifest.ts');
    const body = 'CellId,StructureDisplayName,save_reg_path_flat\n1,Golgi,a.png\n';
    for (const before of ['   \n', ',\n', ' , \n'])
      expect(parseManifest(before + body + ',,\n', 'm.csv').map((r) => r.cellId)).toEqual(['1']);
    expect(() => parseManifest(`${body},,,,x\n`, 'm.csv')).toThrow('m.csv:3: more fields than the header\'s 3 columns');
    expect(() => parseManifest(`${body}2,Golgi,b.png,extra`, 'm.csv')).toThrow('m.csv:3: more fields than the header\'s 3 columns');
  });
});
