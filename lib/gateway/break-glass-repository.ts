/**
 * SQL of break-glass grants (table break_glass_grants, migrations/1733400040000_break-glass.sql). The application
 * role may insert grants and set their revocation, alert and review columns; it cannot delete a grant or change
 * what was granted.
 */
import type { Queryable } from '../store/pool.js';

export type ReviewVerdict = 'appropriate' | 'inappropriate';

/** One grant as stored: identifiers, codes, times, and the requester's and reviewer's own words. */
export interface BreakGlassRecord {
  id: string;
  consumerId: string;
  /** Canonical scope strings (lib/gateway/scopes.ts). */
  scopes: string[];
  reasonCode: string;
  reason: string;
  requestedBy: string;
  grantedAt: Date;
  expiresAt: Date;
  reviewWorkflowId: string;
  revokedAt: Date | null;
  revokedBy: string | null;
  revokeReason: string | null;
  remindedAt: Date | null;
  escalatedAt: Date | null;
  reviewedAt: Date | null;
  reviewedBy: string | null;
  reviewVerdict: ReviewVerdict | null;
  reviewNote: string | null;
}

interface Row {
  id: string;
  consumer_id: string;
  scopes: string[];
  reason_code: string;
  reason: string;
  requested_by: string;
  granted_at: Date;
  expires_at: Date;
  review_workflow_id: string;
  revoked_at: Date | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  reminded_at: Date | null;
  escalated_at: Date | null;
  reviewed_at: Date | null;
  reviewed_by: string | null;
  review_verdict: ReviewVerdict | null;
  review_note: string | null;
}

function fromRow(r: Row): BreakGlassRecord {
  return {
    id: r.id,
    consumerId: r.consumer_id,
    scopes: r.scopes,
    reasonCode: r.reason_code,
    reason: r.reason,
    requestedBy: r.requested_by,
    grantedAt: r.granted_at,
    expiresAt: r.expires_at,
    reviewWorkflowId: r.review_workflow_id,
    revokedAt: r.revoked_at,
    revokedBy: r.revoked_by,
    revokeReason: r.revoke_reason,
    remindedAt: r.reminded_at,
    escalatedAt: r.escalated_at,
    reviewedAt: r.reviewed_at,
    reviewedBy: r.reviewed_by,
    reviewVerdict: r.review_verdict,
    reviewNote: r.review_note,
  };
}

export type NewGrantRow = Pick<
  BreakGlassRecord,
  'id' | 'consumerId' | 'scopes' | 'reasonCode' | 'reason' | 'requestedBy' | 'grantedAt' | 'expiresAt'
> & { reviewWorkflowId: string };

export async function insertGrant(db: Queryable, g: NewGrantRow): Promise<BreakGlassRecord> {
  const { rows } = await db.query<Row>(
    `INSERT INTO break_glass_grants (id, consumer_id, scopes, reason_code, reason, requested_by, granted_at, expires_at,
                                     review_workflow_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
    [g.id, g.consumerId, g.scopes, g.reasonCode, g.reason, g.requestedBy, g.grantedAt, g.expiresAt, g.reviewWorkflowId],
  );
  return fromRow(rows[0]!);
}

/** The consumer's grants in force at `now`: granted, not yet expired, not revoked. */
export async function selectActiveGrants(db: Queryable, consumerId: string, now: Date): Promise<BreakGlassRecord[]> {
  const { rows } = await db.query<Row>(
    `SELECT * FROM break_glass_grants
      WHERE consumer_id = $1 AND revoked_at IS NULL AND granted_at <= $2 AND expires_at > $2
      ORDER BY granted_at, id`,
    [consumerId, now],
  );
  return rows.map(fromRow);
}

export async function selectGrant(
  db: Queryable,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<BreakGlassRecord | undefined> {
  const lock = options.forUpdate ? ' FOR UPDATE' : '';
  const { rows } = await db.query<Row>(`SELECT * FROM break_glass_grants WHERE id = $1${lock}`, [id]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Newest first; `pending`: only those nobody has reviewed yet. */
export async function selectGrants(
  db: Queryable,
  options: { pending?: boolean; limit?: number } = {},
): Promise<BreakGlassRecord[]> {
  const where = options.pending ? 'WHERE reviewed_at IS NULL' : '';
  const { rows } = await db.query<Row>(
    `SELECT * FROM break_glass_grants ${where} ORDER BY granted_at DESC, id LIMIT $1`,
    [options.limit ?? 1000],
  );
  return rows.map(fromRow);
}

/** Revokes a grant not revoked before; undefined when it already was. */
export async function setRevoked(
  db: Queryable,
  id: string,
  by: string,
  reason: string,
  at: Date,
): Promise<BreakGlassRecord | undefined> {
  const { rows } = await db.query<Row>(
    `UPDATE break_glass_grants SET revoked_at = $2, revoked_by = $3, revoke_reason = $4
      WHERE id = $1 AND revoked_at IS NULL RETURNING *`,
    [id, at, by, reason],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Records when the reminder or the escalation went out; undefined when it had been recorded already. */
export async function setAlerted(
  db: Queryable,
  id: string,
  column: 'reminded_at' | 'escalated_at',
  at: Date,
): Promise<BreakGlassRecord | undefined> {
  const sets = {
    reminded_at: 'UPDATE break_glass_grants SET reminded_at = $2 WHERE id = $1 AND reminded_at IS NULL RETURNING *',
    escalated_at: 'UPDATE break_glass_grants SET escalated_at = $2 WHERE id = $1 AND escalated_at IS NULL RETURNING *',
  } as const;
  const { rows } = await db.query<Row>(sets[column], [id, at]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Records the review of a grant nobody has reviewed; undefined when it has been reviewed already. */
export async function setReviewed(
  db: Queryable,
  id: string,
  review: { by: string; verdict: ReviewVerdict; note: string; at: Date },
): Promise<BreakGlassRecord | undefined> {
  const { rows } = await db.query<Row>(
    `UPDATE break_glass_grants SET reviewed_at = $2, reviewed_by = $3, review_verdict = $4, review_note = $5
      WHERE id = $1 AND reviewed_at IS NULL RETURNING *`,
    [id, review.at, review.by, review.verdict, review.note],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}
