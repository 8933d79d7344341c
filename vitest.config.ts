import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts', 'bench/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Engine suites start real stores and child processes: two files at a time fit 2 cores.
    maxWorkers: 2,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
