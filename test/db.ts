/**
 * A throwaway embedded PostgreSQL cluster of a test file's own (temp dir, migrated), for tests that
 * need a database nobody else writes to. Most tests use the run's shared cluster (test/harness.ts).
 * As in production, the migrations run as the owner and `url`/`pool` are the restricted application
 * role's (a LOGIN member of `ehr_app`); `ownerUrl`/`ownerPool` are for a test acting as the operator
 * or as an attacker with owner rights.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { startEmbeddedPostgres } from '../dev/postgres.js';
import { migrateUp } from '../lib/store/migrate.js';
import { ensureAppLoginRole } from '../lib/store/roles.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestCluster {
  /** The cluster's temp dir (0755); tests may put their own files in it, it is removed on stop. */
  tmp: string;
  /** The application role. */
  url: string;
  pool: pg.Pool;
  /** The owner (superuser of this cluster): operator and attacker only. */
  ownerUrl: string;
  ownerPool: pg.Pool;
  /** Another pool (the application role unless `owner`): a second "process" with its own connections. */
  newPool(max?: number, as?: 'app' | 'owner'): pg.Pool;
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  /** Tenants inserted after migration, named `Tenant <id>`. */
  tenants?: string[];
  /** Size of the main pool. */
  poolMax?: number;
}

export async function startTestCluster(prefix: string, options: TestClusterOptions = {}): Promise<TestCluster> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(tmp, 0o755); // under root the server runs as `postgres`, which then reaches its cluster here
  // The same code path as the test run's own cluster and `ehrctl dev up` (dev/postgres.ts).
  const server = await startEmbeddedPostgres({
    dataDir: path.join(tmp, 'pg'),
    database: 'postgres',
    fast: true,
    temporary: true,
  }).catch(async (err: unknown) => {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  });
  const ownerUrl = server.databaseUrl;
  let url: string;
  try {
    await migrateUp(ownerUrl);
    url = await ensureAppLoginRole(ownerUrl);
  } catch (err) {
    await server.stop();
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const pools: pg.Pool[] = [];
  const newPool = (max = 8, as: 'app' | 'owner' = 'app'): pg.Pool => {
    const p = new pg.Pool({ connectionString: as === 'owner' ? ownerUrl : url, max });
    p.on('error', () => undefined); // idle clients are terminated when the server stops
    pools.push(p);
    return p;
  };
  const pool = newPool(options.poolMax ?? 12);
  const ownerPool = newPool(2, 'owner');
  for (const t of options.tenants ?? [])
    await ownerPool.query('INSERT INTO tenants (id, name) VALUES ($1, $2)', [t, `Tenant ${t}`]);
  return {
    tmp,
    url,
    pool,
    ownerUrl,
    ownerPool,
    newPool,
    async stop() {
      for (const p of pools) await p.end().catch(() => undefined);
      await server.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * One throwaway cluster for the calling test file: started in beforeAll, stopped in afterAll. The
 * returned object's fields are readable from the first test (or a later beforeAll) on.
 */
export function useTestCluster(prefix: string, options: TestClusterOptions = {}): TestCluster {
  let cluster: TestCluster | undefined;
  const get = (): TestCluster => {
    if (!cluster) throw new Error('useTestCluster: the cluster is not started yet (read it inside a test or hook)');
    return cluster;
  };
  beforeAll(async () => {
    cluster = await startTestCluster(prefix, options);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  return {
    get tmp() {
      return get().tmp;
    },
    get url() {
      return get().url;
    },
    get pool() {
      return get().pool;
    },
    get ownerUrl() {
      return get().ownerUrl;
    },
    get ownerPool() {
      return get().ownerPool;
    },
    newPool: (max, as) => get().newPool(max, as),
    stop: () => get().stop(),
  };
}
