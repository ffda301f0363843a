/**
 * Throwaway infrastructure for benchmarks and history recording: embedded PostgreSQL, an in-memory
 * Temporal dev server, a KEK dir, a secrets dir and an audit anchor, all under one temporary
 * directory and on free ports — never the dev stack's .data/ (its anchor belongs to another audit
 * chain) nor its ports. Everything started is registered for stop() the moment it exists, and a
 * failed start, SIGINT or SIGTERM stops it all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from './postgres.js';
import { StopList, startSideBySide } from './stop-list.js';
import { resolveTemporalCli } from './temporal-cli.js';
import { startTemporalDevServer } from './temporal-server.js';
import { ensureLocalKekDir } from '../lib/keys/local-kek.js';
import { migrateUp } from '../lib/store/migrate.js';
import { writeSecretRoots } from '../lib/store/secret-roots.js';

export interface BenchInfra {
  databaseUrl: string;
  temporalAddress: string;
  kekDir: string;
  secretsDir: string;
  /** This run's own audit anchor (evidence is written beside it). */
  auditAnchorPath: string;
  /** The temporary directory everything above lives in (removed by stop()). */
  root: string;
  /** Registers something the caller started (a worker, a sandbox, a pool): stop() ends it, newest first. */
  onStop(name: string, stop: () => Promise<void> | void): void;
  /** Stops everything registered, then the servers; removes the temporary directory. */
  stop(): Promise<void>;
}

export async function startBenchInfra(onProgress: (line: string) => void = () => undefined): Promise<BenchInfra> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-bench-'));
  fs.chmodSync(root, 0o755); // under root PostgreSQL runs as `postgres`, which must reach its cluster here
  const stops = new StopList();
  stops.add('temporary directory', () => fs.rmSync(root, { recursive: true, force: true }));
  const stopAll = () =>
    stops.stopAll((name, err) =>
      onProgress(`stopping ${name} failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  const onSignal = (signal: NodeJS.Signals) => {
    onProgress(`${signal}: stopping what the benchmark started`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  stops.add('signal handlers', () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });

  const kekDir = path.join(root, 'keys');
  const secretsDir = path.join(root, 'secrets');
  try {
    await ensureLocalKekDir(kekDir);
    fs.mkdirSync(secretsDir, { mode: 0o700 });
    const [db, temporal] = await startSideBySide([
      (signal) =>
        startEmbeddedPostgres({
          dataDir: path.join(root, 'postgres'),
          logFile: path.join(root, 'postgres.log'),
          fast: true,
          temporary: true,
          stops,
          signal,
          onProgress,
        }),
      async (signal) =>
        startTemporalDevServer({
          cliPath: await resolveTemporalCli({ onProgress }),
          headless: true,
          logFile: path.join(root, 'temporal.log'),
          stops,
          signal,
        }),
    ] as const);
    await migrateUp(db.databaseUrl);
    await writeSecretRoots(db.databaseUrl, { roots: [secretsDir], excluded: [kekDir] });
    return {
      databaseUrl: db.databaseUrl,
      temporalAddress: temporal.address,
      kekDir,
      secretsDir,
      auditAnchorPath: path.join(root, 'audit', 'audit-anchor.jsonl'),
      root,
      onStop: (name, stop) => void stops.add(name, stop),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Runs `run` on fresh infrastructure and stops everything afterwards, whether it succeeded or not. */
export async function withBenchInfra<T>(
  onProgress: (line: string) => void,
  run: (infra: BenchInfra) => Promise<T>,
): Promise<T> {
  const infra = await startBenchInfra(onProgress);
  try {
    return await run(infra);
  } finally {
    await infra.stop();
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100); NaN for no values. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * A tail percentile for a report, or why it is not given: with fewer than 100 / (100 - p) samples
 * (20 for p95, 100 for p99) the "percentile" is just the maximum, so it is not quoted.
 */
export function tailPercentileText(values: number[], p: number, fmt: (value: number) => string): string {
  const needed = Math.ceil(100 / (100 - p));
  return values.length >= needed
    ? `p${p} ${fmt(percentile(values, p))}`
    : `p${p} not given (${values.length} samples; needs ≥ ${needed})`;
}

/** Peak resident set size of a process (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/**
 * The config variables that point the product at this infrastructure: database, Temporal, key and
 * secrets dirs, and the run's own audit anchor (the default, .data/audit-anchor.jsonl, is the dev
 * stack's: a checkpoint there would tie it to this run's chain).
 */
export function benchInfraEnv(infra: BenchInfra): Record<string, string> {
  return {
    DATABASE_URL: infra.databaseUrl,
    TEMPORAL_ADDRESS: infra.temporalAddress,
    EHR_KEK_DIR: infra.kekDir,
    EHR_SECRETS_DIR: infra.secretsDir,
    EHR_AUDIT_ANCHOR_PATH: infra.auditAnchorPath,
  };
}
