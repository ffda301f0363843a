/**
 * Insert-only at the database role level, and fail-closed audit (DESIGN §4 invariant 6). Runs in a
 * database of its own (the global PostgreSQL cluster), connected as a LOGIN role made by
 * ensureAppLoginRole: a member of `ehr_app`, which may read and append to the audit tables but not
 * UPDATE, DELETE or TRUNCATE them — even while a superuser has the append-only triggers disabled.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileAuditAnchor } from '../../lib/audit/anchor.js';
import { appendAuditEvents, computeAuditHash } from '../../lib/audit/chain.js';
import { writeCheckpoint } from '../../lib/audit/checkpoint.js';
import { envelopeHeader } from '../../lib/crypto/envelope.js';
import { verifyAuditTrail } from '../../lib/audit/verify.js';
import { AuditWriteError, InvalidArgumentError } from '../../lib/errors/index.js';
import { migrateUp } from '../../lib/store/migrate.js';
import { createPool, withTransaction } from '../../lib/store/pool.js';
import { upsertRecords } from '../../lib/store/records.js';
import { ensureAppLoginRole } from '../../lib/store/roles.js';
import { createTenant, tenantExists } from '../../lib/store/tenants.js';
import { onDatabase, testEnv, uniqueId } from '../harness.js';
import { testAuditSigner as testSigner, testAuditEvent as event } from '../helpers.js';

let adminUrl: string;
let appUrl: string;
let admin: pg.Pool;
let app: pg.Pool;
let dbName: string;
const role = `ehr_app_login_${randomBytes(4).toString('hex')}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-roles-'));

const ctx = { actor: 'test:roles', correlationId: 'corr-roles' };

/** One statement as the cluster's owner, on the run's main database. */
async function asOwner(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: testEnv().ownerDatabaseUrl });
  c.on('error', () => undefined); // a broken connection also fails the statement below
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dbName = `audit_roles_${uniqueId('db').replace(/-/g, '_')}`;
  await asOwner(`CREATE DATABASE ${dbName}`);
  adminUrl = onDatabase(testEnv().ownerDatabaseUrl, dbName);
  await migrateUp(adminUrl);
  appUrl = await ensureAppLoginRole(adminUrl, { role });
  // createPool: broken idle connections (DROP DATABASE … WITH (FORCE) below) are dropped, not thrown.
  admin = createPool(adminUrl, 3);
  app = createPool(appUrl, 3);
});

