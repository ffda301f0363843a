/**
 * Breach containment, per incident (workflow id `incident/<id>`) — the playbook:
 *   1. contain, in parallel: revoke the scope's integrations (every worker stops calling the vendor
 *      before revoke returns), hold the scope (exports frozen, webhooks refused, vendor writes queued,
 *      legal hold), pause its schedules, cancel its running syncs; time-to-contain is recorded;
 *   2. preserve evidence: signed checkpoint, audit segment, histories, SHA-256 manifest (insert-only);
 *   3. eradicate: child `keyRotation` workflows for the keys in scope (by type name), running beside
 *   4. wait for the commander, durably: notes, severity, notifications sent, approval (four-eyes);
 *      the HIPAA notification deadline and the business-associate notice are durable timers whose
 *      reminders land in the timeline;
 *   5. recover after approval and once every rotation has switched to its new key (not after the old
 *      keys' grace periods, which are days): fresh credentials (rotated secrets and certificates come
 *      with the approval, checked before it is recorded), hold lifted, queued writes replayed once
 *      each, schedules unpaused, a catch-up sync per integration. A rotation that failed or rolled
 *      back blocks recovery until it is retried or overridden (incident-rotations.ts); a restore that
 *      fails anyway reopens the approval instead of failing the incident.
 * The `timeline` query reads like the incident report. Everything in it is identifiers, times and
 * the commander's own words (validated printable ASCII): no PHI. Its input, timeline, query and
 * updates are in incident-api.ts.
 */
import {
  ActivityFailure,
  ParentClosePolicy,
  TemporalFailure,
  condition,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ContainmentActivities } from '../activities/index.js';
import type { IncidentRef, StepDone } from '../activities/containment.js';
import { timelineQuery } from './incident-api.js';
import type { BreachContainmentInput, IncidentTimeline, Recipient, TimelineEntry } from './incident-api.js';
import { IncidentRotations, keysReadyForRecovery, rotationPlans } from './incident-rotations.js';
import { acceptCommanderUpdates } from './incident-commander.js';
import type { CommanderState } from './incident-commander.js';
import { watchDeadlines } from './incident-deadlines.js';
import { rotationSwitchedSignal } from './key-rotation-api.js';
import { containmentLocalPreset, containmentPreset, evidencePreset, storePreset } from './presets.js';

const acts = proxyActivities<ContainmentActivities>(containmentPreset);
const store = proxyActivities<ContainmentActivities>(storePreset);
const evidenceActs = proxyActivities<ContainmentActivities>(evidencePreset);
const contain = proxyLocalActivities<ContainmentActivities>(containmentLocalPreset);

