/**
 * Break-glass (issue 12 item 4): a consumer gets, for a few minutes and for a reason from a fixed list, scopes
 * beyond its own. Each grant is recorded and audited in one transaction, raises an alert at once and is reviewed
 * afterwards by a second person (workflows/break-glass-review.ts). The gateway asks `activeGrantsFor` on every
 * request; an expired or revoked grant is never returned.
 *
 * What lands in the audit trail and in alerts: ids, codes, scope strings and times. The requester's reason and the
 * reviewer's note are kept in the grant's row only (printable ASCII: no patient data belongs there).
 */
import { randomBytes } from 'node:crypto';
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { BreakGlassGrant } from './access.js';
import type { BreakGlassRecord, ReviewVerdict } from './break-glass-repository.js';
import {
  insertGrant,
  selectActiveGrants,
  selectGrant,
  selectGrants,
  setAlerted,
  setReviewed,
  setRevoked,
} from './break-glass-repository.js';
import { readConsumer } from './consumers-repository.js';
import { formatScope, parseScope, parseScopes } from './scopes.js';

export type { BreakGlassRecord, ReviewVerdict } from './break-glass-repository.js';

/** Why someone may break the glass. The list is fixed (the database checks it too); README documents it. */
export const BREAK_GLASS_REASON_CODES = {
  'emergency-care': 'a patient needs emergency care and the data is needed now',
  'patient-safety': 'an urgent patient-safety issue (adverse event, medication error, recall)',
  'care-continuity': 'an unplanned transfer or handover that the usual access does not cover',
  'system-outage': "the consumer's usual path to the data is down",
  'legal-obligation': 'a disclosure the organisation must make now (court order, public-health report)',
} as const;
export type BreakGlassReasonCode = keyof typeof BREAK_GLASS_REASON_CODES;
export const REVIEW_VERDICTS: readonly ReviewVerdict[] = ['appropriate', 'inappropriate'];

/** No grant lasts longer than this, whatever EHR_BREAK_GLASS_MAX_MINUTES says (the database checks it too). */
export const BREAK_GLASS_HARD_MAX_MINUTES = 24 * 60;
/** Free text (reason, note): printable ASCII, so nothing PHI-shaped or binary; the people's own words. */
export const BREAK_GLASS_TEXT = /^[\x20-\x7e]{1,500}$/;
export const BREAK_GLASS_ACTOR = /^[A-Za-z0-9@._:+-]{1,128}$/;
const CONSUMER_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const GRANT_ID = /^bg-[a-z0-9-]{1,60}$/;
/** The revocation reason of a grant an inappropriate review ended. */
export const REVOKED_BY_REVIEW = 'reviewed as inappropriate';

export function breakGlassWorkflowId(grantId: string): string {
  return `break-glass/${grantId}`;
}

export function isBreakGlassReasonCode(value: string): value is BreakGlassReasonCode {
  return Object.prototype.hasOwnProperty.call(BREAK_GLASS_REASON_CODES, value);
}

export function checkGrantId(id: string): string {
  if (!GRANT_ID.test(id)) throw new InvalidArgumentError('grant id', 'expected bg-<letters, digits, dashes>');
  return id;
}

export interface BreakGlassRequest {
  consumerId: string;
  /** Space-separated SMART v2 scopes, e.g. `system/Observation.rs system/Condition.rs`. */
  scope: string;
  reasonCode: string;
  reason: string;
  minutes: number;
  requestedBy: string;
}

/** Checks a request and returns it with parsed scopes; `maxMinutes` is EHR_BREAK_GLASS_MAX_MINUTES. */
export function checkBreakGlassRequest(req: BreakGlassRequest, maxMinutes: number) {
  if (!CONSUMER_ID.test(req.consumerId)) throw new InvalidArgumentError('--consumer', 'expected a consumer id');
  const scopes = parseScopes(req.scope, '--scope');
  if (!isBreakGlassReasonCode(req.reasonCode))
    throw new InvalidArgumentError('--reason-code', `one of ${Object.keys(BREAK_GLASS_REASON_CODES).join(', ')}`);
  if (!BREAK_GLASS_TEXT.test(req.reason))
    throw new InvalidArgumentError('--reason', '1-500 printable ASCII characters (no patient data)');
  const cap = Math.min(maxMinutes, BREAK_GLASS_HARD_MAX_MINUTES);
  if (!Number.isInteger(req.minutes) || req.minutes < 1 || req.minutes > cap)
    throw new InvalidArgumentError('--minutes', `a whole number of minutes from 1 to ${cap}`);
  if (!BREAK_GLASS_ACTOR.test(req.requestedBy))
    throw new InvalidArgumentError('--requested-by', 'expected an identity (letters, digits, @._:+-)');
  return { ...req, reasonCode: req.reasonCode, scopes };
}

