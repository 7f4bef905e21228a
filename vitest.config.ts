import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    provide: { ci: !!process.env.CI, devices: process.env.STATCELL_TEST_DEVICES ?? '' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['test/**/*.test.ts'], pool: 'forks' },
      },
    ],
  },
});
