/**
 * The migration job (workers/migrate.ts) as docker-compose.yml's `migrate` service runs it, as a
 * real process against a database of its own: it applies the migrations as the owner, then creates
 * the application's login role with the password from the services' pgpass file (and Temporal's
 * CREATEDB-only role). The services then log in as a role that can only append to the audit trail;
 * a second run applies a changed password; a pgpass file others may read is refused.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../lib/store/pool.js';
import { onDatabase, testEnv, uniqueId } from '../harness.js';
import { recordErrorOutput } from '../security/leak-registry.js';
import { PROCESS_ENV, nodeArgsFor } from '../../workers/node-process.js';

const repoRoot = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migrate-job-'));
const suffix = randomBytes(4).toString('hex');
const appRole = `ehr_app_job_${suffix}`;
const temporalRole = `temporal_job_${suffix}`;
const temporalPassword = `synthetic-temporal-${randomBytes(8).toString('hex')}`;
const dbName = `migrate_job_${uniqueId('db').replace(/-/g, '_')}`;
let owner: pg.Pool;

function runMigrate(
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const full: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) full[k] = v;
  const child = spawn(process.execPath, nodeArgsFor('workers/migrate.ts'), {
    cwd: repoRoot,
    env: { ...full, ...PROCESS_ENV },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      recordErrorOutput('migrate-job', stderr);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The services' view: their URL (no password) and a pgpass line for it. */
function appSide(password: string, mode = 0o600): { url: string; pgpass: string } {
  const u = new URL(testEnv().ownerDatabaseUrl);
  const url = `postgresql://${appRole}@${u.hostname}:${u.port}/${dbName}`;
  const pgpass = path.join(tmp, `app-pgpass-${randomBytes(3).toString('hex')}`);
  fs.writeFileSync(
    pgpass,
    `# the application's login role\n${u.hostname}:${u.port}:${dbName}:${appRole}:${password.replace(/:/g, '\\:')}\n`,
    { mode },
  );
  fs.chmodSync(pgpass, mode);
  return { url, pgpass };
}

function jobEnv(app: { url: string; pgpass: string }): Record<string, string> {
  return {
    DATABASE_URL: onDatabase(testEnv().ownerDatabaseUrl, dbName),
    EHR_APP_DATABASE_URL: app.url,
    EHR_APP_PGPASSFILE: app.pgpass,
    EHR_SECRETS_DIR: path.join(tmp, 'secrets'),
    EHR_KEK_DIR: path.join(tmp, 'keys'),
    EHR_TEMPORAL_DB_ROLE: temporalRole,
    EHR_TEMPORAL_DB_PASSWORD: temporalPassword,
  };
}

/** Logs in as pg does for the services: the URL without a password, PGPASSFILE supplying it. */
async function asService<T>(app: { url: string; pgpass: string }, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const previous = process.env.PGPASSFILE;
  process.env.PGPASSFILE = app.pgpass;
  const client = new pg.Client({ connectionString: app.url });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    if (previous === undefined) delete process.env.PGPASSFILE;
    else process.env.PGPASSFILE = previous;
    await client.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  owner = createPool(testEnv().ownerDatabaseUrl, 2);
  await owner.query(`CREATE DATABASE ${dbName}`);
});

afterAll(async () => {
  await owner.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  for (const role of [appRole, temporalRole]) await owner.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await owner.end();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the migration job', () => {
  const firstPassword = `synthetic-app:${randomBytes(8).toString('hex')}`;

  it('migrates as the owner and leaves the services a role that can only append to the audit trail', async () => {
    const app = appSide(firstPassword);
    const run = await runMigrate(jobEnv(app));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `migrate: [1-9]\\d* migration\\(s\\) applied; application role ${appRole} ready; ` +
          `Temporal role ${temporalRole} ready`,
      ),
    );
    for (const secret of [firstPassword, temporalPassword]) expect(run.stdout + run.stderr).not.toContain(secret);

    await asService(app, async (c) => {
      const me = await c.query<{ user: string; su: boolean; member: boolean }>(
        `SELECT current_user AS user, rolsuper AS su, pg_has_role(current_user, 'ehr_app', 'USAGE') AS member
           FROM pg_roles WHERE rolname = current_user`,
      );
      expect(me.rows[0]).toEqual({ user: appRole, su: false, member: true });
      // The only event so far: the secret roots the definer functions will check stored references against.
      expect((await c.query('SELECT action FROM audit_events')).rows).toEqual([{ action: 'secret_roots.configured' }]);
      const roots = await c.query<{ path: string; kind: string }>(
        'SELECT path, kind FROM secret_roots ORDER BY kind, path',
      );
      expect(roots.rows).toContainEqual({ path: path.join(tmp, 'secrets'), kind: 'root' });
      expect(roots.rows).toContainEqual({ path: path.join(tmp, 'keys'), kind: 'excluded' });
      expect(roots.rows).toContainEqual({ path: app.pgpass, kind: 'excluded' });
      await expect(c.query('DELETE FROM audit_events')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('ALTER TABLE audit_events DISABLE TRIGGER USER')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('CREATE ROLE mallory')).rejects.toMatchObject({ code: '42501' });
    });

    const temporal = await owner.query<{ su: boolean; createdb: boolean; createrole: boolean; member: boolean }>(
      `SELECT rolsuper AS su, rolcreatedb AS createdb, rolcreaterole AS createrole,
              pg_has_role(oid, 'ehr_app', 'MEMBER') AS member FROM pg_roles WHERE rolname = $1`,
      [temporalRole],
    );
    expect(temporal.rows[0]).toEqual({ su: false, createdb: true, createrole: false, member: false });
    const temporalUrl = new URL(onDatabase(testEnv().ownerDatabaseUrl, dbName));
    temporalUrl.username = temporalRole;
    temporalUrl.password = encodeURIComponent(temporalPassword);
    const asTemporal = new pg.Client({ connectionString: temporalUrl.toString() });
    asTemporal.on('error', () => undefined);
    await asTemporal.connect();
    try {
      expect((await asTemporal.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe(temporalRole);
      await expect(asTemporal.query('SELECT 1 FROM audit_events')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await asTemporal.end();
    }
  });

  it('is idempotent, and a changed pgpass password takes effect on the next run', async () => {
    const secondPassword = `synthetic-app-${randomBytes(8).toString('hex')}`;
    const app = appSide(secondPassword);
    const run = await runMigrate(jobEnv(app));
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('0 migration(s) applied');
    expect(
      await asService(app, async (c) => (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u),
    ).toBe(appRole);
    await expect(asService(appSide(firstPassword), async () => undefined)).rejects.toMatchObject({ code: '28P01' });
  });

  it('refuses a pgpass file others may read, and an unreachable database, saying which and without secrets', async () => {
    const open = appSide(`synthetic-app-${randomBytes(8).toString('hex')}`, 0o644);
    const refused = await runMigrate(jobEnv(open));
    expect(refused.code).toBe(78);
    expect(refused.stderr).toMatch(/EHR_APP_PGPASSFILE.*mode 0644; it must be 0600/);

    const app = appSide(firstPassword);
    const unreachable = await runMigrate({
      ...jobEnv(app),
      DATABASE_URL: 'postgresql://ehr:hunter2-synthetic@127.0.0.1:1/x',
    });
    expect(unreachable.code).toBe(69);
    expect(unreachable.stderr).toMatch(/postgres is not reachable at 127\.0\.0\.1:1/);
    expect(unreachable.stderr).not.toContain('hunter2-synthetic');
    expect(unreachable.stderr).not.toContain(firstPassword);
  });
});
