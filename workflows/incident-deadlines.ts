/**
 * An incident's notification deadlines, as durable timers (breach-containment.ts): reminders before
 * the HIPAA 60-day deadline while individuals and HHS (and media when critical) are not notified, a
 * "deadline passed" entry after it, and the business-associate notice after 24 h. Deadlines run from
 * declaration (discovery), whatever the playbook is doing.
 */
import { condition } from '@temporalio/workflow';

const DAY = 24 * 3600;

export interface DeadlineInput {
  notificationDeadlineSeconds?: number;
  reminderOffsetsSeconds?: number[];
  businessAssociateNoticeSeconds?: number;
}

export interface DeadlineContext {
  /** Recipients still to notify (individuals, hhs, media). */
  outstanding(): string[];
  notified(recipient: string): boolean;
  /** Audits the reminder and puts it on the timeline. */
  remind(kind: string, dueAtMs: number, outstanding: string[]): Promise<void>;
}

export async function watchDeadlines(input: DeadlineInput, declaredAtMs: number, c: DeadlineContext): Promise<void> {
  const deadlineMs = declaredAtMs + (input.notificationDeadlineSeconds ?? 60 * DAY) * 1000;
  const offsets = [...(input.reminderOffsetsSeconds ?? [30 * DAY, 7 * DAY, DAY])].sort((a, b) => b - a);
  const baDueMs = declaredAtMs + (input.businessAssociateNoticeSeconds ?? DAY) * 1000;
  const individualsAndHhs = (async () => {
    for (const offset of offsets) {
      const atMs = deadlineMs - offset * 1000;
      if (atMs <= Date.now()) continue;
      if (await condition(() => c.outstanding().length === 0, atMs - Date.now())) return;
      await c.remind('notification-reminder', deadlineMs, c.outstanding());
    }
    if (await condition(() => c.outstanding().length === 0, Math.max(1, deadlineMs - Date.now()))) return;
    await c.remind('notification-deadline-passed', deadlineMs, c.outstanding());
  })();
  const businessAssociate = (async () => {
    if (await condition(() => c.notified('business-associate'), Math.max(1, baDueMs - Date.now()))) return;
    await c.remind('business-associate-notice-overdue', baDueMs, ['business-associate']);
  })();
  await Promise.all([individualsAndHhs, businessAssociate]);
}
