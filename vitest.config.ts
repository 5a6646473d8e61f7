import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The shipped handlers import the package by name, as a user's do.
  resolve: {
    alias: [
      { find: /^hubex-router$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^hubex-router\/testing$/, replacement: fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)) },
      { find: /^hubex-router\/hubex$/, replacement: fileURLToPath(new URL('./src/hubex/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child-process tests (kill -9, read-only folders) load the CPU; keep two files at a time.
    maxWorkers: 2,
  },
});
