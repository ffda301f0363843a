/**
 * Audit rows are purged only as whole checkpointed segments, oldest first, past the audit retention and
 * outside every legal hold — and `audit verify` (verifyAuditTrail, with the anchor) still passes from the
 * oldest kept signed checkpoint. In a database of its own (the chain is global), as the application role:
 * it still cannot delete an audit row itself; the owner function does it for a whole segment only.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileAuditAnchor } from '../../lib/audit/anchor.js';
import { appendAuditEvents } from '../../lib/audit/chain.js';
import { writeCheckpoint } from '../../lib/audit/checkpoint.js';
import { verifyAuditTrail } from '../../lib/audit/verify.js';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { purgeOldestAuditSegment } from '../../lib/retention/audit-segments.js';
import { placeLegalHold, releaseLegalHold } from '../../lib/retention/holds.js';
import {
  DEFAULT_RETENTION_DAYS,
  auditRetentionDays,
  retentionDaysFor,
  setRetentionRule,
} from '../../lib/retention/rules.js';
import { createTenant } from '../../lib/store/tenants.js';
import { migrateUp } from '../../lib/store/migrate.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool, withTransaction } from '../../lib/store/pool.js';
import { ensureAppLoginRole } from '../../lib/store/roles.js';
import { onDatabase, testEnv, uniqueId } from '../harness.js';
import { testAuditEvent as event, testAuditSigner } from '../helpers.js';

let admin: Pool;
let app: Pool;
let dbName: string;
const role = `ehr_app_login_${randomBytes(4).toString('hex')}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-audit-'));
const ctx = { actor: 'test:retention', correlationId: 'corr-retention' };
const DAY = 24 * 3600 * 1000;

async function asClusterOwner(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: testEnv().ownerDatabaseUrl });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dbName = `retention_audit_${uniqueId('db').replace(/-/g, '_')}`;
  await asClusterOwner(`CREATE DATABASE ${dbName}`);
  const adminUrl = onDatabase(testEnv().ownerDatabaseUrl, dbName);
  await migrateUp(adminUrl);
  admin = createPool(adminUrl, 2);
  app = createPool(await ensureAppLoginRole(adminUrl, { role }), 3);
});

afterAll(async () => {
  await app?.end();
  await admin?.end();
  await asClusterOwner(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await asClusterOwner(`DROP ROLE IF EXISTS ${role}`);
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function append(n: number, occurredAt: Date, tenantId: string): Promise<void> {
  const events = Array.from({ length: n }, (_, i) => event(i, { occurredAt, tenantId }));
  await withTransaction(app, (c) => appendAuditEvents(c, events));
}

async function seqs(): Promise<number[]> {
  return (await app.query<{ seq: string }>('SELECT seq::text FROM audit_events ORDER BY audit_events.seq')).rows.map(
    (r) => Number(r.seq),
  );
}

describe('audit segments', () => {
  it('purges whole checkpointed segments oldest first, never under a hold; audit verify passes after', async () => {
    const anchor = new FileAuditAnchor(path.join(tmp, 'anchor.jsonl'));
    const signer = testAuditSigner();
    const now = Date.now();
    await append(5, new Date(now - 3700 * DAY), 'tenant-old');
    expect(await writeCheckpoint(app, signer, anchor)).toMatchObject({ checkpointSeq: 1, eventSeq: 5 });
    await append(5, new Date(now - 3300 * DAY), 'tenant-held');
    expect(await writeCheckpoint(app, signer, anchor)).toMatchObject({ checkpointSeq: 2, eventSeq: 10 });
    await append(3, new Date(now), 'tenant-old');
    expect(await writeCheckpoint(app, signer, anchor)).toMatchObject({ checkpointSeq: 3, eventSeq: 13 });
    await append(2, new Date(now), 'tenant-old');
    const hold = await placeLegalHold(app, { scope: 'tenant:tenant-held', reason: 'litigation (synthetic)' }, ctx);

    // Audit rows are kept at least as long as the longest rule: a tenant keeping billing records 4000 days
    // keeps the 3700-day-old segment too.
    await createTenant(app, { id: 'tenant-long', name: 'Long Retention Clinic' }, ctx);
    await setRetentionRule(app, { tenantId: 'tenant-long', kind: 'records:billing', days: 4000 }, ctx);
    expect(await auditRetentionDays(app)).toBe(4000);
    expect(await retentionDaysFor(app, 'tenant-long', 'audit')).toBe(4000);
    expect(await retentionDaysFor(app, 'tenant-long', 'exports')).toBe(30);
    const cutoffOf = async () => new Date(now - (await auditRetentionDays(app)) * DAY).toISOString();
    const kept = await purgeOldestAuditSegment(
      app,
      { runId: 'run-0', batchKey: 'audit/0', cutoff: await cutoffOf() },
      ctx,
    );
    expect(kept).toMatchObject({ rows: 0, stopped: 'none-due' });
    await setRetentionRule(app, { tenantId: 'tenant-long', kind: 'records:billing', days: 1000 }, ctx);
    // Now the longest rule is a default (2555 days).
    expect(await auditRetentionDays(app)).toBe(Math.max(...Object.values(DEFAULT_RETENTION_DAYS)));
    const cutoff = await cutoffOf();
    const run = { runId: 'run-1', cutoff };
    const first = await purgeOldestAuditSegment(app, { ...run, batchKey: 'audit/0' }, ctx);
    expect(first).toMatchObject({ rows: 5, purged: { checkpointSeq: 1, fromSeq: 1, throughSeq: 5, rows: 5 } });
    // The same batch again (a lost reply): it tells what it did and deletes nothing more.
    expect(await purgeOldestAuditSegment(app, { ...run, batchKey: 'audit/0' }, ctx)).toMatchObject({
      replayed: true,
      rows: 5,
    });
    // The next segment names a tenant under a legal hold: it stays.
    const held = await purgeOldestAuditSegment(app, { ...run, batchKey: 'audit/1' }, ctx);
    expect(held).toMatchObject({ rows: 0, stopped: 'held', heldBy: [hold.id] });
    expect((await seqs())[0]).toBe(6);

    const afterFirst = await verifyAuditTrail(app, { anchor, verificationKeys: await signer.verificationKeys() });
    expect(afterFirst).toMatchObject({ ok: true, purgedThroughSeq: 5, checkpointProblems: [] });
    expect(await verifyAuditChain(app)).toMatchObject({ ok: true });

    // The application role still cannot delete an audit row, nor purge anything but the oldest segment.
    await expect(app.query('DELETE FROM audit_events WHERE seq = 6')).rejects.toMatchObject({ code: '42501' });
    await expect(
      app.query('SELECT * FROM retention_purge_audit_segment(3, $1)', [new Date().toISOString()]),
    ).rejects.toMatchObject({ code: '23514' });

    await releaseLegalHold(app, { id: hold.id, reason: 'case closed (synthetic)' }, ctx);
    const run2 = { runId: 'run-2', cutoff };
    expect(await purgeOldestAuditSegment(app, { ...run2, batchKey: 'audit/0' }, ctx)).toMatchObject({
      rows: 5,
      purged: { checkpointSeq: 2, fromSeq: 6, throughSeq: 10 },
    });
    // Checkpoint 3's events are recent: nothing more is due.
    expect(await purgeOldestAuditSegment(app, { ...run2, batchKey: 'audit/1' }, ctx)).toMatchObject({
      rows: 0,
      stopped: 'none-due',
    });
    expect((await seqs())[0]).toBe(11);
    const purgeEvents = await app.query<{ details: { checkpointSeq: number; rows: number } }>(
      "SELECT details FROM audit_events WHERE action = 'retention.audit_segment_purged' ORDER BY seq",
    );
    expect(purgeEvents.rows.map((r) => [r.details.checkpointSeq, r.details.rows])).toEqual([
      [1, 5],
      [2, 5],
    ]);

    // The chain goes on: a new checkpoint, and verify passes from checkpoint 2.
    expect(await writeCheckpoint(app, signer, anchor)).toMatchObject({ checkpointSeq: 4 });
    const after = await verifyAuditTrail(app, { anchor, verificationKeys: await signer.verificationKeys() });
    expect(after).toMatchObject({ ok: true, purgedThroughSeq: 10, checkpointProblems: [] });

    // A purge boundary no signed checkpoint vouches for (written by the owner, by hand) fails verification.
    await admin.query(
      `INSERT INTO audit_purges (checkpoint_seq, purged_through_seq, through_hash, rows_purged) VALUES (3, 13, $1, 0)`,
      [randomBytes(32)],
    );
    const forged = await verifyAuditTrail(app, { anchor, verificationKeys: await signer.verificationKeys() });
    expect(forged.ok).toBe(false);
    expect(forged.checkpointProblems.map((p) => p.reason)).toContain(
      'audit events through seq 13 were purged, but no trusted signed checkpoint 3 ends there',
    );
    await admin.query('ALTER TABLE audit_purges DISABLE TRIGGER USER');
    try {
      await admin.query('DELETE FROM audit_purges WHERE checkpoint_seq = 3');
    } finally {
      await admin.query('ALTER TABLE audit_purges ENABLE TRIGGER USER');
    }

    // A row deleted inside the kept chain (the owner, triggers off) is still a break, named by its seq.
    await admin.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    try {
      await admin.query('DELETE FROM audit_events WHERE seq = 12');
    } finally {
      await admin.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
    }
    const broken = await verifyAuditTrail(app, { anchor, verificationKeys: await signer.verificationKeys() });
    expect(broken).toMatchObject({ ok: false, firstBrokenSeq: 12 });
  });
});
