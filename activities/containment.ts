/**
 * Breach containment activities (workflows/breach-containment.ts). Each is idempotent — a retry
 * after a worker crash finds its own earlier effect and does not repeat it — and returns only
 * identifiers, counts and times, never PHI. What evidence is collected is containment-evidence.ts.
 */
import { ScheduleNotFoundError } from '@temporalio/client';
import type { ScheduleHandle } from '@temporalio/client';
import pLimit from 'p-limit';
import { reconcileScheduleIdFor, scheduleIdFor } from '../lib/domain.js';
import type { AuditContext } from '../lib/audit/chain.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { EvidencePackage } from '../lib/incidents/evidence.js';
import type { RecoveryCredentials } from '../lib/incidents/recovery-credentials.js';
import { recoveryCredentialProblems } from '../lib/incidents/recovery-credentials.js';
import { replayPendingWrites, wakeWriteBacks } from '../lib/incidents/pending-writes.js';
import type { IncidentScope, ScopedIntegration } from '../lib/incidents/scope.js';
import { liftHold, markIncident, openIncident, raiseHold, recordPausedSchedules } from '../lib/incidents/store.js';
import { getIntegration } from '../lib/integrations/repository.js';
import { restoreIntegration } from '../lib/revocation/restore.js';
import { revokeIntegrations } from '../lib/revocation/revoke.js';
import { atActivityBoundary } from './boundary.js';
import type { ContainmentActivityDeps } from './deps.js';
import { preserveScopeEvidence } from './containment-evidence.js';
import { NOT_CANCELLED_BY_CONTAINMENT, cancelEach, listRuns, scopeQueries } from './scope-workflows.js';

export interface IncidentRef {
  incidentId: string;
  /** Recorded as the audit actor: `incident/<id>` on behalf of whoever asked. */
  onBehalfOf: string;
}

export interface StepDone {
  /** Wall-clock time the step's side effects were complete. */
  doneAtMs: number;
  detail: Record<string, string | number | boolean | string[]>;
}

const audit = (ref: IncidentRef): AuditContext => ({
  actor: `incident/${ref.incidentId} for ${ref.onBehalfOf}`,
  correlationId: ref.incidentId,
});
const done = (detail: StepDone['detail']): StepDone => ({ doneAtMs: Date.now(), detail });

/** Integrations the incident revoked (active when declared): only those are restored. */
const wereActive = (affected: ScopedIntegration[]): ScopedIntegration[] =>
  affected.filter((i) => i.status === 'active');

/**
 * Temporal calls per containment step in flight at once: one by one, a scope of 100 integrations took
 * seconds of round trips; all at once would crowd out the worker's own task polls.
 */
const TEMPORAL_CALLS_IN_FLIGHT = 16;

