/**
 * Reads audit rows from PostgreSQL in seq order, in batches, as the verifier's `ChainRow`s. The next
 * batch is requested before the current one is handed out, so hashing overlaps the database round
 * trip. Text casts keep this independent of any global pg type parsers.
 */
import type { PoolClient } from '../store/pool.js';
import type { ChainRow } from './chain-verifier.js';

/**
 * One batch comes back as ONE JSON text (an array of arrays), parsed natively: decoding ~11 text
 * fields per row in the pg driver costs more than hashing the row. Per row:
 * [seq, occurred_at (UTC), actor, action, outcome, tenant_id, integration_id, correlation_id, details,
 *  prev_hash hex, hash hex]. `details` is the stored jsonb, rendered exactly as details::text would.
 */
type DbAuditTuple = [
  number,
  string,
  string,
  string,
  string,
  string | null,
  string | null,
  string,
  unknown,
  string,
  string,
];

const SELECT_ROWS = `SELECT coalesce(json_agg(json_build_array(
         seq,
         occurred_at AT TIME ZONE 'UTC',
         actor, action, outcome, tenant_id, integration_id, correlation_id, details,
         encode(prev_hash, 'hex'), encode(hash, 'hex')) ORDER BY audit_events.seq), '[]')::text AS batch
  FROM audit_events
 WHERE audit_events.seq >= $1 AND audit_events.seq <= $2`;

/**
 * occurred_at arrives as a UTC timestamp in JSON's ISO 8601 form, whatever the session's DateStyle
 * or TimeZone ("2024-11-01T00:00:00.12": trailing fractional zeros dropped). Only whole milliseconds
 * are ever written, so more than three fractional digits means the row was edited (undefined: the
 * hash will not match).
 */
function occurredAtIso(text: string): string | undefined {
  if (text.length === 19) return `${text}.000Z`;
  if (text.length < 21 || text.length > 23 || text[19] !== '.') return undefined;
  return `${text.padEnd(23, '0')}Z`;
}

function asDetails(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function toChainRow(r: DbAuditTuple): ChainRow {
  return {
    seq: r[0],
    occurredAt: occurredAtIso(r[1]),
    actor: r[2],
    action: r[3],
    outcome: r[4],
    tenantId: r[5],
    integrationId: r[6],
    correlationId: r[7],
    details: asDetails(r[8]),
    prevHash: Buffer.from(r[9], 'hex'),
    hash: Buffer.from(r[10], 'hex'),
  };
}

/**
 * Batches of rows with fromSeq <= seq <= toSeq (default: the highest seq stored), ascending. Each
 * batch is a bounded seq window [from, from + batchSize), not `seq >= from LIMIT n`: with stale
 * statistics the planner turns the latter into a scan of the whole remaining table per batch.
 * Seqs are contiguous, so a window holds at most batchSize rows; a missing row just makes it shorter.
 */
export async function* readChainRows(
  client: PoolClient,
  opts: { fromSeq: number; toSeq?: number; batchSize: number },
): AsyncGenerator<ChainRow[]> {
  let last = opts.toSeq;
  if (last === undefined) {
    const max = await client.query<{ max: string | null }>('SELECT max(seq)::text AS max FROM audit_events');
    last = Number(max.rows[0]?.max ?? 0);
  }
  const end = last;
  const fetch = (from: number) =>
    client.query<{ batch: string }>(SELECT_ROWS, [String(from), String(Math.min(end, from + opts.batchSize - 1))]);
  if (opts.fromSeq > end) return;
  let from = opts.fromSeq;
  let next: ReturnType<typeof fetch> = fetch(from);
  let pending: ReturnType<typeof fetch> | undefined = next;
  try {
    for (;;) {
      const { rows } = await next;
      pending = undefined;
      const tuples = JSON.parse(rows[0]?.batch ?? '[]') as DbAuditTuple[];
      from += opts.batchSize;
      const more = from <= end;
      if (more) pending = next = fetch(from);
      yield tuples.map(toChainRow);
      if (!more) return;
    }
  } finally {
    // A consumer that stops early leaves the prefetch in flight: let it settle quietly.
    if (pending) await pending.catch(() => undefined);
  }
}
