// A fuzzer for the model compiler: random bytes, random token sequences and mutations of the
// real models (models/*.vae, test/models/*.vae), each compiled in memory (imports resolve
// among the real models). The compiler must answer every input with a result or a
// DiagnosticError whose every diagnostic has a code and a span; anything else thrown is a bug.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compileModel } from '../../compiler/compile.ts';
import { CODES, DiagnosticError } from '../../dsl/diagnostics.ts';
import { rng } from '../rng.ts';

const ROOT = join(import.meta.dirname, '../..');

/** The real model files, keyed by their path from the repository root. */
export function realModels(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.vae')) files.set(relative(ROOT, p).split('\\').join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(join(ROOT, 'models'));
  walk(join(ROOT, 'test/models'));
  return files;
}


type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

const WORDS = [
  'import', 'const', 'defaults', 'block', 'model', 'input', 'entry', 'train', 'return', 'for', 'in', 'if', 'then',
  'else', 'assert', 'minimize', 'using', 'report', 'evaluate', 'as', 'true', 'false', 'none', 'and', 'or', 'not',
  'x', 'y', 'z', 'N', 'M', 'B', 'conv', 'dense', 'repeat', 'randn', 'relu', 'sum', 'mean', 'reshape', 'shape',
  'lr', 'image', 'label', 'encode', 'decode', '"statcell.vae"', '"/etc/passwd"', '"/dev/zero"', '"x.vae"',
  '...', '..', '|>', '->', '**', '==', '!=', '<=', '>=', '<', '>', '+', '-', '*', '/', '%', '|', '=', '(', ')',
  '[', ']', '{', '}', ',', ':', ';', '?', '#c\n', '\n',
];
const NUMBERS = ['0', '1', '-1', '2', '3', '0.5', '1e309', '1e-309', '4294967296', '1e9', '65536', '1e18', 'NaN', '999999999999'];

/** Random bytes (mostly printable, some control and non-ASCII characters). */
export function randomBytes(r: Rand): string {
  const n = int(r, 300);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r();
    s += String.fromCharCode(k < 0.8 ? 32 + int(r, 95) : k < 0.9 ? int(r, 32) : k < 0.97 ? 128 + int(r, 1000) : 0xd800 + int(r, 0x800));
  }
  return s;
}

/** Random sequences of the language's tokens, names and (extreme) numbers. */
export function randomTokens(r: Rand): string {
  const n = int(r, 120);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r() < 0.2 ? pick(r, NUMBERS) : pick(r, WORDS));
  return out.join(r() < 0.5 ? ' ' : pick(r, [' ', '', '\n']));
}

/** One real model, mutated: chunks deleted, duplicated, swapped or replaced, numbers made extreme. */
export function mutate(r: Rand, text: string): string {
  let s = text;
  const edits = 1 + int(r, 4);
  for (let e = 0; e < edits; e++) {
    const a = int(r, s.length + 1);
    const len = int(r, 40);
    const k = int(r, 8);
    if (k === 0) s = s.slice(0, a) + s.slice(a + len);
    else if (k === 1) s = s.slice(0, a) + s.slice(a, a + len) + s.slice(a);
    else if (k === 2) s = s.slice(0, a) + pick(r, WORDS) + ' ' + s.slice(a);
    else if (k === 3) s = s.slice(0, a) + pick(r, NUMBERS) + s.slice(a);
    else if (k === 4) {
      // Replace one number of the model by an extreme one.
      const nums = [...s.matchAll(/\d+(\.\d+)?/g)];
      if (nums.length) {
        const m = pick(r, nums);
        s = s.slice(0, m.index) + pick(r, NUMBERS) + s.slice(m.index! + m[0].length);
      }
    } else if (k === 5) {
      // Deep nesting.
      const d = pick(r, [10, 100, 1000, 20000]);
      const open = pick(r, ['(', '[', '-', 'not ', 'f(', 'if true then ']);
      const close = open === '(' ? ')' : open === '[' ? ']' : open === 'f(' ? ')' : open === 'if true then ' ? ' else 0' : '';
      s = s.slice(0, a) + open.repeat(d) + '1' + close.repeat(d) + s.slice(a);
    } else if (k === 6) {
      // Swap two lines.
      const lines = s.split('\n');
      const i = int(r, lines.length);
      const j = int(r, lines.length);
      [lines[i], lines[j]] = [lines[j], lines[i]];
      s = lines.join('\n');
    } else {
      // A line copied from elsewhere in the model.
      const lines = s.split('\n');
      lines.splice(int(r, lines.length + 1), 0, pick(r, lines));
      s = lines.join('\n');
    }
  }
  return s;
}

export interface FuzzCase {
  kind: 'bytes' | 'tokens' | 'mutation';
  /** The file the fuzzed text stands in for (imports resolve from its folder). */
  file: string;
  text: string;
}

/** The `i`-th input of the run seeded `seed` (the same on every machine). */
export function fuzzCase(models: Map<string, string>, seed: number, i: number): FuzzCase {
  const r = rng((seed * 0x9e3779b1) ^ (i * 0x85ebca6b));
  const k = r();
  if (k < 0.15) return { kind: 'bytes', file: 'models/fuzz.vae', text: randomBytes(r) };
  if (k < 0.35) return { kind: 'tokens', file: 'models/fuzz.vae', text: randomTokens(r) };
  const names = [...models.keys()];
  const file = pick(r, names);
  return { kind: 'mutation', file, text: mutate(r, models.get(file)!) };
}

export type Outcome = { ok: true; compiled: boolean; codes: string[] } | { ok: false; error: string };

/** Compiles one input; `ok: false` for anything thrown that is not a located, coded DiagnosticError. */
export function runCase(models: Map<string, string>, c: FuzzCase): Outcome {
  const files = new Map(models);
  files.set(c.file, c.text);
  try {
    compileModel(files, c.file);
    return { ok: true, compiled: true, codes: [] };
  } catch (e) {
    if (e instanceof DiagnosticError && e.diagnostics.length > 0) {
      const bad = e.diagnostics.find((d) => !Object.hasOwn(CODES, d.code) || !d.span || !d.span.file || !(d.span.line >= 1));
      if (!bad) return { ok: true, compiled: false, codes: e.diagnostics.map((d) => d.code) };
      return { ok: false, error: `diagnostic without code or span: ${JSON.stringify(bad).slice(0, 300)}` };
    }
    return { ok: false, error: e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}\n${(e.stack ?? '').split('\n').slice(1, 4).join('\n')}` : String(e) };
  }
}
