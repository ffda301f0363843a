/**
 * Retention (issue 12 item 6), started by its Temporal schedule (`ehrctl retention schedule`) or by hand
 * (`ehrctl retention run`): plans the run (cutoffs fixed once), then purges each tenant's past-due records
 * by data class and webhook deliveries in batches, then the oldest audit segments, one per batch, then
 * past-due incident evidence, one incident per batch, and
 * records the run's totals in the audit trail. Every batch is one activity and one transaction with its
 * audit event and an idempotency ledger row keyed by this run (lib/retention/purge.ts): a batch retried
 * after a worker died or its reply was lost deletes nothing twice. A run that failed leaves nothing
 * half-done; the next run finds only what is still past due. Continues as new after `maxBatchesPerRun`
 * batches, carrying the plan, where it was and the totals.
 */
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { RetentionActivities, RetentionRunSummary } from '../activities/retention.js';
import type { RetentionPlan } from '../lib/retention/plan.js';
import { retentionPreset } from './presets.js';

export interface RetentionInput {
  /** Only this tenant's records and deliveries (the audit trail, every tenant's, is then left alone). */
  tenantId?: string;
  /** Rows per batch (default 200). */
  batchSize?: number;
  maxBatchesPerRun?: number;
  /** Carried by continue-as-new. */
  carried?: {
    runId: string;
    plan: RetentionPlan;
    taskIndex: number;
    batch: number;
    auditBatch: number;
    evidenceIndex?: number;
    summary: RetentionRunSummary;
  };
}

export type RetentionResult = RetentionRunSummary & { status: 'completed' };

const DEFAULT_BATCH_SIZE = 200;
const DEFAULT_MAX_BATCHES_PER_RUN = 500;

const acts = proxyActivities<RetentionActivities>(retentionPreset);

export async function retention(input: RetentionInput = {}): Promise<RetentionResult> {
  const limit = input.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxBatches = input.maxBatchesPerRun ?? DEFAULT_MAX_BATCHES_PER_RUN;
  const c = input.carried;
  // The first run's id keys every batch of the whole run, across continue-as-new.
  const runId = c?.runId ?? workflowInfo().runId;
  const plan =
    c?.plan ?? (await acts.planRetentionRun(input.tenantId === undefined ? {} : { tenantId: input.tenantId }));
  const summary: RetentionRunSummary = c?.summary ?? {
    runId,
    ...(input.tenantId === undefined ? {} : { tenantId: input.tenantId }),
    purged: {},
    auditRowsPurged: 0,
    auditSegmentsPurged: 0,
    evidenceFilesPurged: 0,
    heldBy: {},
  };
  let taskIndex = c?.taskIndex ?? 0;
  let batch = c?.batch ?? 0;
  let auditBatch = c?.auditBatch ?? 0;
  let evidenceIndex = c?.evidenceIndex ?? 0;
  let batchesThisRun = 0;
  const carryOn = (): Promise<never> =>
    continueAsNew<typeof retention>({
      ...input,
      carried: { runId, plan, taskIndex, batch, auditBatch, evidenceIndex, summary },
    });

  while (taskIndex < plan.tasks.length) {
    const task = plan.tasks[taskIndex]!;
    const r = await acts.purgeRetentionBatch({ runId, task, batch, limit });
    summary.purged[task.kind] = (summary.purged[task.kind] ?? 0) + r.purged;
    if (r.heldBy.length > 0) {
      const known = summary.heldBy[task.kind] ?? [];
      summary.heldBy[task.kind] = [...new Set([...known, ...r.heldBy])].sort();
    }
    batchesThisRun += 1;
    if (r.done) {
      taskIndex += 1;
      batch = 0;
    } else batch += 1;
    if (batchesThisRun >= maxBatches || workflowInfo().continueAsNewSuggested) return carryOn();
  }

  if (plan.audit) {
    for (;;) {
      const r = await acts.purgeAuditSegment({ runId, batch: auditBatch, cutoff: plan.audit.cutoff });
      auditBatch += 1;
      batchesThisRun += 1;
      summary.auditRowsPurged += r.rows;
      if (r.rows > 0) summary.auditSegmentsPurged += 1;
      if (r.heldBy && r.heldBy.length > 0) summary.heldBy.audit = r.heldBy;
      if (r.stopped) break;
      if (batchesThisRun >= maxBatches || workflowInfo().continueAsNewSuggested) return carryOn();
    }
  }

  const evidence = plan.evidence ?? [];
  while (evidenceIndex < evidence.length) {
    const task = evidence[evidenceIndex]!;
    const r = await acts.purgeEvidence({ runId, task });
    summary.evidenceFilesPurged += r.purged;
    if (r.heldBy.length > 0) summary.heldBy.evidence = [...new Set([...(summary.heldBy.evidence ?? []), ...r.heldBy])];
    evidenceIndex += 1;
    batchesThisRun += 1;
    if (batchesThisRun >= maxBatches || workflowInfo().continueAsNewSuggested) return carryOn();
  }

  await acts.recordRetentionRun(summary);
  return { ...summary, status: 'completed' };
}
