import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../lib/dev/postgres.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-dev-pg-'));
fs.chmodSync(tmp, 0o755); // under root the server runs as `postgres` and must traverse it
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL', () => {
  it('initialises once, keeps a 0600 random password beside the data dir, and reuses both on restart', async () => {
    const dataDir = path.join(tmp, 'data', 'postgres');
    const first = await startEmbeddedPostgres({ dataDir, fast: true });
    const passwordFile = path.join(tmp, 'data', 'postgres.password');
    try {
      expect(first.initialised).toBe(true);
      expect(first.databaseUrl).toMatch(/^postgresql:\/\/postgres:[0-9a-f]{48}@127\.0\.0\.1:\d+\/ehr_connectors$/);
      expect(fs.statSync(passwordFile).mode & 0o777).toBe(0o600);
      await query(first.databaseUrl, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
    } finally {
      await first.stop();
    }

    const second = await startEmbeddedPostgres({ dataDir, fast: true });
    try {
      expect(second.initialised).toBe(false);
      expect(new URL(second.databaseUrl).password).toBe(new URL(first.databaseUrl).password);
      expect(await query(second.databaseUrl, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
      // Loopback TCP only.
      expect(await query(second.databaseUrl, "SELECT current_setting('listen_addresses') AS l")).toEqual([{ l: '127.0.0.1' }]);
    } finally {
      await second.stop();
    }
  });

  it('refuses to guess when the cluster exists but its password file is gone', async () => {
    const dataDir = path.join(tmp, 'orphan', 'postgres');
    const db = await startEmbeddedPostgres({ dataDir, fast: true });
    await db.stop();
    fs.rmSync(path.join(tmp, 'orphan', 'postgres.password'));
    await expect(startEmbeddedPostgres({ dataDir, fast: true })).rejects.toThrow(/password file .* is missing; delete .* to start over/);
  });

  it('refuses a non-empty directory that is not a cluster', async () => {
    const dataDir = path.join(tmp, 'junk', 'postgres');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'something'), 'x');
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/not empty but holds no PostgreSQL cluster/);
  });
});
