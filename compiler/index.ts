// The compiler's Node entry: everything of the pure core (compiler/compile.ts), and
// compileModelFile, which reads the model file and its imports from the file system.

import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImportRefused, LIBRARY as LIBRARY_NAME, type FileReader } from '../dsl/load.ts';
import { normalizePath } from '../dsl/path.ts';
import { compileModel, type CompiledModelWithFiles, type CompileOptions } from './compile.ts';

export * from './compile.ts';

/**
 * Compiles the model file at `path` (relative to the working directory, or absolute). Diagnostics
 * name files by the paths read; the result's `files`, `source` and `sourceHash` name them
 * relative to the entry file's folder, the same wherever the files lie.
 */
export function compileModelFile(path: string, opts: CompileOptions = {}): CompiledModelWithFiles {
  const posix = sep === '/' ? path : path.split(sep).join('/');
  return compileModel(modelFileReader(posix), posix, opts);
}

/** Model files are at most this long (the paper's largest is 7 kB). */
export const MAX_MODEL_FILE_BYTES = 1 << 20;

/**
 * statcell's own models/ folder (the paper's models and their blocks, statcell.vae): the one
 * folder besides the entry's own tree that imports may reach. This module and the bundles in
 * dist/ both lie one folder below the package root.
 */
const LIBRARY = fileURLToPath(new URL('../models/', import.meta.url));

const realOrNull = (p: string): string | null => {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
};
const inside = (file: string, root: string): boolean => file === root || file.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * The reader of the model file `entry` and its imports, refusing (ImportRefused) what is not a
 * model file: a name not ending in `.vae` (so no system file is read, and none is quoted in a
 * diagnostic), anything but a regular file (a device such as /dev/zero would read without end),
 * a file over MAX_MODEL_FILE_BYTES (SC2017) — and an import whose real path (symlinks followed)
 * lies outside the model's folder tree: the entry file's folder and its subfolders, or statcell's
 * models/ library (SC2018). The entry itself is whatever file the user named.
 */
function modelFileReader(entry: string): FileReader {
  const roots = [dirname(entry), LIBRARY].map(realOrNull).filter((r): r is string => r !== null);
  const entryName = normalizePath(entry);
  return (f) => {
    if (!f.endsWith('.vae')) throw new ImportRefused('model files end in .vae');
    // The library's own name for its folder (dsl/load.ts LIBRARY).
    if (f.startsWith(`${LIBRARY_NAME}/`)) f = LIBRARY + f.slice(LIBRARY_NAME.length + 1);
    let file = f;
    if (normalizePath(f) !== entryName) {
      file = realpathSync(f); // throws when missing: SC2003. The real path is what is read, so a link swapped meanwhile is not followed.
      if (!roots.some((r) => inside(file, r)))
        throw new ImportRefused(`it resolves to ${file}, and imports must lie under ${roots.join(' or ')} (the entry file's folder, or statcell's models/ library)`, 'SC2018');
    }
    const st = statSync(file);
    if (!st.isFile()) throw new ImportRefused('it is not a regular file');
    if (st.size > MAX_MODEL_FILE_BYTES) throw new ImportRefused(`it is ${st.size} bytes, over the limit of ${MAX_MODEL_FILE_BYTES} for a model file`);
    return readFileSync(file, 'utf8');
  };
}
