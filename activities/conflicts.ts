/**
 * The conflictResolution workflow's activities (workflows/conflict-resolution.ts): load what the workflow may know
 * of a conflict (ids, reason, element names), raise its reminder and escalation (audit event and log, then the
 * alert hook), and apply a person's resolution — the vendor's current copy read through the vendor door, then one
 * transaction (lib/writeback/conflict-resolution.ts), then the writeBack workflow woken for a queued change.
 * Everything returned is ids, element names, sides and codes.
 */
import { Context, log } from '@temporalio/activity';
import { recordAuditEvent } from '../lib/audit/chain.js';
import { InvalidArgumentError, MalformedVendorDataError, NotFoundError, VendorHttpError } from '../lib/errors/index.js';
import type { ConflictAlertEvent } from '../lib/writeback/conflict-alerts.js';
import { conflictAlert, postConflictAlert } from '../lib/writeback/conflict-alerts.js';
import type { ConflictReason, ConflictSide, ConflictStatus } from '../lib/writeback/conflict-repository.js';
import { getConflict } from '../lib/writeback/conflict-repository.js';
import type { ResolutionOutcome, VendorCopy } from '../lib/writeback/conflict-resolution.js';
import { applyConflictResolution } from '../lib/writeback/conflict-resolution.js';
import { checkResolveRequest } from '../workflows/conflict-resolve-request.js';
import type { ResolveRequest } from '../workflows/conflict-resolve-request.js';
import { activityAuditContext } from './audit-context.js';
import type { ConflictActivityDeps } from './deps.js';

/** What the workflow knows of its conflict, and its timers (EHR_CONFLICT_REMIND/ESCALATE_SECONDS). */
export interface ConflictFacts {
  conflictId: string;
  reason: ConflictReason;
  elements: string[];
  status: ConflictStatus;
  openedAt: string;
  resolution: Record<string, ConflictSide> | null;
  resolvedBy: string | null;
  remindAfterSeconds: number;
  escalateAfterSeconds: number;
}

const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;

const LOG_MESSAGES: Record<ConflictAlertEvent, string> = {
  'reconcile.conflict-reminder': 'reconciliation conflict still awaits a person',
  'reconcile.conflict-escalated': 'reconciliation conflict not resolved in time: escalated',
};

export function createConflictActivities(deps: ConflictActivityDeps) {
  async function conflictOrThrow(conflictId: string) {
    const conflict = await getConflict(deps.pool, conflictId);
    if (!conflict) throw new NotFoundError('conflict', conflictId);
    return conflict;
  }

  /** The vendor's current copy of the record; null when it answers 404 or 410. */
  async function readVendorCopy(integrationId: string, type: string, id: string): Promise<VendorCopy | null> {
    if (!FHIR_ID.test(id)) throw new InvalidArgumentError('resourceId', 'expected a FHIR resource id');
    const integration = await deps.directory.integration(integrationId);
    const url = `${integration.baseUrl.replace(/\/$/, '')}/${type}/${id}`;
    const call = { correlationId: activityAuditContext().correlationId, purpose: 'reconcile.resolve' };
    try {
      const res = await deps.vendors.get(integrationId, url, call);
      const resource = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
      const meta = resource.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
      if (resource.resourceType !== type || resource.id !== id)
        throw new MalformedVendorDataError(type, 'the read answered another resource');
      const etag = /^(?:W\/)?"([^"]+)"$/.exec(res.headers.get('etag') ?? '')?.[1];
      const versionId = typeof meta?.versionId === 'string' ? meta.versionId : etag;
      const lastUpdated = typeof meta?.lastUpdated === 'string' ? meta.lastUpdated : undefined;
      if (!versionId || !lastUpdated || Number.isNaN(Date.parse(lastUpdated)))
        throw new MalformedVendorDataError(type, 'the read answered no versionId or lastUpdated');
      return { resource, versionId, lastUpdated };
    } catch (err) {
      if (err instanceof VendorHttpError && (err.status === 404 || err.status === 410)) return null;
      if (err instanceof SyntaxError) throw new MalformedVendorDataError(type, 'the read answered no JSON');
      throw err;
    }
  }

  return {
    async loadConflict(conflictId: string): Promise<ConflictFacts> {
      const c = await conflictOrThrow(conflictId);
      return {
        conflictId: c.id,
        reason: c.reason,
        elements: c.elements,
        status: c.status,
        openedAt: c.openedAt,
        resolution: c.resolution,
        resolvedBy: c.resolvedBy,
        remindAfterSeconds: deps.remindAfterSeconds,
        escalateAfterSeconds: Math.max(deps.escalateAfterSeconds, deps.remindAfterSeconds + 1),
      };
    },

    /** The reminder or escalation as an audit event and a structured log event (before the hook is tried). */
    async noteConflictAlert(conflictId: string, event: ConflictAlertEvent): Promise<void> {
      const c = await conflictOrThrow(conflictId);
      const alert = conflictAlert(event, c, new Date());
      await recordAuditEvent(deps.pool, {
        ...activityAuditContext(),
        action:
          event === 'reconcile.conflict-reminder' ? 'reconcile.conflict_reminded' : 'reconcile.conflict_escalated',
        outcome: 'success',
        tenantId: c.tenantId,
        integrationId: c.integrationId,
        details: { conflictId: c.id, reason: c.reason, elements: c.elements, openedAt: c.openedAt },
      });
      log.warn(LOG_MESSAGES[event], { ...alert, alertHook: deps.alertHookRef !== undefined });
    },

    /** The alert hook; false when none is configured. Retried by the workflow's alert preset. */
    async postConflictAlert(conflictId: string, event: ConflictAlertEvent): Promise<boolean> {
      const c = await conflictOrThrow(conflictId);
      try {
        return await postConflictAlert(conflictAlert(event, c, new Date()), { ref: deps.alertHookRef });
      } catch (err) {
        const attempt = Context.current().info.attempt;
        log.warn('conflict alert hook failed', {
          event: 'reconcile.alert-hook-failed',
          alert: event,
          conflictId,
          attempt,
        });
        throw err;
      }
    },

    async resolveConflict(conflictId: string, request: ResolveRequest): Promise<ResolutionOutcome> {
      const c = await conflictOrThrow(conflictId);
      const ctx = activityAuditContext();
      const deciding = c.status === 'resolved' ? { ok: true as const, decisions: c.resolution ?? {} } : undefined;
      const check = deciding ?? checkResolveRequest(request, c);
      if (!check.ok) throw new InvalidArgumentError('resolve', check.problem);
      const integration = await deps.directory.integration(c.integrationId);
      const vendor = c.status === 'open' ? await readVendorCopy(c.integrationId, c.resourceType, c.resourceId) : null;
      const outcome = await applyConflictResolution(
        deps,
        { conflictId, decisions: check.decisions, resolvedBy: request.by, purpose: integration.purpose, vendor },
        ctx,
      );
      log.info('reconciliation conflict resolved', {
        event: 'reconcile.conflict-resolved',
        conflictId,
        resolution: outcome.resolution,
        changeId: outcome.changeId,
      });
      // After commit: the change is in the outbox whatever happens here; the writeBack workflow drains it.
      if (outcome.changeId) await deps.outbox.changesQueued({ tenantId: c.tenantId, integrationId: c.integrationId });
      return outcome;
    },
  };
}
