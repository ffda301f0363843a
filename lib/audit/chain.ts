/**
 * Append-only, hash-chained audit trail (DESIGN §4 invariant 6).
 *
 * Each event's hash is SHA-256(prev_hash || canonical JSON of the event), where the canonical JSON
 * (RFC 8785) covers seq, occurredAt (ISO 8601 with milliseconds), actor, action, outcome, tenantId,
 * integrationId, correlationId and details (hash.ts). Sequence numbers come from `audit_head` under a row lock,
 * so they are gap-free and a deleted row shows as a missing number. The application role cannot
 * UPDATE `audit_head`: it locks the head through `audit_lock_head()` (SECURITY DEFINER) and the
 * head advances only through the INSERT trigger, which refuses rows that do not extend it
 * (migrations/1732700001000_audit-checkpoints.sql).
 *
 * `appendAuditEvents` runs inside the caller's transaction so the audit rows commit (or roll back)
 * with the change they record. `recordAuditEvent` is for events with no other change attached.
 * No PHI in audit rows: callers pass identifiers, counts, codes and pseudonyms only.
 */
import canonicalize from 'canonicalize';
import { AuditWriteError, EhrError, InvalidArgumentError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { auditHashWithDetails } from './hash.js';

// Callers import the hash from here, as before it got a file of its own.
export {
  AUDIT_GENESIS_HASH,
  auditHashWithDetails,
  canonicalJsonValue,
  computeAuditHash,
  type CanonicalAuditRecord,
} from './hash.js';

export type AuditOutcome = 'success' | 'failure';

export interface AuditEvent {
  actor: string;
  action: string;
  outcome: AuditOutcome;
  tenantId?: string | null;
  integrationId?: string | null;
  correlationId: string;
  details: Record<string, unknown>;
  occurredAt?: Date;
}

/** Who asked for an operation, and the correlation id that ties its audit events together. */
export interface AuditContext {
  actor: string;
  correlationId: string;
}

export const MAX_AUDIT_DETAILS_BYTES = 8 * 1024;
const MAX_TEXT_FIELD = 500;

interface PreparedEvent {
  occurredAt: Date;
  actor: string;
  action: string;
  outcome: AuditOutcome;
  tenantId: string | null;
  integrationId: string | null;
  correlationId: string;
  detailsJson: string;
  details: Record<string, unknown>;
}

function requireText(field: string, value: unknown, optional: boolean): string | null {
  if (value === undefined || value === null) {
    if (optional) return null;
    throw new InvalidArgumentError(`audit event ${field}`, 'is required');
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT_FIELD) {
    throw new InvalidArgumentError(
      `audit event ${field}`,
      `must be a non-empty string of at most ${MAX_TEXT_FIELD} characters`,
    );
  }
  return value;
}

function prepare(event: AuditEvent): PreparedEvent {
  const actor = requireText('actor', event.actor, false)!;
  const action = requireText('action', event.action, false)!;
  const correlationId = requireText('correlationId', event.correlationId, false)!;
  const tenantId = requireText('tenantId', event.tenantId, true);
  const integrationId = requireText('integrationId', event.integrationId, true);
  if (event.outcome !== 'success' && event.outcome !== 'failure') {
    throw new InvalidArgumentError('audit event outcome', "must be 'success' or 'failure'");
  }
  const details = event.details;
  if (typeof details !== 'object' || details === null || Array.isArray(details)) {
    throw new InvalidArgumentError('audit event details', 'must be a JSON object');
  }
  let detailsJson: string | undefined;
  try {
    detailsJson = canonicalize(details);
  } catch {
    detailsJson = undefined;
  }
  if (detailsJson === undefined) throw new InvalidArgumentError('audit event details', 'must be JSON-serialisable');
  if (Buffer.byteLength(detailsJson, 'utf8') > MAX_AUDIT_DETAILS_BYTES) {
    throw new InvalidArgumentError('audit event details', `exceed ${MAX_AUDIT_DETAILS_BYTES} bytes`);
  }
  const occurredAt = event.occurredAt ?? new Date();
  const year = occurredAt instanceof Date ? occurredAt.getUTCFullYear() : NaN;
  if (!(year >= 1970 && year <= 9999)) {
    throw new InvalidArgumentError('audit event occurredAt', 'must be a valid date between 1970 and 9999');
  }
  return {
    occurredAt,
    actor,
    action,
    outcome: event.outcome,
    tenantId,
    integrationId,
    correlationId,
    detailsJson,
    // Hash what the database will hand back: the canonical JSON, parsed again.
    details: JSON.parse(detailsJson) as Record<string, unknown>,
  };
}

/** A pg error message can quote values; only its SQLSTATE code is safe to carry on. */
function safeReason(err: unknown): string {
  if (err instanceof EhrError) return err.message;
  const code =
    typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
  return code ? `database error ${code}` : 'database error';
}

/**
 * Appends events to the chain inside the caller's transaction (the caller must have run BEGIN on
 * `client`). Locks the head row until the transaction ends, so concurrent writers serialise and seqs
 * stay contiguous. All rows go in one INSERT statement. Works for the migration (owner) role and
 * the insert-only application role `ehr_app` alike.
 */
export async function appendAuditEvents(client: PoolClient, events: AuditEvent[]): Promise<{ lastSeq: number }> {
  const prepared = events.map(prepare);
  const firstAction = events[0]?.action ?? 'audit.append';
  try {
    if (prepared.length === 0) {
      const head = await client.query<{ seq: string }>('SELECT seq::text AS seq FROM audit_head');
      return { lastSeq: Number(head.rows[0]?.seq ?? 0) };
    }
    const head = await client.query<{ seq: string; hash: Buffer }>(
      'SELECT seq::text AS seq, hash FROM audit_lock_head()',
    );
    const headRow = head.rows[0];
    if (!headRow) throw new AuditWriteError(firstAction, 'audit head row is missing');

    let seq = Number(headRow.seq);
    let prevHash = headRow.hash;
    const cols = {
      seq: [] as string[],
      occurredAt: [] as string[],
      actor: [] as string[],
      action: [] as string[],
      outcome: [] as string[],
      tenantId: [] as (string | null)[],
      integrationId: [] as (string | null)[],
      correlationId: [] as string[],
      details: [] as string[],
      prevHash: [] as Buffer[],
      hash: [] as Buffer[],
    };
    for (const e of prepared) {
      seq += 1;
      const occurredAt = e.occurredAt.toISOString();
      const hash = auditHashWithDetails(
        prevHash,
        {
          seq,
          occurredAt,
          actor: e.actor,
          action: e.action,
          outcome: e.outcome,
          tenantId: e.tenantId,
          integrationId: e.integrationId,
          correlationId: e.correlationId,
          details: e.details,
        },
        e.detailsJson,
      );
      cols.seq.push(String(seq));
      cols.occurredAt.push(occurredAt);
      cols.actor.push(e.actor);
      cols.action.push(e.action);
      cols.outcome.push(e.outcome);
      cols.tenantId.push(e.tenantId);
      cols.integrationId.push(e.integrationId);
      cols.correlationId.push(e.correlationId);
      cols.details.push(e.detailsJson);
      cols.prevHash.push(prevHash);
      cols.hash.push(hash);
      prevHash = hash;
    }
    await client.query(
      `INSERT INTO audit_events
         (seq, occurred_at, actor, action, outcome, tenant_id, integration_id, correlation_id, details, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                            $7::text[], $8::text[], $9::jsonb[], $10::bytea[], $11::bytea[])`,
      [
        cols.seq,
        cols.occurredAt,
        cols.actor,
        cols.action,
        cols.outcome,
        cols.tenantId,
        cols.integrationId,
        cols.correlationId,
        cols.details,
        cols.prevHash,
        cols.hash,
      ],
    );
    // audit_head advances in the INSERT trigger, which checks that these rows extend it.
    return { lastSeq: seq };
  } catch (err) {
    if (err instanceof AuditWriteError) throw err;
    throw new AuditWriteError(firstAction, safeReason(err));
  }
}

/**
 * Records one event in its own transaction, for events not tied to another change (a vendor call,
 * a key unwrap). Fails closed: any failure is rethrown as AuditWriteError, and the caller must not
 * go on with the operation the event records.
 */
export async function recordAuditEvent(pool: Pool, event: AuditEvent): Promise<{ seq: number }> {
  try {
    const { lastSeq } = await withTransaction(pool, (client) => appendAuditEvents(client, [event]));
    return { seq: lastSeq };
  } catch (err) {
    if (err instanceof AuditWriteError) throw err;
    const action = typeof event?.action === 'string' && event.action.length > 0 ? event.action : 'unknown';
    throw new AuditWriteError(action, safeReason(err));
  }
}
