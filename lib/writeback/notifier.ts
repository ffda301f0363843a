/**
 * How a queued change wakes its integration's writeBack workflow. `workers/` implements it with a Temporal
 * client (signal-with-start of `write-back-<integration>`); the gateway calls it after its transaction commits,
 * reconciliation after it queues write-backs. A failed notification loses nothing: the change is in the
 * outbox, and the workflow drains everything pending whenever it next runs.
 */
export interface OutboxNotifier {
  changesQueued(scope: { tenantId: string; integrationId: string }): Promise<void>;
}

/** The writeBack workflow of an integration: one per integration, so its changes are sent in order. */
export function writeBackWorkflowId(integrationId: string): string {
  return `write-back-${integrationId}`;
}

/** Starts an opened conflict's conflictResolution workflow (idempotent: its id is `conflict-<id>`). */
export interface ConflictNotifier {
  conflictOpened(conflict: { tenantId: string; integrationId: string; conflictId: string }): Promise<void>;
}

export function conflictWorkflowId(conflictId: string): string {
  return `conflict-${conflictId}`;
}
