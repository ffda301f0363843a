/**
 * The audit events of reconciliation's decisions: one `reconcile.decided` event per batch (more when a batch has
 * many differing records), naming record ids, classes, element names and decisions — never values, never digests.
 * In-sync records are counted, not listed.
 */
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import type { Decision, RecordClass } from './decide.js';

/** Records listed per event: keeps each event's details well under the 8 KB cap. */
const RECORDS_PER_EVENT = 40;

export function decisionEvents(
  ctx: AuditContext,
  scope: { tenantId: string; integrationId: string; resourceType: string; runId: string },
  decided: ReadonlyArray<{ id: string; decision: Decision }>,
): AuditEvent[] {
  const classes: Partial<Record<RecordClass, number>> = {};
  for (const { decision } of decided) classes[decision.class] = (classes[decision.class] ?? 0) + 1;
  const listed = decided
    .filter(({ decision: d }) => d.class !== 'in-sync' || d.ignored.length > 0)
    .map(({ id, decision: d }) => ({
      id,
      class: d.class,
      ...(d.diverged.length > 0 ? { diverged: d.diverged } : {}),
      ...(d.takeRemote.length > 0 ? { takeRemote: d.takeRemote } : {}),
      ...(d.writeBack.length > 0 ? { writeBack: d.writeBack } : {}),
      ...(d.conflict ? { conflict: d.conflict.reason, disputed: d.conflict.elements } : {}),
      ...(d.storeRemote ? { storeRemote: true } : {}),
      ...(d.tombstone ? { tombstone: true } : {}),
      ...(d.ignored.length > 0 ? { ignored: d.ignored } : {}),
    }));
  const events: AuditEvent[] = [];
  for (let i = 0; i === 0 || i < listed.length; i += RECORDS_PER_EVENT) {
    events.push({
      ...ctx,
      action: 'reconcile.decided',
      outcome: 'success',
      tenantId: scope.tenantId,
      integrationId: scope.integrationId,
      details: {
        runId: scope.runId,
        resourceType: scope.resourceType,
        ...(i === 0 ? { classes } : {}),
        records: listed.slice(i, i + RECORDS_PER_EVENT),
      },
    });
  }
  return events;
}
