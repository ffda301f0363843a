/**
 * conflictResolution (`conflict-<id>`): one open reconciliation conflict waiting for a person — reminders and
 * escalation on durable timers, resolved by the `resolve` update (ids and element paths only, never values).
 *
 * CONTRACT STUB — the input is fixed; the body, the update and its validator are being built (issue 13 item 3).
 */
import { condition } from '@temporalio/workflow';

export interface ConflictResolutionInput {
  tenantId: string;
  integrationId: string;
  conflictId: string;
}

export async function conflictResolution(_input: ConflictResolutionInput): Promise<void> {
  await condition(() => false);
}
