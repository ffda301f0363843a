import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../dev/postgres.js';
import { serverUser } from '../../dev/postgres-binaries.js';
import { runToCompletion, spawnServer } from '../../dev/postgres-process.js';
import { StopList } from '../../dev/stop-list.js';

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
      expect(await query(second.databaseUrl, "SELECT current_setting('listen_addresses') AS l")).toEqual([
        { l: '127.0.0.1' },
      ]);
    } finally {
      await second.stop();
    }
  });

  it('refuses to guess when the cluster exists but its password file is gone', async () => {
    const dataDir = path.join(tmp, 'orphan', 'postgres');
    const db = await startEmbeddedPostgres({ dataDir, fast: true });
    await db.stop();
    fs.rmSync(path.join(tmp, 'orphan', 'postgres.password'));
    await expect(startEmbeddedPostgres({ dataDir, fast: true })).rejects.toThrow(
      /password file .* is missing\n {2}fix: delete .* to start over/,
    );
  });

  it('refuses a non-empty directory that is not a cluster', async () => {
    const dataDir = path.join(tmp, 'junk', 'postgres');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'something'), 'x');
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(
      /not empty but holds no PostgreSQL cluster \(no PG_VERSION\)\n {2}fix: move/,
    );
  });

  it('runs a cluster asked for inside a private (0700) directory, and finds it again on the next start', async () => {
    const privateDir = fs.mkdtempSync(path.join(tmp, 'private-')); // mkdtemp: 0700, like a clone under root's home
    expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
    const asked = path.join(privateDir, '.data', 'postgres');
    const progress: string[] = [];
    const first = await startEmbeddedPostgres({
      dataDir: asked,
      fast: true,
      onProgress: (line) => progress.push(line),
    });
    let second: EmbeddedPostgres | undefined;
    try {
      expect(await query(first.databaseUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      // The password never leaves the private directory.
      expect(fs.statSync(path.join(privateDir, '.data', 'postgres.password')).mode & 0o777).toBe(0o600);
      if (process.getuid?.() === 0) {
        // Under root the server runs as `postgres`, which cannot enter privateDir: the cluster lives
        // where it can, and the path asked for links there.
        expect(first.dataDir).toMatch(/^\/var\/lib\/ehr-connectors\/postgres\/[0-9a-f]{16}$/);
        expect(fs.lstatSync(asked).isSymbolicLink()).toBe(true);
        expect(fs.realpathSync(asked)).toBe(first.dataDir);
        expect(progress.join('\n')).toContain(`${privateDir} is private`);
      } else {
        expect(first.dataDir).toBe(asked); // the server runs as ourselves
      }
      await first.stop();
      second = await startEmbeddedPostgres({ dataDir: asked, fast: true });
      expect(second.initialised).toBe(false);
      expect(second.dataDir).toBe(first.dataDir);
    } finally {
      await second?.stop();
      await first.stop();
    }
    // Deleting the private data dir (password included) orphans the relocated cluster: the next start
    // in its place removes it and begins afresh instead of failing on a password nobody has.
    fs.rmSync(path.join(privateDir, '.data'), { recursive: true, force: true });
    const fresh = await startEmbeddedPostgres({
      dataDir: asked,
      fast: true,
      temporary: true,
      onProgress: (line) => progress.push(line),
    });
    try {
      expect(fresh.initialised).toBe(true);
      expect(fresh.dataDir).toBe(first.dataDir);
    } finally {
      await fresh.stop();
    }
    // A temporary cluster leaves nothing behind, wherever it lived.
    expect(fs.existsSync(fresh.dataDir)).toBe(false);
    expect(fs.existsSync(asked)).toBe(false);
  });

  it('reports a binary that cannot be run as a reason, never as an unhandled error event', async () => {
    const notExecutable = path.join(tmp, 'initdb');
    fs.writeFileSync(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
    const user = serverUser();
    const run = await runToCompletion(notExecutable, ['--version'], {
      user,
      onOutput: () => undefined,
      timeoutMs: 10_000,
    });
    expect(run.spawnError?.message).toMatch(/EACCES/);
    const server = spawnServer(notExecutable, [], { user, onOutput: () => undefined });
    await expect(server.ready('ready to accept connections', { timeoutMs: 10_000 })).rejects.toThrow(
      /^could not run .*initdb.*EACCES/,
    );
    expect(await server.stop('SIGINT', 1_000)).toBe(true);
  });

  it('registers the server for stopping the moment it is spawned, and an aborted start leaves nothing running', async () => {
    const stops = new StopList();
    const abort = new AbortController();
    const dataDir = path.join(tmp, 'aborted', 'postgres');
    const starting = startEmbeddedPostgres({ dataDir, fast: true, temporary: true, stops, signal: abort.signal });
    // initdb is registered while it runs; abort as soon as anything is.
    while (stops.names().length === 0) await new Promise((r) => setTimeout(r, 5));
    abort.abort(new Error('the other server failed'));
    await expect(starting).rejects.toThrow(/another part failed \(the other server failed\)/);
    expect(stops.names()).toEqual([]);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
