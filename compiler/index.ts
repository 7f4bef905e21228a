// The compiler's Node entry: everything of the pure core (compiler/compile.ts), and
// compileModelFile, which reads the model file and its imports from the file system.

import { readFileSync } from 'node:fs';
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
  return compileModel((f) => readFileSync(f, 'utf8'), posix, opts);
}
