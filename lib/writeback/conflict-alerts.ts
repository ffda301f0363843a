/**
 * A conflict still waiting for a person: a reminder, then an escalation, each a structured log event and a POST
 * to the operators' alert hook — the one break-glass alerts use (EHR_BREAK_GLASS_ALERT_URL, a secret reference
 * resolved per alert, https or loopback http; lib/gateway/break-glass-alerts.ts checks it). The body carries the
 * conflict's ids, reason and element names only — never values, never the record's id.
 */
import { postToAlertHook } from '../gateway/break-glass-alerts.js';
import type { ConflictRow } from './conflict-repository.js';
import { conflictWorkflowId } from './notifier.js';

export const CONFLICT_ALERT_EVENTS = ['reconcile.conflict-reminder', 'reconcile.conflict-escalated'] as const;
export type ConflictAlertEvent = (typeof CONFLICT_ALERT_EVENTS)[number];

export interface ConflictAlert {
  event: ConflictAlertEvent;
  conflictId: string;
  tenantId: string;
  integrationId: string;
  resourceType: string;
  reason: string;
  elements: string[];
  openedAt: string;
  workflowId: string;
  /** When the alert was raised. */
  at: string;
}

export function conflictAlert(event: ConflictAlertEvent, c: ConflictRow, at: Date): ConflictAlert {
  return {
    event,
    conflictId: c.id,
    tenantId: c.tenantId,
    integrationId: c.integrationId,
    resourceType: c.resourceType,
    reason: c.reason,
    elements: c.elements,
    openedAt: c.openedAt,
    workflowId: conflictWorkflowId(c.id),
    at: at.toISOString(),
  };
}

/** POSTs the alert to the hook; false when none is configured. Any answer but 2xx is an AlertHookError. */
export async function postConflictAlert(
  alert: ConflictAlert,
  opts: { ref: string | undefined; timeoutMs?: number },
): Promise<boolean> {
  return postToAlertHook(alert, opts, 'ehr-connectors-reconcile');
}
