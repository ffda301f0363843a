/**
 * 10,000 randomized tamper trials (fast-check) against the pure chain verifier that the database
 * verifier also uses (lib/audit/chain-verifier.ts), each detected with the right first bad sequence
 * number. The chain is in memory, so a trial costs microseconds; the same rules are exercised against
 * PostgreSQL in test/integration/audit-trail.test.ts.
 *
 * The model: a chain of n events (1..n) with trusted (signed, anchored) checkpoints every k events
 * (at k, 2k, ... <= n); the stored head is (n, hash n) unless the attacker moves it. What is "right":
 * - edit a field of event s (any column, hash not recomputed) ........................ s
 * - delete event s (rows after it keep their seq: a gap) .............................. s
 * - insert a forged event at s with a correctly recomputed hash, later events renumbered
 *   up by one (their stored hashes kept) ................................................ s
 * - swap the contents of events a < b ................................................. a
 * - truncate the tail after t, head moved back to t, t below the last checkpoint ...... t + 1
 * - rebuild the whole chain with recomputed hashes after editing event s (s covered by a
 *   checkpoint), head moved to the new end: the first event after the last checkpoint that still
 *   matches, floor((s - 1) / k) * k + 1 — hashes alone cannot say where inside that checkpoint
 *   interval the rewrite is, only that the interval is the first one that no longer matches.
 */
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import canonicalize from 'canonicalize';
import {
  AUDIT_GENESIS_HASH,
  auditHashWithDetails,
  canonicalJsonValue,
  computeAuditHash,
} from '../../lib/audit/chain.js';
import type { AnchoredHead, ChainHead, ChainRow } from '../../lib/audit/chain-verifier.js';
import { rowHash, verifyChainRows } from '../../lib/audit/chain-verifier.js';

const MAX_N = 60;

function hashRow(prev: Buffer, r: Omit<ChainRow, 'prevHash' | 'hash'>): Buffer {
  return rowHash(prev, r.seq, { ...r, prevHash: prev, hash: prev })!;
}

/** One clean chain; trials use prefixes of it (a prefix of a valid chain is a valid chain). */
const base: ChainRow[] = (() => {
  const rows: ChainRow[] = [];
  let prev = AUDIT_GENESIS_HASH;
  for (let seq = 1; seq <= MAX_N; seq++) {
    const r = {
      seq,
      occurredAt: new Date(Date.UTC(2024, 10, 1, 0, 0, seq)).toISOString(),
      actor: seq % 3 === 0 ? 'worker:sync' : 'user:alice',
      action: seq % 2 === 0 ? 'record.upserted' : 'vendor.call',
      outcome: seq % 5 === 0 ? 'failure' : 'success',
      tenantId: seq % 4 === 0 ? null : 'tenant-a',
      integrationId: seq % 4 === 0 ? null : 'int-1',
      correlationId: `corr-${seq}`,
      details: { i: seq, counts: { upserted: seq % 7 }, patient: `pseu-${seq % 11}` },
    };
    const hash = computeAuditHash(prev, r as Parameters<typeof computeAuditHash>[1]);
    rows.push({ ...r, prevHash: prev, hash });
    prev = hash;
  }
  return rows;
})();

interface Chain {
  rows: ChainRow[];
  checkpoints: AnchoredHead[];
  head: ChainHead;
  k: number;
}

function chain(n: number, k: number): Chain {
  const rows = base.slice(0, n).map((r) => ({ ...r }));
  const checkpoints: AnchoredHead[] = [];
  for (let s = k, cp = 1; s <= n; s += k, cp++)
    checkpoints.push({ checkpointSeq: cp, eventSeq: s, headHash: rows[s - 1]!.hash });
  return { rows, checkpoints, head: { seq: n, hash: rows[n - 1]!.hash }, k };
}

/** Recomputes prev_hash/hash from index `from` (0-based) to the end, as an attacker rebuilding the chain would. */
function rehash(rows: ChainRow[], from: number): void {
  let prev = from === 0 ? AUDIT_GENESIS_HASH : rows[from - 1]!.hash;
  for (let i = from; i < rows.length; i++) {
    const r = rows[i]!;
    r.prevHash = prev;
    r.hash = hashRow(prev, r);
    prev = r.hash;
  }
}

const FIELDS = [
  'actor',
  'action',
  'outcome',
  'tenantId',
  'integrationId',
  'correlationId',
  'details',
  'occurredAt',
  'prevHash',
  'hash',
] as const;