afterAll(async () => {
  await app?.end();
  await admin?.end();
  await asOwner(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await asOwner(`DROP ROLE IF EXISTS ${role}`);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the application role', () => {
  it('is a non-superuser LOGIN member of ehr_app; ensureAppLoginRole is idempotent and keeps the password out of errors', async () => {
    const me = await app.query<{ user: string; su: string }>(
      "SELECT current_user AS user, current_setting('is_superuser') AS su",
    );
    expect(me.rows[0]).toEqual({ user: role, su: 'off' });
    const again = await ensureAppLoginRole(adminUrl, { role, password: 'second-password-for-test' });
    expect(new URL(again).username).toBe(role);
    const p = createPool(again, 1);
    expect((await p.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    await p.end();
    appUrl = await ensureAppLoginRole(adminUrl, { role }); // back to a random password
    await app.end();
    app = createPool(appUrl, 3);
    await expect(ensureAppLoginRole(adminUrl, { role: 'Bad-Name' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('appends audit events (the head moves through the trigger) and writes checkpoints', async () => {
    await withTransaction(app, (c) => appendAuditEvents(c, [event(1), event(2), event(3)]));
    const anchor = new FileAuditAnchor(path.join(tmp, 'anchor.jsonl'));
    const signer = testSigner();
    expect(await writeCheckpoint(app, signer, anchor)).toMatchObject({ checkpointSeq: 1, eventSeq: 3 });
    const result = await verifyAuditTrail(app, { anchor, verificationKeys: await signer.verificationKeys() });
    expect(result).toMatchObject({ ok: true, headSeq: 3, checkpoints: 1 });
  });

  it.each([
    ["UPDATE audit_events SET actor = 'mallory' WHERE seq = 1"],
    ['DELETE FROM audit_events WHERE seq = 3'],
    ['TRUNCATE audit_events'],
    ['UPDATE audit_head SET seq = 1'],
    ['DELETE FROM audit_head'],
    ["UPDATE audit_checkpoints SET jws = 'x'"],
    ['DELETE FROM audit_checkpoints'],
    ['TRUNCATE audit_checkpoints'],
    ['DELETE FROM audit_signing_keys'],
    ['TRUNCATE audit_signing_keys, audit_events CASCADE'],
    ['DELETE FROM pgmigrations'],
  ])('refuses %s with permission denied, even with the triggers disabled', async (sql) => {
    await admin.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await admin.query('ALTER TABLE audit_checkpoints DISABLE TRIGGER USER');
    try {
      await expect(app.query(sql)).rejects.toMatchObject({
        code: '42501',
        message: expect.stringMatching(/permission denied/),
      });
      await expect(app.query('ALTER TABLE audit_events DISABLE TRIGGER USER')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await admin.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
      await admin.query('ALTER TABLE audit_checkpoints ENABLE TRIGGER USER');
    }
  });

  it('cannot insert a row that does not extend the chain head (the database checks seq and prev_hash)', async () => {
    const head = (await app.query<{ seq: string; hash: Buffer }>('SELECT seq::text AS seq, hash FROM audit_head'))
      .rows[0]!;
    const seq = Number(head.seq);
    const rec = {
      seq: seq + 2,
      occurredAt: new Date().toISOString(),
      actor: 'm',
      action: 'a',
      outcome: 'success' as const,
      tenantId: null,
      integrationId: null,
      correlationId: 'c',
      details: {},
    };
    const insert = (s: number, prev: Buffer) =>
      app.query(
        `INSERT INTO audit_events (seq, occurred_at, actor, action, outcome, correlation_id, details, prev_hash, hash)
         VALUES ($1, $2, 'm', 'a', 'success', 'c', '{}', $3, $4)`,
        [s, rec.occurredAt, prev, computeAuditHash(prev, { ...rec, seq: s })],
      );
    await expect(insert(seq + 2, head.hash)).rejects.toMatchObject({ code: '23000' }); // a gap
    await expect(insert(seq + 1, randomBytes(32))).rejects.toMatchObject({ code: '23000' }); // a broken link
    expect((await app.query('SELECT seq::text AS seq FROM audit_head')).rows[0]).toEqual({ seq: String(seq) });
  });

  it('has full DML on the operational tables: a sync-style upsert into records works', async () => {
    const tenant = uniqueId('roles');
    await createTenant(app, { id: tenant, name: 'Roles Clinic' }, ctx);
    // Integrations are created by the owner here: the app role creates them only through register_integration.
    await admin.query(
      `INSERT INTO integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg,
         signing_kid, public_jwk, private_key_ref, resource_types)
       VALUES ($1, $2, 'sandbox', 'https://x.test/fhir', 'https://x.test/token', 'client', 'ES384', 'kid-1',
         '{}', 'file:k.pem', ARRAY['Observation'])`,
      [`${tenant}-i`, tenant],
    );
    const rec = (v: string) => ({
      resourceId: 'obs-1',
      versionId: v,
      lastUpdated: `2024-11-0${v}T00:00:00Z`,
      patientPseudonym: 'p1',
      keyVersion: 1,
      ciphertext: opaqueCiphertext(1, 40),
    });
    const scope = { tenantId: tenant, integrationId: `${tenant}-i`, resourceType: 'Observation' };
    const counts = await withTransaction(app, async (c) => {
      const first = await upsertRecords(c, scope, [rec('1')]);
      const second = await upsertRecords(c, scope, [rec('2')]);
      await appendAuditEvents(c, [
        event(10, { tenantId: tenant, action: 'sync.page', details: { ...first, second: second.updated } }),
      ]);
      return { first, second };
    });
    expect(counts).toEqual({
      first: { inserted: 1, updated: 0, unchanged: 0 },
      second: { inserted: 0, updated: 1, unchanged: 0 },
    });
    await app.query('DELETE FROM records WHERE tenant_id = $1', [tenant]);
  });
});

describe('fail closed: when the audit row cannot be written, the change it records does not happen', () => {
  it('INSERT revoked from the app role: createTenant fails with AuditWriteError and no tenant exists', async () => {
    await admin.query('REVOKE INSERT ON audit_events FROM ehr_app');
    const tenant = uniqueId('closed');
    try {
      await expect(createTenant(app, { id: tenant, name: 'Never' }, ctx)).rejects.toBeInstanceOf(AuditWriteError);
    } finally {
      await admin.query('GRANT INSERT ON audit_events TO ehr_app');
    }
    expect(await tenantExists(admin, tenant)).toBe(false);
    await createTenant(app, { id: tenant, name: 'Now' }, ctx);
    expect(await tenantExists(admin, tenant)).toBe(true);
  });

  it('details over the cap: the records upsert in the same transaction rolls back', async () => {
    const tenant = uniqueId('cap');
    await createTenant(app, { id: tenant, name: 'Cap Clinic' }, ctx);
    await admin.query(
      `INSERT INTO integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg,
         signing_kid, public_jwk, private_key_ref, resource_types)
       VALUES ($1, $2, 'sandbox', 'https://x.test/fhir', 'https://x.test/token', 'client', 'ES384', 'kid-1',
         '{}', 'file:k.pem', ARRAY['Observation'])`,
      [`${tenant}-i`, tenant],
    );
    const headBefore = (await app.query('SELECT seq::text AS seq FROM audit_head')).rows[0];
    await expect(
      withTransaction(app, async (c) => {
        await upsertRecords(c, { tenantId: tenant, integrationId: `${tenant}-i`, resourceType: 'Observation' }, [
          {
            resourceId: 'obs-1',
            versionId: '1',
            lastUpdated: '2024-11-01T00:00:00Z',
            patientPseudonym: null,
            keyVersion: 1,
            ciphertext: opaqueCiphertext(1, 16),
          },
        ]);
        await appendAuditEvents(c, [event(1, { tenantId: tenant, details: { blob: 'x'.repeat(9000) } })]);
      }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(
      (await admin.query('SELECT count(*)::int AS n FROM records WHERE tenant_id = $1', [tenant])).rows[0],
    ).toEqual({ n: 0 });
    expect((await app.query('SELECT seq::text AS seq FROM audit_head')).rows[0]).toEqual(headBefore);
  });

  it('the chain written by the app role verifies', async () => {
    const signer = testSigner();
    const anchor = new FileAuditAnchor(path.join(tmp, 'anchor2.jsonl'));
    // A second anchor for the same chain is refused: it does not hold checkpoint 1.
    await expect(writeCheckpoint(app, signer, anchor)).rejects.toThrow(/holds no checkpoints/);
    const result = await verifyAuditTrail(app, { anchorPath: path.join(tmp, 'anchor.jsonl') });
    expect(result).toMatchObject({ ok: true, keySource: 'anchor' });
  });
});

/** Random bytes behind a well-formed envelope header naming `keyVersion` (records must agree with it). */
function opaqueCiphertext(keyVersion: number, bodyBytes: number): Buffer {
  return Buffer.concat([envelopeHeader('roles-tenant', keyVersion), randomBytes(bodyBytes)]);
}
