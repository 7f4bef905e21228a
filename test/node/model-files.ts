// Model files written by a test, and the diagnostic a broken one compiles to.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { compileModelFile } from '../../compiler/index.ts';
import { DiagnosticError } from '../../dsl/diagnostics.ts';

/** The scratch folder the variants are written to. */
export const VARIANTS = mkdtempSync(join(tmpdir(), 'statcell-vae-'));

/** Writes `<name>.vae` with `text` into a scratch folder; returns its path. */
export function variant(name: string, text: string): string {
  const f = join(VARIANTS, `${name}.vae`);
  writeFileSync(f, text);
  return f;
}

/** The rendered diagnostic of compiling `file` (fails the test when it compiles). */
export function diag(file: string, overrides: Record<string, unknown> = {}): string {
  try {
    compileModelFile(file, { overrides });
  } catch (e) {
    expect(e).toBeInstanceOf(DiagnosticError);
    return (e as DiagnosticError).message;
  }
  throw new Error('compiled without a diagnostic');
}
