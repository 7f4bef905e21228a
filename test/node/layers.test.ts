// The layering of the code base (README, "Layout"): each folder imports only from the folders
// below it, and the code a browser runs imports no `node:` module except in the Node entry
// points named here. Checked on the import statements of every source file.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { expect, test } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

/** What each layer may import, besides itself (lowest first). */
const MAY_IMPORT: Record<string, string[]> = {
  dsl: [],
  kernels: [],
  data: [],
  runtime: ['kernels'],
  compiler: ['dsl', 'kernels', 'runtime'],
  session: ['compiler', 'runtime', 'kernels', 'dsl', 'data'],
  train: ['session', 'compiler', 'runtime', 'kernels', 'dsl', 'data'],
  analysis: ['session', 'compiler', 'runtime', 'kernels', 'dsl', 'data'],
  viz: ['analysis', 'train', 'session', 'compiler', 'runtime', 'kernels', 'dsl', 'data'],
  sweep: ['viz', 'analysis', 'train', 'session', 'compiler', 'runtime', 'kernels', 'dsl', 'data'],
  web: ['analysis', 'session', 'compiler', 'runtime', 'kernels', 'dsl', 'data'],
  cli: ['web', 'sweep', 'viz', 'analysis', 'train', 'session', 'compiler', 'runtime', 'kernels', 'dsl', 'data'],
};

/** Layers whose code runs in a browser too: a static `node:` import only in these Node entry points. */
const BROWSER_LAYERS = ['dsl', 'kernels', 'runtime', 'compiler', 'session', 'analysis', 'web'];
const NODE_ENTRY_POINTS = new Set(['compiler/index.ts', 'session/run.ts', 'session/checkpoint.ts', 'session/lock.ts']);

function sources(dir: string): string[] {
  if (!existsSync(join(ROOT, dir))) return [];
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|mjs)$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

const staticImports = (text: string) => [...text.matchAll(/^\s*(?:import|export)\s[^;'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? m[2]);

test('each layer imports only from the layers below it', () => {
  const wrong: string[] = [];
  for (const layer of Object.keys(MAY_IMPORT))
    for (const file of sources(layer))
      for (const spec of staticImports(readFileSync(join(ROOT, file), 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = normalize(join(dirname(file), spec)).split('/')[0];
        if (target !== layer && !MAY_IMPORT[layer].includes(target)) wrong.push(`${file} imports ${spec} (${layer} → ${target})`);
      }
  expect(wrong).toEqual([]);
});

test('browser-side layers import no node: module outside their Node entry points', () => {
  const wrong: string[] = [];
  for (const layer of BROWSER_LAYERS)
    for (const file of sources(layer)) {
      if (NODE_ENTRY_POINTS.has(file) || file.endsWith('.mjs')) continue;
      for (const spec of staticImports(readFileSync(join(ROOT, file), 'utf8'))) if (spec.startsWith('node:')) wrong.push(`${file} imports ${spec}`);
    }
  expect(wrong).toEqual([]);
});
