import { defineConfig } from 'vitest/config';

// One Temporal dev server and one PostgreSQL per run (test/global-setup.ts). Test FILES run one at
// a time: the CI machine has 2 cores, and integration tests each bring a worker and a sandbox.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
  },
});
