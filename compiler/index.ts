// The compiler's Node entry: everything of the pure core (compiler/compile.ts), and
// compileModelFile, which reads the model file and its imports from the file system.

import { readFileSync, statSync } from 'node:fs';
import { ImportRefused } from '../dsl/load.ts';
import { sep } from 'node:path';
import { compileModel, type CompiledModelWithFiles, type CompileOptions } from './compile.ts';

export * from './compile.ts';

/**
 * Compiles the model file at `path` (relative to the working directory, or absolute). Diagnostics
 * name files by the paths read; the result's `files`, `source` and `sourceHash` name them
 * relative to the entry file's folder, the same wherever the files lie.
 */
export function compileModelFile(path: string, opts: CompileOptions = {}): CompiledModelWithFiles {
  const posix = sep === '/' ? path : path.split(sep).join('/');
  return compileModel(modelFileReader, posix, opts);
}

/** Model files are at most this long (the paper's largest is 7 kB). */
export const MAX_MODEL_FILE_BYTES = 1 << 20;

/**
 * Reads a model file, refusing (ImportRefused) what is not one: a name not ending in `.vae` (so
 * no system file is read, and none is quoted in a diagnostic), anything but a regular file (a
 * device such as /dev/zero would read without end), or a file over MAX_MODEL_FILE_BYTES.
 */
function modelFileReader(f: string): string {
  if (!f.endsWith('.vae')) throw new ImportRefused('model files end in .vae');
  const st = statSync(f); // throws when missing: SC2003
  if (!st.isFile()) throw new ImportRefused('it is not a regular file');
  if (st.size > MAX_MODEL_FILE_BYTES) throw new ImportRefused(`it is ${st.size} bytes, over the limit of ${MAX_MODEL_FILE_BYTES} for a model file`);
  return readFileSync(f, 'utf8');
}
