import { defineConfig } from 'vitest/config';

// One Temporal dev server and one PostgreSQL per run (test/global-setup.ts). Test FILES run one at
// a time: the CI machine has 2 cores, and integration tests each bring a worker and a sandbox.
// Teardowns run in reverse order: test/leak-scan-setup.ts (last) scans while Temporal is still up,
// then test/global-setup.ts stops the servers, then test/leak-scan-verdict.ts fails the run on a leak.
// Histories are encrypted by the payload codec: the leak scan decodes them with the tests' codec.
// test/interop/hapi-shared-setup.ts starts ONE HAPI FHIR server for the interop files, when the first asks for it.
// test/not-run-reporter.ts ends the run with the suites that could not run (and fails it under CI=true).
process.env.EHR_LEAK_SCAN_CODEC_MODULE ??= 'test/integration/leak-scan-codec.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/not-run-reporter.ts'],
    pool: 'forks',
    fileParallelism: false,
    globalSetup: [
      'test/leak-scan-verdict.ts',
      'test/global-setup.ts',
      'test/interop/hapi-shared-setup.ts',
      'test/leak-scan-setup.ts',
    ],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 180_000,
  },
});
