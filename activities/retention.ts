/**
 * Activities of the retention workflow (workflows/retention.ts): plan a run, purge one batch per call
 * (records of one data class, webhook deliveries, the oldest audit segment) and record the run's totals.
 * Every batch is one transaction with its audit event and a ledger row keyed by the run and the batch
 * (lib/retention/purge.ts), so a retried batch never deletes twice; each heartbeats before it starts and
 * after it commits.
 */
import { Context } from '@temporalio/activity';
import { recordAuditEvent } from '../lib/audit/chain.js';
import { InvalidArgumentError } from '../lib/errors/index.js';
import { purgeOldestAuditSegment } from '../lib/retention/audit-segments.js';
import type { AuditSegmentPurgeResult } from '../lib/retention/audit-segments.js';
import type { EvidencePurgeResult, EvidenceTask } from '../lib/retention/evidence.js';
import { purgeIncidentEvidence } from '../lib/retention/evidence.js';
import type { PurgeTask, RetentionPlan } from '../lib/retention/plan.js';
import { planRetention } from '../lib/retention/plan.js';
import { purgeRecordsBatch, purgeWebhookDeliveriesBatch } from '../lib/retention/purge.js';
import { isDataClass } from '../lib/retention/rules.js';
import type { PurgeBatchResult } from '../lib/retention/purge.js';
import type { Pool } from '../lib/store/pool.js';
import { activityAuditContext } from './audit-context.js';
import { atActivityBoundary } from './boundary.js';

export interface RetentionActivityDeps {
  pool: Pool;
  /** Where incident evidence is written (as for containment); only files under it are removed. */
  evidenceDir: string;
}

export interface RetentionRunSummary {
  runId: string;
  tenantId?: string;
  purged: Record<string, number>;
  auditRowsPurged: number;
  auditSegmentsPurged: number;
  evidenceFilesPurged: number;
  /** Holds that kept something past due, by kind. */
  heldBy: Record<string, string[]>;
}

function heartbeat(details: unknown): void {
  Context.current().heartbeat(details);
}

export function createRetentionSteps(deps: RetentionActivityDeps) {
  return {
    async planRetentionRun(input: { tenantId?: string }): Promise<RetentionPlan> {
      return planRetention(deps.pool, input.tenantId === undefined ? {} : { tenantId: input.tenantId });
    },

    async purgeRetentionBatch(input: {
      runId: string;
      task: PurgeTask;
      batch: number;
      limit: number;
    }): Promise<PurgeBatchResult> {
      const { task } = input;
      const batchKey = `${task.tenantId}/${task.kind}/${input.batch}`;
      heartbeat({ batchKey, phase: 'start' });
      const common = { runId: input.runId, batchKey, tenantId: task.tenantId, cutoff: task.cutoff, limit: input.limit };
      let result: PurgeBatchResult;
      if (task.kind === 'webhook-deliveries') {
        result = await purgeWebhookDeliveriesBatch(deps.pool, common, activityAuditContext());
      } else {
        const dataClass = task.kind.slice('records:'.length);
        if (!isDataClass(dataClass)) throw new InvalidArgumentError('retention kind', 'unknown data class');
        result = await purgeRecordsBatch(deps.pool, { ...common, dataClass }, activityAuditContext());
      }
      heartbeat({ batchKey, phase: 'committed', purged: result.purged });
      return result;
    },

    async purgeAuditSegment(input: { runId: string; batch: number; cutoff: string }): Promise<AuditSegmentPurgeResult> {
      const batchKey = `audit/${input.batch}`;
      heartbeat({ batchKey, phase: 'start' });
      const result = await purgeOldestAuditSegment(
        deps.pool,
        { runId: input.runId, batchKey, cutoff: input.cutoff },
        activityAuditContext(),
      );
      heartbeat({ batchKey, phase: 'committed', rows: result.rows });
      return result;
    },

    async purgeEvidence(input: { runId: string; task: EvidenceTask }): Promise<EvidencePurgeResult> {
      const batchKey = `evidence/${input.task.incidentId}`;
      heartbeat({ batchKey, phase: 'start' });
      const result = await purgeIncidentEvidence(
        deps.pool,
        { runId: input.runId, batchKey, task: input.task, evidenceDir: deps.evidenceDir },
        activityAuditContext(),
      );
      heartbeat({ batchKey, phase: 'committed', purged: result.purged });
      return result;
    },

    async recordRetentionRun(summary: RetentionRunSummary): Promise<void> {
      await recordAuditEvent(deps.pool, {
        ...activityAuditContext(),
        action: 'retention.run_completed',
        outcome: 'success',
        tenantId: summary.tenantId ?? null,
        details: { ...summary },
      });
    },
  };
}

export function createRetentionActivities(deps: RetentionActivityDeps) {
  return atActivityBoundary(createRetentionSteps(deps));
}

export type RetentionActivities = ReturnType<typeof createRetentionSteps>;
