/** Throwaway infrastructure for benchmarks and history recording: embedded PostgreSQL, an in-memory Temporal dev server, keys. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from './postgres.js';
import { resolveTemporalCli } from './temporal-cli.js';
import { startTemporalDevServer } from './temporal-server.js';
import { ensureLocalKekDir } from '../security/local-kek.js';
import { migrateUp } from '../store/migrate.js';
import { writeSecretRoots } from '../store/secret-roots.js';

export interface BenchInfra {
  databaseUrl: string;
  temporalAddress: string;
  kekDir: string;
  secretsDir: string;
  stop(): Promise<void>;
}

export async function startBenchInfra(onProgress: (line: string) => void = () => undefined): Promise<BenchInfra> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-bench-'));
  fs.chmodSync(root, 0o755);
  const kekDir = path.join(root, 'keys');
  const secretsDir = path.join(root, 'secrets');
  await ensureLocalKekDir(kekDir);
  fs.mkdirSync(secretsDir, { mode: 0o700 });
  const [db, temporal] = await Promise.all([
    startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), logFile: path.join(root, 'postgres.log'), fast: true }),
    resolveTemporalCli({ onProgress }).then((cliPath) =>
      startTemporalDevServer({ cliPath, headless: true, logFile: path.join(root, 'temporal.log') }),
    ),
  ]);
  await migrateUp(db.databaseUrl);
  await writeSecretRoots(db.databaseUrl, { roots: [secretsDir], excluded: [kekDir] });
  return {
    databaseUrl: db.databaseUrl,
    temporalAddress: temporal.address,
    kekDir,
    secretsDir,
    async stop() {
      await temporal.stop();
      await db.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100); NaN for no values. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Peak resident set size of a process (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** The config variables that point the product at this infrastructure (database, Temporal, key and secrets dirs). */
export function benchInfraEnv(infra: BenchInfra): Record<string, string> {
  return {
    DATABASE_URL: infra.databaseUrl,
    TEMPORAL_ADDRESS: infra.temporalAddress,
    EHR_KEK_DIR: infra.kekDir,
    EHR_SECRETS_DIR: infra.secretsDir,
  };
}
