import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

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
const root = fileURLToPath(new URL('.', import.meta.url));

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
        // Vite serves the repository root only (build/kernels.wasm and test/golden/ included).
        server: { fs: { allow: [root] } },
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