/** The schedule's state, or undefined when there is none; any other failure propagates (the step retries). */
async function scheduleState(handle: ScheduleHandle) {
  try {
    return (await handle.describe()).state;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

export function createContainmentActivities(deps: ContainmentActivityDeps) {
  return atActivityBoundary({
    async openIncident(
      ref: IncidentRef,
      input: {
        scope: IncidentScope;
        severity: string;
        reason: string;
        declaredBy: string;
        drill: boolean;
        declaredAtMs: number;
      },
    ) {
      const record = await openIncident(
        deps.pool,
        { id: ref.incidentId, ...input, declaredAt: new Date(input.declaredAtMs) },
        audit(ref),
      );
      return { affected: record.affected };
    },

    /**
     * Revokes every integration in scope that was active: tokens dropped at every worker and at the vendor,
     * generation bumped.
     */
    async revokeScope(ref: IncidentRef, affected: ScopedIntegration[]): Promise<StepDone> {
      const targets = wereActive(affected);
      const results = await revokeIntegrations(
        deps.pool,
        targets.map((i) => i.integrationId),
        audit(ref),
        { reason: `incident ${ref.incidentId}`, via: `incident:${ref.incidentId}` },
      );
      const unconfirmed = results
        .filter((r) => !r.alreadyRevoked && r.acknowledged < r.workers)
        .map((r) => r.integrationId);
      return done({ revoked: results.length, unconfirmed });
    },

    async holdScope(ref: IncidentRef, scope: IncidentScope): Promise<StepDone> {
      await raiseHold(deps.pool, ref.incidentId, scope, audit(ref));
      return done({ exportsFrozen: true, webhooksRefused: true, writesQueued: true, legalHold: true });
    },

    /**
     * Pauses each integration's schedules (nightly sync, reconciliation) not already paused by someone else; returns
     * the ones this incident paused.
     */
    async pauseScopeSchedules(ref: IncidentRef, affected: ScopedIntegration[]): Promise<StepDone> {
      const client = await deps.temporal();
      const note = `paused by incident ${ref.incidentId}`;
      const limit = pLimit(TEMPORAL_CALLS_IN_FLIGHT);
      const scheduleIds = affected.flatMap((i) => [scheduleIdFor(i), reconcileScheduleIdFor(i)]);
      const outcomes = await Promise.all(
        scheduleIds.map((scheduleId) =>
          limit(async () => {
            const handle = client.schedule.getHandle(scheduleId);
            const state = await scheduleState(handle);
            if (!state) return undefined;
            if (state.paused && state.note !== note) return undefined; // paused by someone else: theirs to resume
            if (!state.paused) await handle.pause(note);
            return handle.scheduleId;
          }),
        ),
      );
      const paused = outcomes.filter((id): id is string => id !== undefined);
      // Recorded and audited once per incident: a re-run after a crash finds the schedules paused
      // with our note, whether or not the record was written.
      await recordPausedSchedules(deps.pool, ref.incidentId, paused, audit(ref));
      return done({ schedules: paused });
    },

    /**
     * Cancels every running workflow of the scope: syncs, webhook delta syncs, their children (they
     * also stop at their next vendor call: the gate refuses). What could not be cancelled is reported,
     * not swallowed; key rotations and incidents are left alone (scope-workflows.ts).
     */
    async cancelScopeSyncs(ref: IncidentRef, affected: ScopedIntegration[], scope?: IncidentScope): Promise<StepDone> {
      const client = await deps.temporal();
      const queries = scopeQueries(
        scope,
        affected.map((i) => i.integrationId),
        [...new Set(affected.map((i) => i.tenantId))],
        ` AND ExecutionStatus = 'Running'`,
      );
      const running = (await listRuns(client, queries, 10_000)).filter(
        (r) => !(NOT_CANCELLED_BY_CONTAINMENT as readonly string[]).includes(r.type),
      );
      const report = await cancelEach(running, (id) => client.workflow.getHandle(id).cancel(), {
        inFlight: TEMPORAL_CALLS_IN_FLIGHT,
        attempts: 3,
        backoffMs: 200,
      });
      const types = [...new Set(running.map((r) => r.type))].sort();
      return done({
        cancelled: report.cancelled.length,
        types,
        alreadyClosed: report.alreadyClosed.length,
        notCancelled: report.notCancelled,
      });
    },

    async markContained(ref: IncidentRef, timeToContainMs: number): Promise<void> {
      await markIncident(deps.pool, ref.incidentId, 'contained', timeToContainMs, audit(ref));
    },

    async preserveIncidentEvidence(
      ref: IncidentRef,
      scope: IncidentScope,
      affected: ScopedIntegration[],
    ): Promise<EvidencePackage & { doneAtMs: number }> {
      const pkg = await preserveScopeEvidence(deps, ref.incidentId, scope, affected, audit(ref));
      return { ...pkg, doneAtMs: Date.now() };
    },

    /** A notification deadline is near or passed: audited (and so visible to compliance), returned to the timeline. */
    async incidentReminder(
      ref: IncidentRef,
      reminder: { kind: string; dueAtMs: number; outstanding: string[] },
    ): Promise<void> {
      await recordAuditEvent(deps.pool, {
        ...audit(ref),
        action: 'incident.reminder',
        outcome: 'success',
        details: {
          incidentId: ref.incidentId,
          kind: reminder.kind,
          dueAt: new Date(reminder.dueAtMs).toISOString(),
          outstanding: reminder.outstanding,
        },
      });
    },

    /**
     * Fresh credentials for every integration the incident revoked; one already active again is left
     * alone. Secrets and certificates come from the approval (`credentials`, checked before it was
     * recorded by checkRecoveryCredentials).
     */
    async restoreScope(
      ref: IncidentRef,
      affected: ScopedIntegration[],
      credentials: RecoveryCredentials = {},
    ): Promise<StepDone> {
      const restored: string[] = [];
      for (const i of wereActive(affected)) {
        const current = await getIntegration(deps.pool, i.integrationId);
        if (current.status === 'active') continue;
        const admin = deps.sandboxAdminFor(i.baseUrl);
        const given = credentials[i.integrationId] ?? {};
        const tls =
          given.tlsCertRef && given.tlsKeyRef
            ? { ...current.tlsRefs, clientCertRef: given.tlsCertRef, clientKeyRef: given.tlsKeyRef }
            : undefined;
        await restoreIntegration(deps.pool, i.integrationId, audit(ref), {
          secretsDir: deps.secretsDir,
          incidentId: ref.incidentId,
          ...(admin ? { sandboxAdmin: admin } : {}),
          ...(deps.jwksPublicUrl ? { jwksPublicUrl: deps.jwksPublicUrl } : {}),
          ...(given.clientSecretRef ? { clientSecretRef: given.clientSecretRef } : {}),
          ...(tls ? { tlsRefs: tls } : {}),
        });
        restored.push(i.integrationId);
      }
      return done({ restored });
    },

    /** Before an approval is recorded: what is missing or wrong in the replacement credentials it carries. */
    async checkRecoveryCredentials(
      ref: IncidentRef,
      affected: ScopedIntegration[],
      credentials: RecoveryCredentials,
    ): Promise<{ problems: string[] }> {
      return { problems: await recoveryCredentialProblems(deps.pool, affected, credentials) };
    },

    /** A commander's decision that changes what recovery does (a rotation overridden): audited, with who and why. */
    async recordIncidentDecision(
      ref: IncidentRef,
      decision: { action: string; by: string; detail: Record<string, string> },
    ): Promise<void> {
      await recordAuditEvent(deps.pool, {
        actor: decision.by,
        correlationId: ref.incidentId,
        action: `incident.${decision.action}`,
        outcome: 'success',
        details: { incidentId: ref.incidentId, ...decision.detail },
      });
    },

    async liftScopeHold(ref: IncidentRef): Promise<StepDone> {
      await liftHold(deps.pool, ref.incidentId, audit(ref));
      return done({ exportsFrozen: false, webhooksRefused: false, writesQueued: false, legalHold: true });
    },

    async unpauseScopeSchedules(ref: IncidentRef, scheduleIds: string[]): Promise<StepDone> {
      const client = await deps.temporal();
      for (const id of scheduleIds) {
        const handle = client.schedule.getHandle(id);
        const state = await scheduleState(handle);
        if (state?.paused) await handle.unpause(`resumed after incident ${ref.incidentId}`);
      }
      return done({ schedules: scheduleIds });
    },

    /** Legacy queued writes replayed once each; the writeBack workflows with held outbox changes woken. */
    async replayQueuedWrites(ref: IncidentRef, affected: ScopedIntegration[]): Promise<StepDone> {
      let replayed = 0;
      for (const i of affected) replayed += await replayPendingWrites(deps, i.integrationId, ref.incidentId);
      const woken = await wakeWriteBacks(deps, affected);
      return done({ replayed, writeBacksWoken: woken });
    },

    async markRecovered(ref: IncidentRef, timeToRecoverMs: number): Promise<void> {
      await markIncident(deps.pool, ref.incidentId, 'recovered', timeToRecoverMs, audit(ref));
    },
  });
}