export function newGrantId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase();
  return `bg-${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * Records a grant and its audit event in one transaction. The review workflow is started by the caller
 * (client/break-glass-client.ts) right after; until then the grant is in force but unreviewed.
 */
export async function recordBreakGlassGrant(
  pool: Pool,
  req: BreakGlassRequest,
  opts: { maxMinutes: number; audit: AuditContext; now?: Date; id?: string },
): Promise<BreakGlassRecord> {
  const checked = checkBreakGlassRequest(req, opts.maxMinutes);
  const grantedAt = opts.now ?? new Date();
  const id = opts.id === undefined ? newGrantId(grantedAt) : checkGrantId(opts.id);
  const expiresAt = new Date(grantedAt.getTime() + checked.minutes * 60_000);
  const scopes = checked.scopes.map(formatScope);
  return withTransaction(pool, async (client) => {
    if (await selectGrant(client, id)) throw new ConflictError('break-glass grant', id);
    // Only a registered consumer can be granted anything; its tenant goes on the audit event.
    const consumer = await readConsumer(client, checked.consumerId);
    if (!consumer) throw new NotFoundError('gateway consumer', checked.consumerId);
    const grant = await insertGrant(client, {
      id,
      consumerId: checked.consumerId,
      scopes,
      reasonCode: checked.reasonCode,
      reason: checked.reason,
      requestedBy: checked.requestedBy,
      grantedAt,
      expiresAt,
      reviewWorkflowId: breakGlassWorkflowId(id),
    });
    await appendAuditEvents(client, [
      {
        ...opts.audit,
        action: 'break_glass.granted',
        outcome: 'success',
        tenantId: consumer.tenantId,
        details: {
          grantId: id,
          consumerId: grant.consumerId,
          scopes,
          reasonCode: grant.reasonCode,
          minutes: checked.minutes,
          expiresAt: expiresAt.toISOString(),
          requestedBy: grant.requestedBy,
          reviewWorkflowId: grant.reviewWorkflowId,
        },
      },
    ]);
    return grant;
  });
}

/** The grant as the gateway sees it. */
export function toBreakGlassGrant(r: BreakGlassRecord): BreakGlassGrant {
  return {
    id: r.id,
    consumerId: r.consumerId,
    scopes: r.scopes.map((s) => parseScope(s)),
    reasonCode: r.reasonCode,
    expiresAt: r.expiresAt,
  };
}

/** The consumer's grants in force at `now` (default: this moment); never an expired or revoked one. */
export async function activeGrantsFor(
  db: Queryable,
  consumerId: string,
  now: Date = new Date(),
): Promise<BreakGlassGrant[]> {
  return (await selectActiveGrants(db, consumerId, now)).map(toBreakGlassGrant);
}

export async function getBreakGlassGrant(db: Queryable, id: string): Promise<BreakGlassRecord> {
  const grant = await selectGrant(db, checkGrantId(id));
  if (!grant) throw new NotFoundError('break-glass grant', id);
  return grant;
}

export function listBreakGlassGrants(db: Queryable, options: { pending?: boolean } = {}): Promise<BreakGlassRecord[]> {
  return selectGrants(db, options);
}

/** Ends a grant now (audited); a grant revoked before is left as it was (ConflictError). */
export async function revokeBreakGlassGrant(
  pool: Pool,
  id: string,
  opts: { by: string; reason: string; audit: AuditContext; now?: Date },
): Promise<BreakGlassRecord> {
  if (!BREAK_GLASS_ACTOR.test(opts.by)) throw new InvalidArgumentError('--as', 'expected an identity');
  if (!BREAK_GLASS_TEXT.test(opts.reason)) throw new InvalidArgumentError('--reason', '1-500 printable ASCII');
  return withTransaction(pool, async (client) => {
    const before = await getBreakGlassGrant(client, id);
    const revoked = await setRevoked(client, before.id, opts.by, opts.reason, opts.now ?? new Date());
    if (!revoked) throw new ConflictError('break-glass grant', id, `was already revoked by ${before.revokedBy}`);
    await appendAuditEvents(client, [
      {
        ...opts.audit,
        action: 'break_glass.revoked',
        outcome: 'success',
        details: {
          grantId: id,
          consumerId: revoked.consumerId,
          revokedBy: opts.by,
          early: revoked.expiresAt > new Date(),
        },
      },
    ]);
    return revoked;
  });
}

export interface BreakGlassReview {
  by: string;
  verdict: ReviewVerdict;
  note: string;
}

/**
 * Records the review (four eyes: never by the requester) and its audit event in one transaction. An inappropriate
 * verdict on a grant still in force revokes it at once. Repeating the same review (an activity retried after its
 * commit) returns the recorded one; a different second review is a ConflictError.
 */
export async function recordBreakGlassReview(
  pool: Pool,
  grantId: string,
  review: BreakGlassReview,
  audit: AuditContext,
  now: Date = new Date(),
): Promise<BreakGlassRecord> {
  if (!BREAK_GLASS_ACTOR.test(review.by)) throw new InvalidArgumentError('--reviewer', 'expected an identity');
  if (!REVIEW_VERDICTS.includes(review.verdict))
    throw new InvalidArgumentError('verdict', REVIEW_VERDICTS.join(' or '));
  if (!BREAK_GLASS_TEXT.test(review.note)) throw new InvalidArgumentError('--note', '1-500 printable ASCII characters');
  return withTransaction(pool, async (client) => {
    const grant = await selectGrant(client, checkGrantId(grantId), { forUpdate: true });
    if (!grant) throw new NotFoundError('break-glass grant', grantId);
    if (grant.reviewedBy !== null) {
      if (grant.reviewedBy === review.by && grant.reviewVerdict === review.verdict) return grant;
      throw new ConflictError('break-glass grant', grantId, `was already reviewed by ${grant.reviewedBy}`);
    }
    if (grant.requestedBy === review.by)
      throw new InvalidArgumentError('--reviewer', 'the requester cannot review their own break-glass (four eyes)');
    let reviewed = (await setReviewed(client, grant.id, { ...review, at: now }))!;
    const details = {
      grantId,
      consumerId: grant.consumerId,
      verdict: review.verdict,
      reviewedBy: review.by,
      requestedBy: grant.requestedBy,
      reasonCode: grant.reasonCode,
      via: audit.actor,
    };
    const event = { actor: review.by, correlationId: audit.correlationId, outcome: 'success' as const };
    const events: AuditEvent[] = [{ ...event, action: 'break_glass.reviewed', details }];
    if (review.verdict === 'inappropriate' && grant.revokedAt === null && grant.expiresAt > now) {
      reviewed = (await setRevoked(client, grant.id, review.by, REVOKED_BY_REVIEW, now))!;
      events.push({ ...event, action: 'break_glass.revoked', details: { ...details, early: true } });
    }
    await appendAuditEvents(client, events);
    return reviewed;
  });
}

/** Records that the reminder or escalation went out (audited once); false when it had been recorded before. */
export async function recordBreakGlassAlert(
  pool: Pool,
  grantId: string,
  kind: 'reminder' | 'escalation',
  audit: AuditContext,
  now: Date = new Date(),
): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    const grant = await setAlerted(client, grantId, kind === 'reminder' ? 'reminded_at' : 'escalated_at', now);
    if (!grant) return false;
    await appendAuditEvents(client, [
      {
        ...audit,
        action: kind === 'reminder' ? 'break_glass.review_reminded' : 'break_glass.review_escalated',
        outcome: 'success',
        details: {
          grantId,
          consumerId: grant.consumerId,
          requestedBy: grant.requestedBy,
          reasonCode: grant.reasonCode,
        },
      },
    ]);
    return true;
  });
}
