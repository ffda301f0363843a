/**
 * What a breach containment shows its callers (workflows/breach-containment.ts): its input, the
 * timeline its `timeline` query returns, and the updates the commander steers it with. Identifiers,
 * times and the commander's own words only: no PHI.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { RecoveryCredentials } from '../lib/incidents/recovery-credentials.js';
import type { IncidentScope } from '../lib/incidents/scope.js';
import type { RotationStatus } from './incident-rotations.js';

export const SEVERITIES = ['low', 'moderate', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const RECIPIENTS = ['individuals', 'hhs', 'media', 'business-associate'] as const;
export type Recipient = (typeof RECIPIENTS)[number];

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
  /**
   * Signing keys: how long to wait for the vendor's JWKS cache before switching kid (default: the profile's,
   * bounded by rotationGraceSeconds).
   */
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
  status:
    | 'containing'
    | 'preserving-evidence'
    | 'eradicating'
    | 'awaiting-approval'
    | 'recovery-blocked'
    | 'recovering'
    | 'recovered';
  integrations: number;
  timeToContainMs: number | null;
  timeToRecoverMs: number | null;
  evidenceId: string | null;
  notifications: Array<{ recipient: Recipient; by: string; at: string }>;
  approvedBy: string | null;
  /** The child key rotations and where each stands (absent in timelines from before it was kept). */
  rotations?: RotationStatus[];
  entries: TimelineEntry[];
}

export interface NoteInput {
  by: string;
  text: string;
}
export interface EscalateInput {
  by: string;
  severity: Severity;
}
export interface NotificationInput {
  by: string;
  recipient: Recipient;
  reference?: string;
}
export interface ApprovalInput {
  by: string;
  note?: string;
  /** Rotated client secrets and certificates by integration id, by reference; required for those that use them. */
  credentials?: RecoveryCredentials;
}
export interface RetryRotationInput {
  by: string;
  rotation: string;
}
export interface OverrideRotationInput {
  by: string;
  rotation: string;
  reason: string;
}

export const timelineQuery = defineQuery<IncidentTimeline>('timeline');
export const addNoteUpdate = defineUpdate<number, [NoteInput]>('addNote');
export const escalateSeverityUpdate = defineUpdate<Severity, [EscalateInput]>('escalateSeverity');
export const recordNotificationUpdate = defineUpdate<number, [NotificationInput]>('recordNotification');
export const approveResumptionUpdate = defineUpdate<string, [ApprovalInput]>('approveResumption');
export const retryRotationUpdate = defineUpdate<string, [RetryRotationInput]>('retryRotation');
export const overrideRotationUpdate = defineUpdate<string, [OverrideRotationInput]>('overrideRotation');
