/**
 * Typed client calls for incidents: the CLI, tests and the benchmark start and steer the
 * containment workflow only through these, so its id (`incident/<id>`), search attribute and
 * update names are decided in one place.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES, incidentTaskQueue } from '../lib/domain.js';
import type {
  ApprovalInput,
  BreachContainmentInput,
  IncidentTimeline,
  NoteInput,
  NotificationInput,
  OverrideRotationInput,
  RetryRotationInput,
} from '../workflows/incident-api.js';

export const IncidentIdKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.incidentId, SearchAttributeType.KEYWORD);

export const incidentWorkflowId = (incidentId: string): string => `incident/${incidentId}`;

/** `taskQueue` is the deployment's main queue; the incident runs on its incident queue (lib/domain.ts). */
export async function declareIncident(
  client: Client,
  taskQueue: string,
  input: BreachContainmentInput,
): Promise<WorkflowHandle> {
  return client.workflow.start('breachContainment', {
    taskQueue: incidentTaskQueue(taskQueue),
    workflowId: incidentWorkflowId(input.incidentId),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    args: [input],
    typedSearchAttributes: [{ key: IncidentIdKey, value: input.incidentId }],
  });
}

export const incidentHandle = (client: Client, incidentId: string): WorkflowHandle =>
  client.workflow.getHandle(incidentWorkflowId(incidentId));

export async function incidentTimeline(handle: WorkflowHandle): Promise<IncidentTimeline> {
  return handle.query<IncidentTimeline>('timeline');
}

export async function addIncidentNote(handle: WorkflowHandle, note: NoteInput): Promise<number> {
  return handle.executeUpdate<number, [NoteInput]>('addNote', { args: [note] });
}

export async function recordIncidentNotification(handle: WorkflowHandle, n: NotificationInput): Promise<number> {
  return handle.executeUpdate<number, [NotificationInput]>('recordNotification', { args: [n] });
}

export async function approveResumption(handle: WorkflowHandle, a: ApprovalInput): Promise<string> {
  return handle.executeUpdate<string, [ApprovalInput]>('approveResumption', { args: [a] });
}

/** Starts a failed or rolled-back child rotation again; returns the new attempt's workflow id. */
export async function retryIncidentRotation(handle: WorkflowHandle, r: RetryRotationInput): Promise<string> {
  return handle.executeUpdate<string, [RetryRotationInput]>('retryRotation', { args: [r] });
}

/** Lets recovery go ahead despite a failed or rolled-back rotation: audited, with a reason, not by the declarer. */
export async function overrideIncidentRotation(handle: WorkflowHandle, o: OverrideRotationInput): Promise<string> {
  return handle.executeUpdate<string, [OverrideRotationInput]>('overrideRotation', { args: [o] });
}

export async function escalateIncident(
  handle: WorkflowHandle,
  by: string,
  severity: BreachContainmentInput['severity'],
): Promise<string> {
  return handle.executeUpdate<string, [{ by: string; severity: BreachContainmentInput['severity'] }]>(
    'escalateSeverity',
    { args: [{ by, severity }] },
  );
}
