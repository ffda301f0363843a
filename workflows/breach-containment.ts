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
 *      keys' grace periods, which are days): fresh credentials, hold lifted, queued writes replayed
 *      once each, schedules unpaused, a catch-up sync per integration.
 * The `timeline` query reads like the incident report. Everything in it is identifiers, times and
 * the commander's own words (validated printable ASCII): no PHI.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  condition,
  defineQuery,
  defineUpdate,
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
import type { IncidentScope, ScopedIntegration } from '../lib/incidents/scope.js';
import { rotationSwitchedSignal } from './key-rotation.js';
import { containmentLocalPreset, containmentPreset, evidencePreset, storePreset } from './presets.js';

export const SEVERITIES = ['low', 'moderate', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const RECIPIENTS = ['individuals', 'hhs', 'media', 'business-associate'] as const;
export type Recipient = (typeof RECIPIENTS)[number];

const DAY = 24 * 3600;

export interface BreachContainmentInput {
  incidentId: string;
  scope: IncidentScope;
  severity: Severity;
  reason: string;
  declaredBy: string;
  drill?: boolean;
  /** Start child key rotations (default true). */
  eradicate?: boolean;
  /** Grace periods of the child rotations (their production defaults are days; tests pass seconds). */
  rotationGraceSeconds?: number;
  /** Signing keys: how long to wait for the vendor's JWKS cache before switching kid (default: the profile's, bounded by rotationGraceSeconds). */
  vendorJwksCacheSeconds?: number;
  /** HIPAA: notify individuals and HHS within 60 days of discovery (default 60 days). */
  notificationDeadlineSeconds?: number;
  /** Reminders this long before the deadline while notifications are outstanding (default 30, 7 and 1 days). */
  reminderOffsetsSeconds?: number[];
  /** Notice to the affected business associates (the vendors in scope); default 24 h. */
  businessAssociateNoticeSeconds?: number;
  /** After a non-retryable evidence failure, try again this much later (default 300 s). */
  evidenceRetrySeconds?: number;
  /** Start a catch-up sync per restored integration (default true). */
  catchUpSync?: boolean;
}

export interface TimelineEntry {
  at: string;
  step: string;
  actor: string;
  detail?: Record<string, string | number | boolean | string[]>;
}

export interface IncidentTimeline {
  incidentId: string;
  scope: IncidentScope;
  severity: Severity;
  reason: string;
  declaredBy: string;
  declaredAt: string;
  drill: boolean;
  status: 'containing' | 'preserving-evidence' | 'eradicating' | 'awaiting-approval' | 'recovering' | 'recovered';
  integrations: number;
  timeToContainMs: number | null;
  timeToRecoverMs: number | null;
  evidenceId: string | null;
  notifications: Array<{ recipient: Recipient; by: string; at: string }>;
  approvedBy: string | null;
  entries: TimelineEntry[];
}

export interface NoteInput { by: string; text: string }
export interface EscalateInput { by: string; severity: Severity }
export interface NotificationInput { by: string; recipient: Recipient; reference?: string }
export interface ApprovalInput { by: string; note?: string }

export const timelineQuery = defineQuery<IncidentTimeline>('timeline');
export const addNoteUpdate = defineUpdate<number, [NoteInput]>('addNote');
export const escalateSeverityUpdate = defineUpdate<Severity, [EscalateInput]>('escalateSeverity');
export const recordNotificationUpdate = defineUpdate<number, [NotificationInput]>('recordNotification');
export const approveResumptionUpdate = defineUpdate<string, [ApprovalInput]>('approveResumption');

const acts = proxyActivities<ContainmentActivities>(containmentPreset);
const store = proxyActivities<ContainmentActivities>(storePreset);
const evidenceActs = proxyActivities<ContainmentActivities>(evidencePreset);
const contain = proxyLocalActivities<ContainmentActivities>(containmentLocalPreset);

/** Words only: the commander's text lands in histories and reports, so it must not carry PHI-shaped data. */
const TEXT = /^[\x20-\x7e]{1,500}$/;
const ACTOR = /^[A-Za-z0-9@._:+-]{1,128}$/;

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'INVALID_ARGUMENT');
}

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
  const required = (): Recipient[] => (t.severity === 'critical' ? ['individuals', 'hhs', 'media'] : ['individuals', 'hhs']);
  const outstanding = (): Recipient[] => required().filter((r) => !notified(r));
  let contained = false;
  let evidenceDone = false;
  /** Child rotations that have switched to their new key (signalled) or ended. */
  const switched = new Set<string>();

  setHandler(timelineQuery, () => t);
  setHandler(rotationSwitchedSignal, (workflowId) => {
    if (switched.has(workflowId)) return;
    switched.add(workflowId);
    log('rotation-switched', system, { workflowId });
  });
  setHandler(
    addNoteUpdate,
    (n) => {
      log('note', n.by, { text: n.text });
      return t.entries.length;
    },
    {
      validator: (n) => {
        if (!ACTOR.test(n.by)) invalid('by: expected an identity (letters, digits, @._:+-)');
        if (!TEXT.test(n.text)) invalid('text: 1-500 printable ASCII characters (no PHI)');
      },
    },
  );
  setHandler(
    escalateSeverityUpdate,
    (e) => {
      log('severity-escalated', e.by, { from: t.severity, to: e.severity });
      t.severity = e.severity;
      return t.severity;
    },
    {
      validator: (e) => {
        if (!ACTOR.test(e.by)) invalid('by: expected an identity');
        if (!SEVERITIES.includes(e.severity)) invalid(`severity: one of ${SEVERITIES.join(', ')}`);
        if (SEVERITIES.indexOf(e.severity) <= SEVERITIES.indexOf(t.severity)) invalid(`severity is already ${t.severity}: escalation must raise it`);
      },
    },
  );
  setHandler(
    recordNotificationUpdate,
    (n) => {
      t.notifications.push({ recipient: n.recipient, by: n.by, at: new Date(Date.now()).toISOString() });
      log('notification-sent', n.by, { recipient: n.recipient, ...(n.reference ? { reference: n.reference } : {}) });
      return t.notifications.length;
    },
    {
      validator: (n) => {
        if (!ACTOR.test(n.by)) invalid('by: expected an identity');
        if (!RECIPIENTS.includes(n.recipient)) invalid(`recipient: one of ${RECIPIENTS.join(', ')}`);
        if (n.reference !== undefined && !/^[A-Za-z0-9._:/-]{1,100}$/.test(n.reference)) invalid('reference: a letter or ticket id (letters, digits, ._:/-)');
        if (notified(n.recipient)) invalid(`a notification to ${n.recipient} is already recorded`);
      },
    },
  );
  setHandler(
    approveResumptionUpdate,
    (a) => {
      t.approvedBy = a.by;
      log('resumption-approved', a.by, a.note ? { note: a.note } : undefined);
      return a.by;
    },
    {
      validator: (a) => {
        if (!ACTOR.test(a.by)) invalid('by: expected an identity');
        if (a.note !== undefined && !TEXT.test(a.note)) invalid('note: 1-500 printable ASCII characters (no PHI)');
        if (!contained || !evidenceDone) invalid('resumption cannot be approved before containment and evidence preservation are complete');
        if (t.approvedBy) invalid(`resumption was already approved by ${t.approvedBy}`);
        // Four eyes: whoever declared the incident cannot also end it.
        if (a.by === input.declaredBy) invalid('resumption must be approved by someone other than the declarer (four-eyes)');
      },
    },
  );

  log('declared', input.declaredBy, { scope: input.scope, severity: input.severity, reason: input.reason, drill: t.drill }, declaredAtMs);

  // Deadlines run from discovery (= declaration), whatever the playbook is doing.
  const deadlines = watchDeadlines(input, declaredAtMs, { outstanding, notified, log, system, ref });

  // 1. Contain.
  const { affected } = await contain.openIncident(ref, {
    scope: input.scope,
    severity: input.severity,
    reason: input.reason,
    declaredBy: input.declaredBy,
    drill: t.drill,
    declaredAtMs,
  });
  t.integrations = affected.length;
  const steps: Array<[string, Promise<StepDone>]> = [
    ['credentials-revoked', contain.revokeScope(ref, affected)],
    ['scope-held', contain.holdScope(ref, input.scope)],
    ['schedules-paused', contain.pauseScopeSchedules(ref, affected)],
    ['syncs-cancelled', contain.cancelScopeSyncs(ref, affected)],
  ];
  const results = await Promise.all(steps.map(([, p]) => p));
  results.forEach((r, k) => log(steps[k]![0], system, r.detail, r.doneAtMs));
  const containedAtMs = Math.max(declaredAtMs, ...results.map((r) => r.doneAtMs));
  t.timeToContainMs = containedAtMs - declaredAtMs;
  await contain.markContained(ref, t.timeToContainMs);
  contained = true;
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
      const cause = err instanceof ActivityFailure && err.cause ? err.cause.message : err instanceof Error ? err.message : 'unknown';
      log('evidence-failed', system, { error: cause.slice(0, 300), retryInSeconds: input.evidenceRetrySeconds ?? 300 });
      await sleep((input.evidenceRetrySeconds ?? 300) * 1000);
    }
  }
  t.evidenceId = evidence.manifestSha256;
  evidenceDone = true;
  log('evidence-preserved', system, { manifestSha256: evidence.manifestSha256, files: evidence.files, auditRows: evidence.auditRows, histories: evidence.histories, checkpointSeq: evidence.checkpointSeq ?? 0 }, evidence.doneAtMs);

  // 3. Eradicate, beside 4. the commander's wait (histories from before the change ran them in turn).
  const plans = input.eradicate === false ? [] : rotationPlans(input, affected);
  const rotate = async (p: RotationPlan): Promise<void> => {
    await runRotation(p, log, system);
    switched.add(p.workflowId); // ended, whether or not it signalled its switch
  };
  let eradication: Promise<unknown> = Promise.resolve();
  if (patched('eradicate-beside-approval')) {
    eradication = Promise.all(plans.map(rotate));
  } else if (plans.length > 0) {
    t.status = 'eradicating';
    await Promise.all(plans.map(rotate));
  }

  // 4. Wait for the commander.
  t.status = 'awaiting-approval';
  await condition(() => t.approvedBy !== null);
  // Time to recover runs from the approval, so it includes any wait for key switches below.
  const approvedAtMs = Date.now();

  // Recovery issues fresh credentials and lets traffic flow again: not while a key in scope is still
  // the one in use. The old keys' grace periods and retirement carry on after recovery.
  const unswitched = (): string[] => plans.map((p) => p.workflowId).filter((id) => !switched.has(id));
  if (unswitched().length > 0) {
    t.status = 'recovering';
    log('recovery-waiting-for-key-switch', system, { rotations: unswitched() });
    await condition(() => unswitched().length === 0);
  }

  // 5. Recover.
  t.status = 'recovering';
  const restored = await acts.restoreScope(ref, affected);
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
  log('recovered', system, { timeToRecoverMs: t.timeToRecoverMs });

  // Notification obligations and the rotations' grace periods outlive recovery: finish when the
  // notifications are met or their deadline passed, and every rotation has retired its old key.
  await Promise.all([deadlines, eradication]);
  return t;
}

