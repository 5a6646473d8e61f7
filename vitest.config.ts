import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child-process tests (kill -9, read-only folders) load the CPU; keep two files at a time.
    maxWorkers: 2,
  },
});