export async function breachContainment(input: BreachContainmentInput): Promise<IncidentTimeline> {
  const declaredAtMs = workflowInfo().startTime.getTime();
  const ref: IncidentRef = { incidentId: input.incidentId, onBehalfOf: input.declaredBy };
  const t: IncidentTimeline = {
    incidentId: input.incidentId,
    scope: input.scope,
    severity: input.severity,
    reason: input.reason,
    declaredBy: input.declaredBy,
    declaredAt: new Date(declaredAtMs).toISOString(),
    drill: input.drill ?? false,
    status: 'containing',
    integrations: 0,
    timeToContainMs: null,
    timeToRecoverMs: null,
    evidenceId: null,
    notifications: [],
    approvedBy: null,
    entries: [],
  };
  const log = (step: string, actor: string, detail?: TimelineEntry['detail'], atMs = Date.now()): void => {
    t.entries.push({ at: new Date(atMs).toISOString(), step, actor, ...(detail ? { detail } : {}) });
  };
  const system = `incident/${input.incidentId}`;
  const notified = (r: Recipient): boolean => t.notifications.some((n) => n.recipient === r);
  const required = (): Recipient[] =>
    t.severity === 'critical' ? ['individuals', 'hhs', 'media'] : ['individuals', 'hhs'];
  const outstanding = (): Recipient[] => required().filter((r) => !notified(r));
  /** The child rotations (from eradication on) and the commander's retries and overrides. */
  const rotations = new IncidentRotations(log, system);
  const state: CommanderState = {
    contained: false,
    evidenceDone: false,
    affected: [],
    credentials: {},
    approvalBeingChecked: false,
  };

  setHandler(timelineQuery, () => t);
  setHandler(rotationSwitchedSignal, (workflowId) => rotations.switched(workflowId));
  acceptCommanderUpdates({ input, ref, t, log, rotations, state, store });

  log(
    'declared',
    input.declaredBy,
    { scope: input.scope, severity: input.severity, reason: input.reason, drill: t.drill },
    declaredAtMs,
  );

  // Deadlines run from discovery (= declaration), whatever the playbook is doing.
  const remind = async (kind: string, dueAtMs: number, missing: string[]): Promise<void> => {
    await store.incidentReminder(ref, { kind, dueAtMs, outstanding: missing });
    log(kind, system, { dueAt: new Date(dueAtMs).toISOString(), outstanding: missing });
  };
  const deadlines = watchDeadlines(input, declaredAtMs, {
    outstanding,
    notified: (r) => notified(r as Recipient),
    remind,
  });

  // 1. Contain.
  const { affected } = await contain.openIncident(ref, {
    scope: input.scope,
    severity: input.severity,
    reason: input.reason,
    declaredBy: input.declaredBy,
    drill: t.drill,
    declaredAtMs,
  });
  state.affected = affected;
  t.integrations = affected.length;
  const steps: Array<[string, Promise<StepDone>]> = [
    ['credentials-revoked', contain.revokeScope(ref, affected)],
    ['scope-held', contain.holdScope(ref, input.scope)],
    ['schedules-paused', contain.pauseScopeSchedules(ref, affected)],
    ['syncs-cancelled', contain.cancelScopeSyncs(ref, affected, input.scope)],
  ];
  const results = await Promise.all(steps.map(([, p]) => p));
  results.forEach((r, k) => log(steps[k]![0], system, r.detail, r.doneAtMs));
  const notCancelled = results[3]!.detail.notCancelled;
  // Each still stops at its next vendor call (the gate refuses a revoked integration); the commander should know.
  if (Array.isArray(notCancelled) && notCancelled.length > 0)
    log('workflows-not-cancelled', system, { workflows: notCancelled });
  const containedAtMs = Math.max(declaredAtMs, ...results.map((r) => r.doneAtMs));
  t.timeToContainMs = containedAtMs - declaredAtMs;
  await contain.markContained(ref, t.timeToContainMs);
  state.contained = true;
  log('contained', system, { timeToContainMs: t.timeToContainMs }, containedAtMs);
  const pausedSchedules = results[2]!.detail.schedules as string[];

  // 2. Preserve evidence.
  t.status = 'preserving-evidence';
  // A refusal (e.g. the audit anchor belongs to another chain) is on the timeline and tried again
  // later: the scope stays held meanwhile, and an operator can fix the cause without a new incident.
  let evidence: Awaited<ReturnType<typeof evidenceActs.preserveIncidentEvidence>> | undefined;
  while (!evidence) {
    try {
      evidence = await evidenceActs.preserveIncidentEvidence(ref, input.scope, affected);
    } catch (err) {
      const cause =
        err instanceof ActivityFailure && err.cause
          ? err.cause.message
          : err instanceof Error
            ? err.message
            : 'unknown';
      log('evidence-failed', system, { error: cause.slice(0, 300), retryInSeconds: input.evidenceRetrySeconds ?? 300 });
      await sleep((input.evidenceRetrySeconds ?? 300) * 1000);
    }
  }
  t.evidenceId = evidence.manifestSha256;
  state.evidenceDone = true;
  log(
    'evidence-preserved',
    system,
    {
      manifestSha256: evidence.manifestSha256,
      files: evidence.files,
      auditRows: evidence.auditRows,
      histories: evidence.histories,
      checkpointSeq: evidence.checkpointSeq ?? 0,
    },
    evidence.doneAtMs,
  );

  // 3. Eradicate, beside 4. the commander's wait (histories from before the change ran them in turn).
  const gated = patched('recovery-gated-by-rotation-outcome');
  rotations.gated = gated;
  t.rotations = rotations.statuses;
  const plans = input.eradicate === false ? [] : rotationPlans(input, affected);
  if (patched('eradicate-beside-approval')) {
    plans.forEach((p) => rotations.start(p));
  } else if (plans.length > 0) {
    t.status = 'eradicating';
    plans.forEach((p) => rotations.start(p));
    await rotations.settled();
  }

  // 4. Wait for the commander; recovery issues fresh credentials and lets traffic flow again, so not
  // while a key in scope is still the one in use (or its rotation failed). The old keys' grace periods
  // and retirement carry on after recovery.
  let approvedAtMs: number;
  let restored: StepDone;
  if (!gated) {
    t.status = 'awaiting-approval';
    await condition(() => t.approvedBy !== null);
    approvedAtMs = Date.now();
    if (rotations.waiting().length > 0) {
      t.status = 'recovering';
      log('recovery-waiting-for-key-switch', system, { rotations: rotations.waiting().map((r) => r.workflowId) });
      await condition(() => rotations.waiting().length === 0);
    }
    t.status = 'recovering';
    // An incident started before the gate but approved after the credential check still gets its credentials.
    restored =
      Object.keys(state.credentials).length > 0
        ? await acts.restoreScope(ref, affected, state.credentials)
        : await acts.restoreScope(ref, affected);
  } else {
    for (;;) {
      t.status = 'awaiting-approval';
      await condition(() => t.approvedBy !== null);
      // Time to recover runs from the approval, so it includes any wait for key switches.
      approvedAtMs = Date.now();
      await keysReadyForRecovery(rotations, (status) => (t.status = status), log, system);
      t.status = 'recovering';
      try {
        restored = await acts.restoreScope(ref, affected, state.credentials);
        break;
      } catch (err) {
        if (!(err instanceof TemporalFailure)) throw err;
        // The scope stays held; a new approval (with corrected credentials) tries again.
        log('recovery-failed', system, { error: failureMessage(err), next: 'approve again (ehrctl incident approve)' });
        t.approvedBy = null;
        state.credentials = {};
      }
    }
  }

  // 5. Recover.
  log('credentials-restored', system, restored.detail, restored.doneAtMs);
  const lifted = await store.liftScopeHold(ref);
  log('hold-lifted', system, lifted.detail, lifted.doneAtMs);
  const replayed = await acts.replayQueuedWrites(ref, affected);
  log('queued-writes-replayed', system, replayed.detail, replayed.doneAtMs);
  const unpaused = await acts.unpauseScopeSchedules(ref, pausedSchedules);
  log('schedules-unpaused', system, unpaused.detail, unpaused.doneAtMs);
  if (input.catchUpSync !== false) {
    const started: string[] = [];
    for (const i of affected.filter((a) => a.status === 'active')) {
      const child = await startChild('nightlySync', {
        workflowId: `sync/${i.tenantId}/${i.integrationId}/incident-${input.incidentId}`,
        args: [{ tenantId: i.tenantId, integrationId: i.integrationId }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        searchAttributes: { TenantId: [i.tenantId], IntegrationId: [i.integrationId], Vendor: [i.vendor] },
      });
      started.push(child.workflowId);
    }
    log('catch-up-syncs-started', system, { workflows: started });
  }
  t.timeToRecoverMs = Date.now() - approvedAtMs;
  await store.markRecovered(ref, t.timeToRecoverMs);
  t.status = 'recovered';
  rotations.recovered = true;
  log('recovered', system, { timeToRecoverMs: t.timeToRecoverMs });

  // Notification obligations and the rotations' grace periods outlive recovery: finish when the
  // notifications are met or their deadline passed, and every rotation has retired its old key.
  await Promise.all([deadlines, rotations.settled()]);
  return t;
}

function failureMessage(err: TemporalFailure): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause.message.slice(0, 300);
}
