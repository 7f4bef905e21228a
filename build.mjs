// Builds what the package runs and ships (dist/): the command line and the library bundled by
// esbuild (one chunk per command, loaded when it runs, so `statcell --help` loads only commander),
// the Wasm thread pool's worker beside them, and the library's type declarations. The Wasm kernels
// themselves are built by `npm run build:wasm` into build/. No transpiler is needed at run time.
//   node build.mjs            bundles only (fast: what `npm start` runs first)
//   node build.mjs --types    also the declarations
//   node build.mjs --web      also the explorer page (Vite: web/ → dist/web/, what `statcell serve`
//                             and `export-web` ship from an installed package)
// `npm run build` (and `prepare`) does all three.

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: { statcell: 'cli/statcell.ts', index: 'index.ts' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external', // dependencies stay imports: npm installs them
  // dist/ sits beside build/ and models/, so the sources' `new URL('../build/…', import.meta.url)` still resolve.
  outdir: 'dist',
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
});
writeFileSync('dist/statcell.mjs', '#!/usr/bin/env node\n' + readFileSync('dist/statcell.mjs', 'utf8'), { mode: 0o755 });
copyFileSync('runtime/wasm-worker.mjs', 'dist/wasm-worker.mjs');

if (process.argv.includes('--types')) {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.types.json'], { stdio: 'inherit' });
  // The sources import `./x.ts`; a consumer's TypeScript finds `./x.d.ts` from `./x.js`.
  for (const e of readdirSync('dist/types', { recursive: true, withFileTypes: true }))
    if (e.isFile() && e.name.endsWith('.d.ts')) {
      const f = join(e.parentPath, e.name);
      writeFileSync(f, readFileSync(f, 'utf8').replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2'));
    }
}

if (process.argv.includes('--web')) await (await import('vite')).build({ configFile: 'web/vite.config.mjs' });
