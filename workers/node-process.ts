/**
 * How each of our long-running processes (worker, webhook receiver, codec server, migration job) is started
 * everywhere it runs: the Dockerfile and docker-compose.yml (a unit test holds them to this), the dev stack, the
 * tests that spawn the real entry points and the benchmarks, so what is measured is what ships.
 *
 * - `--require tsx/cjs`: TypeScript through tsx's CommonJS hook alone (the code base is CommonJS; ESM-only
 *   packages are still transpiled on require). `--import tsx` also registers tsx's ESM loader, which Node 20
 *   runs on a thread of its own — one V8 isolate more, about 50 MiB of a resting worker's RSS.
 * - `--max-semi-space-size=2` and `--heap-growing-percent=20`: a worker's garbage is short-lived (parsed lines,
 *   sealed records) and what survives is small (keys, caches, batches being committed). Node 20's defaults (16
 *   MiB semi-spaces, an old generation let grow to up to 4 x its survivors between full collections) let a long
 *   bulk file pile garbage up to ~200 MiB of heap. Measured with `npm run bench:sync -- --strategy bulk`
 *   (1,000,000 resources, worker peak RSS / worker CPU-s): defaults 357-430 MiB / 33; 8 MiB and 50 % 295-310 /
 *   34; 4 MiB and 30 % 281-291 / 35; 2 MiB and 20 % 272-273 / 36-39.
 * - `MALLOC_ARENA_MAX=2`: glibc gives threads their own malloc arenas, and a worker has about twenty (Temporal
 *   core's runtime, libuv's pool, the workflow threads); their fragments add to RSS under load.
 * - `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` at 128 KiB, fixed: glibc otherwise raises its mmap
 *   threshold each time a large block is freed (up to 32 MiB), after which a bulk file's buffers come from the heap
 *   and are not given back — a worker at rest after one bulk run held ~50 MiB more than before it. Fixed, blocks of
 *   128 KiB and more are mapped and unmapped, and the heap's free top is trimmed. Same benchmark, three runs each,
 *   the same day: worker peak RSS 273-291 MiB (193-251 at rest) without them, 243-246 (173-198) with them, resources
 *   per second and worker CPU alike. (With that room, 4 MiB semi-spaces were tried again: worker CPU 41-42 s, not
 *   less, so they stay at 2.)
 */
export const NODE_ARGS: readonly string[] = [
  '--require',
  'tsx/cjs',
  '--max-semi-space-size=2',
  '--heap-growing-percent=20',
];

export const PROCESS_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** The command line of one entry point (a path such as `workers/worker.ts`), after the node executable. */
export function nodeArgsFor(entryPoint: string): string[] {
  return [...NODE_ARGS, entryPoint];
}