function edit(row: ChainRow, field: (typeof FIELDS)[number], salt: number): void {
  switch (field) {
    case 'outcome':
      row.outcome = row.outcome === 'success' ? 'failure' : 'success';
      break;
    case 'details':
      row.details = { ...row.details, i: (row.details?.i as number) + 1 + salt };
      break;
    case 'occurredAt':
      row.occurredAt = new Date(Date.parse(row.occurredAt!) + 1 + salt).toISOString();
      break;
    case 'prevHash':
    case 'hash':
      row[field] = randomBytes(32);
      break;
    case 'tenantId':
    case 'integrationId':
      row[field] = row[field] === null ? `x-${salt}` : null;
      break;
    case 'actor':
    case 'action':
    case 'correlationId':
      row[field] = `${row[field]}-x${salt}`;
  }
}

const chainArb = fc
  .integer({ min: 2, max: MAX_N })
  .chain((n) => fc.record({ n: fc.constant(n), k: fc.integer({ min: 1, max: Math.max(1, Math.floor(n / 2)) }) }));

const trials: Record<string, number> = {};
function count(kind: string): void {
  trials[kind] = (trials[kind] ?? 0) + 1;
}

afterAll(() => {
  const total = Object.values(trials).reduce((a, b) => a + b, 0);
  console.log(`[audit-tamper-property] ${total} tamper trials: ${JSON.stringify(trials)}`);
});