interface DeadlineContext {
  outstanding(): Recipient[];
  notified(r: Recipient): boolean;
  log(step: string, actor: string, detail?: TimelineEntry['detail']): void;
  system: string;
  ref: IncidentRef;
}

async function watchDeadlines(input: BreachContainmentInput, declaredAtMs: number, c: DeadlineContext): Promise<void> {
  const deadlineMs = declaredAtMs + (input.notificationDeadlineSeconds ?? 60 * DAY) * 1000;
  const offsets = [...(input.reminderOffsetsSeconds ?? [30 * DAY, 7 * DAY, DAY])].sort((a, b) => b - a);
  const baDueMs = declaredAtMs + (input.businessAssociateNoticeSeconds ?? DAY) * 1000;
  const remind = async (kind: string, dueAtMs: number, outstanding: Recipient[]): Promise<void> => {
    await store.incidentReminder(c.ref, { kind, dueAtMs, outstanding });
    c.log(kind, c.system, { dueAt: new Date(dueAtMs).toISOString(), outstanding });
  };
  const individualsAndHhs = (async () => {
    for (const offset of offsets) {
      const atMs = deadlineMs - offset * 1000;
      if (atMs <= Date.now()) continue;
      if (await condition(() => c.outstanding().length === 0, atMs - Date.now())) return;
      await remind('notification-reminder', deadlineMs, c.outstanding());
    }
    if (await condition(() => c.outstanding().length === 0, Math.max(1, deadlineMs - Date.now()))) return;
    await remind('notification-deadline-passed', deadlineMs, c.outstanding());
  })();
  const businessAssociate = (async () => {
    if (await condition(() => c.notified('business-associate'), Math.max(1, baDueMs - Date.now()))) return;
    await remind('business-associate-notice-overdue', baDueMs, ['business-associate']);
  })();
  await Promise.all([individualsAndHhs, businessAssociate]);
}

