/**
 * What the incident commander can do while an incident runs, as workflow updates with validators:
 * notes, severity escalation, notifications sent, the approval of resumption (four eyes; rotated
 * secrets and certificates checked before it is recorded), and, for a child rotation that failed or
 * rolled back, a retry or an override (four eyes, audited). Registered by breachContainment, whose
 * playbook reads and sets the shared `state`.
 */
import { ApplicationFailure, patched, setHandler } from '@temporalio/workflow';
import type { ContainmentActivities } from '../activities/index.js';
import type { IncidentRef } from '../activities/containment.js';
import type { RecoveryCredentials } from '../lib/incidents/recovery-credentials.js';
import type { ScopedIntegration } from '../lib/incidents/scope.js';
import {
  RECIPIENTS,
  SEVERITIES,
  addNoteUpdate,
  approveResumptionUpdate,
  escalateSeverityUpdate,
  overrideRotationUpdate,
  recordNotificationUpdate,
  retryRotationUpdate,
} from './incident-api.js';
import type { BreachContainmentInput, IncidentTimeline, Recipient, TimelineEntry } from './incident-api.js';
import { ACTOR, TEXT, checkCredentialsShape, invalid } from './incident-inputs.js';
import type { IncidentRotations, RotationStatus } from './incident-rotations.js';

/** What the playbook and the commander's updates share. */
export interface CommanderState {
  contained: boolean;
  evidenceDone: boolean;
  affected: ScopedIntegration[];
  /** The replacement secrets and certificates of the approval recovery acts on. */
  credentials: RecoveryCredentials;
  approvalBeingChecked: boolean;
}

export interface CommanderContext {
  input: BreachContainmentInput;
  ref: IncidentRef;
  t: IncidentTimeline;
  log: (step: string, actor: string, detail?: TimelineEntry['detail'], atMs?: number) => void;
  rotations: IncidentRotations;
  state: CommanderState;
  store: Pick<ContainmentActivities, 'checkRecoveryCredentials' | 'recordIncidentDecision'>;
}

export function acceptCommanderUpdates({ input, ref, t, log, rotations, state, store }: CommanderContext): void {
  const notified = (r: Recipient): boolean => t.notifications.some((n) => n.recipient === r);
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
        if (SEVERITIES.indexOf(e.severity) <= SEVERITIES.indexOf(t.severity))
          invalid(`severity is already ${t.severity}: escalation must raise it`);
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
        if (n.reference !== undefined && !/^[A-Za-z0-9._:/-]{1,100}$/.test(n.reference))
          invalid('reference: a letter or ticket id (letters, digits, ._:/-)');
        if (notified(n.recipient)) invalid(`a notification to ${n.recipient} is already recorded`);
      },
    },
  );
  setHandler(
    approveResumptionUpdate,
    async (a) => {
      // Secrets and certificates cannot be minted by recovery: the approval must name the rotated ones,
      // and they are checked before it is recorded (older incidents approved without this check).
      if (patched('approval-checks-credentials')) {
        state.approvalBeingChecked = true;
        let problems: string[];
        try {
          ({ problems } = await store.checkRecoveryCredentials(ref, state.affected, a.credentials ?? {}));
        } finally {
          state.approvalBeingChecked = false;
        }
        if (problems.length > 0) {
          log('approval-refused', a.by, { problems });
          throw ApplicationFailure.nonRetryable(`approval refused: ${problems.join('; ')}`, 'INVALID_ARGUMENT');
        }
        state.credentials = a.credentials ?? {};
      }
      t.approvedBy = a.by;
      log('resumption-approved', a.by, a.note ? { note: a.note } : undefined);
      return a.by;
    },
    {
      validator: (a) => {
        if (!ACTOR.test(a.by)) invalid('by: expected an identity');
        if (a.note !== undefined && !TEXT.test(a.note)) invalid('note: 1-500 printable ASCII characters (no PHI)');
        checkCredentialsShape(a.credentials);
        if (!state.contained || !state.evidenceDone)
          invalid('resumption cannot be approved before containment and evidence preservation are complete');
        if (t.approvedBy) invalid(`resumption was already approved by ${t.approvedBy}`);
        if (state.approvalBeingChecked) invalid('another approval is being checked');
        // Four eyes: whoever declared the incident cannot also end it.
        if (a.by === input.declaredBy)
          invalid('resumption must be approved by someone other than the declarer (four-eyes)');
      },
    },
  );
  /** A rotation that the commander may retry or override: it exists and it blocks recovery. */
  const blockingRotation = (name: string): RotationStatus => {
    const status = rotations.get(name);
    if (!status)
      invalid(
        `no rotation ${JSON.stringify(name.slice(0, 100))}; rotations: ` +
          `${rotations.statuses.map((s) => s.rotation).join(', ') || 'none'}`,
      );
    if (!rotations.isBlocking(status))
      invalid(
        `rotation ${name} is ${status.overriddenBy ? 'overridden' : status.outcome}: ` +
          `only a failed or rolled-back rotation blocks recovery`,
      );
    if (rotations.overridePending(name)) invalid(`an override of rotation ${name} is being recorded`);
    return status;
  };
  setHandler(retryRotationUpdate, (r) => rotations.retry(r.rotation, r.by), {
    validator: (r) => {
      if (!ACTOR.test(r.by)) invalid('by: expected an identity');
      blockingRotation(r.rotation);
    },
  });
  setHandler(
    overrideRotationUpdate,
    async (o) => {
      const status = rotations.get(o.rotation)!;
      const detail = { rotation: o.rotation, workflowId: status.workflowId, outcome: status.outcome, reason: o.reason };
      await rotations.override(o.rotation, o.by, o.reason, () =>
        store.recordIncidentDecision(ref, { action: 'rotation_overridden', by: o.by, detail }),
      );
      return o.rotation;
    },
    {
      validator: (o) => {
        if (!ACTOR.test(o.by)) invalid('by: expected an identity');
        if (!TEXT.test(o.reason)) invalid('reason: 1-500 printable ASCII characters (no PHI)');
        // Four eyes, as for approval: recovering on a key that may be compromised is not the declarer's call alone.
        if (o.by === input.declaredBy)
          invalid('an override must come from someone other than the declarer (four-eyes)');
        blockingRotation(o.rotation);
      },
    },
  );
}
