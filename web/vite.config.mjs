// Vite's build of the explorer page (web/index.html → an outDir of static files). Used by
// `statcell export-web` / `serve` when no built page ships (cli/web-site.ts) and by the package
// build (dist/web/). Plain JavaScript: the build needs no TypeScript loader for its config.
import { fileURLToPath } from 'node:url';

export default {
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs: the site works from any folder of any static host.
  base: './',
  logLevel: 'error', // the runtime's Node-only dynamic imports (node:fs …, behind isNode) would each warn
  // The model worker (web/worker.ts) and the Wasm pool's workers it starts (runtime/wasm-worker.mjs)
  // are module workers: they share chunks with the page and import Node-only modules lazily.
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The kernels (build/*.wasm) stay files, fetched by runtime/wasm.ts.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      // Node-only modules the runtime imports dynamically, only under Node (runtime/device.ts, wasm.ts).
      external: ['webgpu'],
    },
  },
};
