/**
 * How each of our long-running processes (worker, webhook receiver, codec server, migration job) is started
 * everywhere it runs: the Dockerfile and docker-compose.yml (a unit test holds them to this), the dev stack, the
 * tests that spawn the real entry points and the benchmarks, so what is measured is what ships.
 *
 * - `--require tsx/cjs`: TypeScript through tsx's CommonJS hook alone (the code base is CommonJS; ESM-only
 *   packages are still transpiled on require). `--import tsx` also registers tsx's ESM loader, which Node 20
 *   runs on a thread of its own — one V8 isolate more, about 50 MiB of a resting worker's RSS.
 * - `--max-semi-space-size=8` (MiB; Node 20's default is 16): the young generation is committed whole once a
 *   busy process has filled it, and a worker's garbage is short-lived (parsed lines, sealed records); half the
 *   space lowered the bulk benchmark's peak RSS by about 20-30 MiB at no CPU cost measured (bench:sync, bulk).
 * - `--heap-growing-percent=50`: after a full collection V8 lets the old generation grow to as much as four
 *   times what survived before the next one; a worker's survivors are few (keys, caches, batches being
 *   committed), so it let garbage pile up to ~200 MiB of heap in a long bulk file. 1.5 times keeps the heap
 *   under ~100 MiB for ~10 % more worker CPU (bench:sync --strategy bulk: peak RSS 430 → 285 MiB).
 * - `MALLOC_ARENA_MAX=2`: glibc gives threads their own malloc arenas, and a worker has about twenty (Temporal
 *   core's runtime, libuv's pool, the workflow threads); their fragments add to RSS under load.
 */
export const NODE_ARGS: readonly string[] = [
  '--require',
  'tsx/cjs',
  '--max-semi-space-size=8',
  '--heap-growing-percent=50',
];

export const PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The command line of one entry point (a path such as `workers/worker.ts`), after the node executable. */
export function nodeArgsFor(entryPoint: string): string[] {
  return [...NODE_ARGS, entryPoint];
}