interface RotationPlan {
  workflowId: string;
  args: Record<string, unknown>;
}

/** Child rotations for the keys in scope: signing keys and webhook secrets per integration, DEKs per tenant, the KEK for `all`. */
function rotationPlans(input: BreachContainmentInput, affected: ScopedIntegration[]): RotationPlan[] {
  const base = {
    requestedBy: input.declaredBy,
    reason: `incident ${input.incidentId}`,
    incidentId: input.incidentId,
    ...(input.rotationGraceSeconds !== undefined ? { graceSeconds: input.rotationGraceSeconds } : {}),
  };
  // The scope's integrations stay revoked while the incident holds, so no assertion is signed while a
  // signing-key rotation waits for the vendor's JWKS cache; a short grace bounds that wait too.
  const jwksWait = input.vendorJwksCacheSeconds ?? input.rotationGraceSeconds;
  const signing = jwksWait !== undefined ? { vendorJwksCacheSeconds: jwksWait } : {};
  // Webhooks for the scope are refused while it is held, so a dual-acceptance window would only keep a
  // possibly leaked secret alive: the old secret is refused at once (the vendor gets the new one before
  // the commander approves resumption).
  const webhook = { graceSeconds: 0 };
  const plans: Array<{ id: string; args: Record<string, unknown> }> = [];
  for (const i of affected.filter((a) => a.status === 'active')) {
    plans.push({ id: `signing-key/${i.integrationId}`, args: { ...base, ...signing, kind: 'signing-key', tenantId: i.tenantId, integrationId: i.integrationId } });
    plans.push({ id: `webhook-secret/${i.integrationId}`, args: { ...base, ...webhook, kind: 'webhook-secret', tenantId: i.tenantId, integrationId: i.integrationId } });
  }
  for (const tenantId of [...new Set(affected.map((a) => a.tenantId))]) plans.push({ id: `tenant-dek/${tenantId}`, args: { ...base, kind: 'tenant-dek', tenantId } });
  if (input.scope === 'all') plans.push({ id: 'kek', args: { ...base, kind: 'kek' } });
  return plans.map((p) => ({ workflowId: `incident/${input.incidentId}/rotate/${p.id}`, args: p.args }));
}

/** One child rotation; a failed rotation is recorded, not fatal (the scope stays held either way). */
async function runRotation(plan: RotationPlan, log: DeadlineContext['log'], system: string): Promise<void> {
  const { workflowId } = plan;
  try {
    const child = await startChild('keyRotation', { workflowId, args: [plan.args] });
    log('rotation-started', system, { workflowId });
    const result = (await child.result()) as { outcome?: string; steps?: unknown[] };
    log('rotation-finished', system, { workflowId, outcome: String(result.outcome ?? 'unknown') });
  } catch (err) {
    log('rotation-failed', system, { workflowId, error: err instanceof Error ? err.message.slice(0, 200) : 'unknown' });
  }
}
