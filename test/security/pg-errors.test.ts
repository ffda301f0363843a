/**
 * No database password in anything a pg error can carry to a log or a test report (DESIGN §4
 * invariant 11). pg-pool attaches the client — connection parameters, password included — to the
 * error of a broken idle connection, and with no listener that error crashes the process and is
 * dumped whole (vitest walks non-enumerable properties too). Here an idle connection is broken on
 * purpose, as a server restart or an operator's pg_terminate_backend would.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../lib/store/pool.js';
import { ensureAppLoginRole } from '../../lib/store/roles.js';
import { testEnv } from '../harness.js';
import { errorSerialisation } from '../helpers.js';

const role = `ehr_pg_errors_${randomBytes(4).toString('hex')}`;
const password = `synthetic-pw-${randomBytes(12).toString('hex')}`;
let url: string;
let owner: pg.Pool;

beforeAll(async () => {
  owner = createPool(testEnv().ownerDatabaseUrl, 2);
  url = await ensureAppLoginRole(testEnv().ownerDatabaseUrl, { role, password });
});

afterAll(async () => {
  await owner.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await owner.end();
});

function expectNoSecret(err: unknown): void {
  const text = errorSerialisation(err);
  expect(text.length).toBeGreaterThan(0);
  expect(text.includes(password), 'the password').toBe(false);
  expect(text.includes(encodeURIComponent(password)), 'the password, URL-encoded').toBe(false);
  expect(text.includes(url), 'the connection string').toBe(false);
}

describe('pg errors keep the password to themselves', () => {
  it('a broken idle connection neither crashes the process nor hands over the client', async () => {
    const errors: Error[] = [];
    const pool = createPool(url, 1, { onIdleError: (err) => errors.push(err) });
    try {
      await pool.query('SELECT 1'); // the one connection is idle in the pool now
      const killed = await owner.query<{ ok: boolean }>(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE usename = $1',
        [role],
      );
      expect(killed.rows.map((r) => r.ok)).toEqual([true]);
      await expect.poll(() => errors.length, { timeout: 10_000 }).toBe(1);
      expect(errors[0]).toMatchObject({ code: '57P01' }); // admin_shutdown: the server's report survives
      expectNoSecret(errors[0]);
      expect('client' in errors[0]!).toBe(false);
      // The pool replaced the connection.
      expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('the check itself sees a password hidden in a non-enumerable property', () => {
    const err = new Error('connection terminated');
    const params = {};
    Object.defineProperty(params, 'password', { enumerable: false, value: password });
    Object.assign(err, { client: { connectionParameters: params } });
    expect(JSON.stringify(err)).not.toContain(password);
    expect(errorSerialisation(err)).toContain(password);
  });

  it('ensureAppLoginRole reports a failed statement by code only: neither URL nor password', async () => {
    // The application role may not create roles: the statement that carries the new password fails.
    const err = await ensureAppLoginRole(testEnv().databaseUrl, { role: `${role}_x`, password }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/could not ensure the login role .*database error 42501/);
    expectNoSecret(err);
    expect(errorSerialisation(err)).not.toContain(new URL(testEnv().databaseUrl).password);
  });
});
