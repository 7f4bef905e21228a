// Node-only: read a .vae file and, transitively, the files it imports (paths relative to the
// importing file). Each file is parsed once; import problems are diagnostics at the import.

import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import type { Program } from './ast.ts';
import { DiagnosticBag, type Diagnostic } from './diagnostics.ts';
import { parse } from './index.ts';

export interface LoadResult {
  /** The entry file's name as given (normalised). */
  entry: string;
  /** Every file reached, in load order (imports before the files importing them). */
  programs: Map<string, Program>;
  /** File texts, for renderDiagnostics. */
  sources: Map<string, string>;
  diagnostics: Diagnostic[];
  ok: boolean;
}

export function loadModule(path: string, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): LoadResult {
  const entry = normalize(path);
  const programs = new Map<string, Program>();
  const sources = new Map<string, string>();
  const diags = new DiagnosticBag();
  const active: string[] = []; // files being loaded, to report import cycles

  const visit = (file: string): void => {
    const src = read(file);
    sources.set(file, src);
    const r = parse(src, file);
    r.diagnostics.forEach((d) => diags.add(d));
    active.push(file);
    for (const d of r.program.decls) {
      if (d.kind !== 'Import') continue;
      const target = normalize(join(dirname(file), d.path));
      if (active.includes(target)) {
        diags.error('SC2007', d.pathSpan, `import cycle: ${[...active.slice(active.indexOf(target)), target].join(' → ')}`, { notes: ['move the shared blocks into a file that imports neither'] });
        continue;
      }
      if (programs.has(target)) continue;
      let text: string | undefined;
      try { text = read(target); } catch { text = undefined; }
      if (text === undefined) {
        diags.error('SC2003', d.pathSpan, `cannot find imported file '${d.path}' (looked for ${target})`, { notes: ['import paths are relative to the importing file'] });
        continue;
      }
      visit(target);
    }
    active.pop();
    programs.set(file, r.program);
  };

  visit(entry);
  const diagnostics = diags.sorted();
  return { entry, programs, sources, diagnostics, ok: !diagnostics.some((d) => d.severity === 'error') };
}
