import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig, type Plugin } from 'vitest/config';

// The runtime suites run twice: in Node (Dawn + Wasm) and in headless Chromium (navigator.gpu on
// SwiftShader + Wasm), so both hosts are held to the same float64 references.

/** Debian's chromium (installed by .ci/run); Playwright's own browsers are never downloaded. */
const chromium = process.env.STATCELL_CHROMIUM ?? '/usr/bin/chromium';
const chromiumArgs = [
  // Without it navigator.gpu exists but requestAdapter() gives null; with it, on a machine
  // without a GPU, Chromium offers its SwiftShader (Vulkan) adapter, headless too.
  '--enable-unsafe-webgpu',
  '--no-sandbox', // CI runs as root
  '--disable-dev-shm-usage', // containers often give /dev/shm only 64 MiB
  // No outside network here: keep Chromium from trying.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** ../shared (fixtures) sits beside the repository, in CI too; it may be a symlink, and Vite
 *  checks both the path asked for and the resolved one against fs.allow. */
const root = fileURLToPath(new URL('.', import.meta.url));
const shared = fileURLToPath(new URL('../shared', import.meta.url));
const sharedPaths = existsSync(shared) ? [...new Set([shared, realpathSync(shared)])] : [shared];

/**
 * A fixture URL built at run time from import.meta.url ('../../shared/fixtures/' + name) is left
 * alone by Vite, and lands on /shared/... (from a module served at /test/x.ts: URLs cannot climb
 * above the origin) or on /work/shared/... (test files are served at their file-system path).
 * Route both to Vite's /@fs/ (fs.allow still applies). Literal and template
 * `new URL(..., import.meta.url)` forms Vite rewrites by itself.
 */
const serveShared: Plugin = {
  name: 'statcell-serve-shared',
  configureServer(server) {
    const abs = new URL('../shared/', import.meta.url).pathname;
    const ownShared = existsSync(new URL('shared', import.meta.url)); // then /shared/ is the repo's own
    server.middlewares.use((req, _res, next) => {
      const url = req.url ?? '';
      if (url.startsWith(abs)) req.url = `/@fs${url}`;
      else if (url.startsWith('/shared/') && !ownShared) req.url = `/@fs${abs}${url.slice('/shared/'.length)}`;
      next();
    });
  },
};

export default defineConfig({
  test: {
    provide: { ci: !!process.env.CI, devices: process.env.STATCELL_TEST_DEVICES ?? '' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['test/browser/**'], pool: 'forks' },
      },
      {
        extends: true,
        // Vite serves the repository root (build/kernels.wasm included) and ../shared/fixtures.
        server: { fs: { allow: [root, ...sharedPaths] } },
        plugins: [serveShared],
        // dawn.node is Node-only; runtime/device.ts imports it only under Node.
        optimizeDeps: { exclude: ['webgpu'] },
        test: {
          name: 'browser',
          include: ['test/**/*.test.ts'],
          exclude: ['test/node/**'],
          // SwiftShader and the 2-core machines: one page at a time keeps timings sane.
          fileParallelism: false,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: chromium, args: chromiumArgs } }),
            instances: [{ browser: 'chromium' }],
            screenshotFailures: false, // compute tests: a picture of a blank page says nothing
          },
        },
      },
    ],
  },
});
