/**
 * Vitest global setup: starts ONE embedded PostgreSQL (temp dir, migrated) and ONE in-memory,
 * headless Temporal dev server per test run, plus a KEK dir and a secrets dir, and provides their
 * addresses to tests (see test/harness.ts). As in production, migrations run as the owner and tests
 * get the restricted application role's URL as `databaseUrl`; the owner's is `ownerDatabaseUrl`.
 * DATABASE_URL / TEMPORAL_ADDRESS, when set, are used instead (migrations and search attributes are
 * still applied). EHR_TEST_INFRA=none skips both servers for runs that need neither. Teardown stops
 * everything it started. Each server's stop is registered the moment its process is spawned, and the
 * two start side by side with the first failure aborting the other, so a failed start leaves no
 * process behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../dev/postgres.js';
import { StopList, startSideBySide } from '../dev/stop-list.js';
import { resolveTemporalCli } from '../dev/temporal-cli.js';
import { ensureSearchAttributes, startTemporalDevServer, waitForTemporal } from '../dev/temporal-server.js';
import { ensureLocalKekDir } from '../lib/keys/local-kek.js';
import { migrateUp } from '../lib/store/migrate.js';
import { ensureAppLoginRole } from '../lib/store/roles.js';
import { writeSecretRoots } from '../lib/store/secret-roots.js';
import type { TestInfra } from './harness.js';
import { registerLogFile, registerTemporalServer } from './security/leak-registry.js';

const log = (line: string) => console.log(`[global-setup] ${line}`);
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops = new StopList();
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-test-'));
  // Under root PostgreSQL runs as `postgres`: a traversable tmp dir keeps its cluster here (else it is
  // placed under /var/lib/ehr-connectors, see dev/postgres-placement.ts).
  fs.chmodSync(tmpRoot, 0o755);
  const teardown = async () => {
    await stops.stopAll((name, err) => log(`teardown: stopping ${name} failed: ${String(err)}`));
    if (!process.env.EHR_TEST_KEEP_TMP) fs.rmSync(tmpRoot, { recursive: true, force: true });
  };

  try {
    const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
    const kekDir = path.join(tmpRoot, 'keys');
    const secretsDir = path.join(tmpRoot, 'secrets');
    await ensureLocalKekDir(kekDir);
    fs.mkdirSync(secretsDir, { mode: 0o700 });
    const skip = process.env.EHR_TEST_INFRA === 'none';

    const [database, temporalAddress] = skip
      ? [{ databaseUrl: '', ownerDatabaseUrl: '' }, '']
      : await startSideBySide<[{ databaseUrl: string; ownerDatabaseUrl: string }, string]>([
          (signal) => startDatabase(tmpRoot, stops, signal),
          (signal) => startTemporal(tmpRoot, namespace, stops, signal),
        ]);
    if (!skip)
      await writeSecretRoots(database.ownerDatabaseUrl, { roots: [secretsDir], excluded: [kekDir] }, 'test-setup');

    const workflowBundlePath = path.join(tmpRoot, 'workflow-bundle.js');
    const infra: TestInfra = { temporalAddress, namespace, ...database, kekDir, secretsDir, workflowBundlePath };
    for (const [key, value] of Object.entries(infra) as Array<[keyof TestInfra, string]>) project.provide(key, value);
    return teardown;
  } catch (err) {
    await teardown();
    throw err;
  }
}

async function startDatabase(
  tmpRoot: string,
  stops: StopList,
  signal: AbortSignal,
): Promise<{ databaseUrl: string; ownerDatabaseUrl: string }> {
  const t0 = Date.now();
  let databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl) {
    log('using DATABASE_URL');
  } else {
    const logFile = path.join(tmpRoot, 'postgres.log');
    registerLogFile(logFile); // scanned by the end-of-run leak scan, like every log of the run
    const db = await startEmbeddedPostgres({
      dataDir: path.join(tmpRoot, 'postgres'),
      logFile,
      fast: true,
      temporary: true,
      stops,
      signal,
      onProgress: log,
    });
    databaseUrl = db.databaseUrl;
  }
  await migrateUp(databaseUrl);
  // What the worker, webhook receiver and codec server log in as in production (docker-compose.yml).
  const appDatabaseUrl = await ensureAppLoginRole(databaseUrl);
  log(`PostgreSQL ready and migrated in ${seconds(t0)}; tests connect as the application role`);
  return { databaseUrl: appDatabaseUrl, ownerDatabaseUrl: databaseUrl };
}

async function startTemporal(
  tmpRoot: string,
  namespace: string,
  stops: StopList,
  signal: AbortSignal,
): Promise<string> {
  const t0 = Date.now();
  const existing = process.env.TEMPORAL_ADDRESS;
  if (existing) {
    await waitForTemporal(existing, { namespace, timeoutMs: 15_000 });
    const added = await ensureSearchAttributes(existing, namespace);
    log(
      `using TEMPORAL_ADDRESS=${existing}${added.length ? ` (registered search attributes ${added.join(', ')})` : ''}`,
    );
    return existing;
  }
  const cliPath = await resolveTemporalCli({ onProgress: log });
  const logFile = path.join(tmpRoot, 'temporal.log');
  registerLogFile(logFile);
  const server = await startTemporalDevServer({ cliPath, headless: true, namespace, logFile, stops, signal });
  // Scanned live at the end of the run, before it stops.
  registerTemporalServer({ label: 'global-setup', address: server.address, namespace });
  log(`Temporal dev server ready at ${server.address} in ${seconds(t0)}`);
  return server.address;
}