describe('the fast canonical form used for verification equals RFC 8785 (canonicalize)', () => {
  it('for any JSON value, and for whole audit records', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonicalJsonValue(v)).toBe(canonicalize(v));
      }),
      { numRuns: 2000 },
    );
    const text = fc.string({ unit: 'grapheme', maxLength: 20 });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          occurredAt: fc
            .date({ min: new Date(0), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
            .map((d) => d.toISOString()),
          actor: text,
          action: text,
          outcome: fc.constantFrom('success' as const, 'failure' as const),
          tenantId: fc.option(text, { nil: null }),
          integrationId: fc.option(text, { nil: null }),
          correlationId: text,
          details: fc.dictionary(text, fc.jsonValue()),
        }),
        (r) => {
          const prev = AUDIT_GENESIS_HASH;
          const viaLib = createHash('sha256').update(prev).update(canonicalize(r)!, 'utf8').digest();
          expect(auditHashWithDetails(prev, r, canonicalJsonValue(r.details))).toEqual(viaLib);
          expect(computeAuditHash(prev, r)).toEqual(viaLib);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('audit tamper detection: 10,000 randomized trials, each with the right first bad seq', () => {
  it('a clean chain (any length, any checkpoint interval) verifies', () => {
    fc.assert(
      fc.property(chainArb, ({ n, k }) => {
        const c = chain(n, k);
        expect(verifyChainRows(c.rows, c.checkpoints, c.head)).toEqual({ ok: true, eventsChecked: n, lastSeq: n });
      }),
      { numRuns: 200 },
    );
  });

  it('edit a field (1,700 trials): reported at the edited seq', () => {
    fc.assert(
      fc.property(chainArb, fc.nat(), fc.constantFrom(...FIELDS), fc.nat(1000), ({ n, k }, pick, field, salt) => {
        count('edit');
        const c = chain(n, k);
        const s = (pick % n) + 1;
        edit(c.rows[s - 1]!, field, salt);
        expect(verifyChainRows(c.rows, c.checkpoints, c.head)).toMatchObject({ ok: false, firstBrokenSeq: s });
      }),
      { numRuns: 1700 },
    );
  });

  it('delete a row (1,700 trials): reported at the missing seq', () => {
    fc.assert(
      fc.property(chainArb, fc.nat(), ({ n, k }, pick) => {
        count('delete');
        const c = chain(n, k);
        const s = (pick % n) + 1;
        c.rows.splice(s - 1, 1);
        expect(verifyChainRows(c.rows, c.checkpoints, c.head)).toMatchObject({ ok: false, firstBrokenSeq: s });
      }),
      { numRuns: 1700 },
    );
  });

  it('insert a forged row with a recomputed hash (1,650 trials): reported at the forged seq', () => {
    fc.assert(
      fc.property(
        chainArb,
        fc.nat(),
        fc.boolean(),
        fc.string({ minLength: 1, maxLength: 12 }),
        ({ n, k }, pick, moveHead, actor) => {
          count('insert');
          const c = chain(n, k);
          const s = (pick % n) + 1;
          const prev = s === 1 ? AUDIT_GENESIS_HASH : c.rows[s - 2]!.hash;
          const forged = { ...c.rows[s - 1]!, seq: s, actor: `forged:${actor}`, correlationId: `forged-${pick}` };
          forged.prevHash = prev;
          forged.hash = hashRow(prev, forged);
          for (const r of c.rows.slice(s - 1)) r.seq += 1; // the originals move up, hashes kept
          c.rows.splice(s - 1, 0, forged);
          const head = moveHead ? { seq: n + 1, hash: c.rows[n]!.hash } : c.head;
          expect(verifyChainRows(c.rows, c.checkpoints, head)).toMatchObject({ ok: false, firstBrokenSeq: s });
        },
      ),
      { numRuns: 1650 },
    );
  });

  it('swap two rows (1,650 trials): reported at the lower seq', () => {
    fc.assert(
      fc.property(chainArb, fc.nat(), fc.nat(), fc.boolean(), ({ n, k }, p1, p2, keepSeqHash) => {
        count('swap');
        const c = chain(n, k);
        let a = (p1 % n) + 1;
        let b = (p2 % n) + 1;
        if (a === b) b = a === n ? 1 : a + 1;
        if (a > b) [a, b] = [b, a];
        const ra = c.rows[a - 1]!;
        const rb = c.rows[b - 1]!;
        if (keepSeqHash) {
          // Physically reordered rows: each keeps everything but its seq.
          c.rows[a - 1] = { ...rb, seq: a };
          c.rows[b - 1] = { ...ra, seq: b };
        } else {
          // Only the payloads swapped; each row keeps its own prev_hash and hash.
          c.rows[a - 1] = { ...rb, seq: a, prevHash: ra.prevHash, hash: ra.hash };
          c.rows[b - 1] = { ...ra, seq: b, prevHash: rb.prevHash, hash: rb.hash };
        }
        expect(verifyChainRows(c.rows, c.checkpoints, c.head)).toMatchObject({ ok: false, firstBrokenSeq: a });
      }),
      { numRuns: 1650 },
    );
  });

  it('truncate the tail, head moved back too (1,650 trials): reported at the first missing seq', () => {
    fc.assert(
      fc.property(chainArb, fc.nat(), fc.boolean(), ({ n, k }, pick, moveHead) => {
        count('truncate');
        const c = chain(n, k);
        const lastCp = c.checkpoints[c.checkpoints.length - 1]!.eventSeq;
        const t = pick % lastCp; // 0..lastCp-1: a checkpoint covers more than what is left
        c.rows.length = t;
        const head = moveHead ? { seq: t, hash: t === 0 ? AUDIT_GENESIS_HASH : c.rows[t - 1]!.hash } : c.head;
        expect(verifyChainRows(c.rows, c.checkpoints, head)).toMatchObject({ ok: false, firstBrokenSeq: t + 1 });
      }),
      { numRuns: 1650 },
    );
  });

  it('rebuild the whole chain with recomputed hashes (1,650 trials): reported at the start of the first checkpoint interval that no longer matches', () => {
    fc.assert(
      fc.property(
        chainArb,
        fc.nat(),
        fc.constantFrom(...FIELDS.filter((f) => f !== 'prevHash' && f !== 'hash')),
        fc.nat(1000),
        ({ n, k }, pick, field, salt) => {
          count('rebuild');
          const c = chain(n, k);
          const lastCp = c.checkpoints[c.checkpoints.length - 1]!.eventSeq;
          const s = (pick % lastCp) + 1;
          edit(c.rows[s - 1]!, field, salt);
          rehash(c.rows, s - 1);
          const head = { seq: n, hash: c.rows[n - 1]!.hash };
          // Without checkpoints the rebuilt chain is self-consistent: that is why checkpoints exist.
          expect(verifyChainRows(c.rows, [], head).ok).toBe(true);
          const expected = Math.floor((s - 1) / k) * k + 1;
          expect(verifyChainRows(c.rows, c.checkpoints, head)).toMatchObject({ ok: false, firstBrokenSeq: expected });
        },
      ),
      { numRuns: 1650 },
    );
  });

  it('ran 10,000 tamper trials in all', () => {
    expect(Object.values(trials).reduce((a, b) => a + b, 0)).toBe(10_000);
  });
});
