/** What the retention test files share: ageing stored records, reading them back, running the workflow. */
import { randomUUID } from 'node:crypto';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import type { RetentionInput, RetentionResult } from '../../workflows/retention.js';
import { testEnv } from '../harness.js';
import type { SyncHarness } from './support.js';

export async function asOwner<T>(fn: (owner: Pool) => Promise<T>): Promise<T> {
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    return await fn(owner);
  } finally {
    await owner.end();
  }
}

/** Moves the tenant's records of a type back in time (stored_at), `days` ago, one millisecond apart. */
export async function age(tenantId: string, type: string, days: number, count?: number): Promise<string[]> {
  return asOwner(async (owner) => {
    const ids = (
      await owner.query<{ resource_id: string }>(
        `SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = $2 ORDER BY resource_id
         ${count === undefined ? '' : `LIMIT ${count}`}`,
        [tenantId, type],
      )
    ).rows.map((r) => r.resource_id);
    await owner.query(
      `UPDATE records r SET stored_at = now() - make_interval(days => $3) + (x.n * interval '1 millisecond')
         FROM unnest($4::text[]) WITH ORDINALITY AS x(id, n)
        WHERE r.tenant_id = $1 AND r.resource_type = $2 AND r.resource_id = x.id`,
      [tenantId, type, days, ids],
    );
    return ids;
  });
}

export async function ids(harness: SyncHarness, tenantId: string, type: string): Promise<string[]> {
  const res = await harness.pool.query<{ resource_id: string }>(
    'SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = $2 ORDER BY resource_id',
    [tenantId, type],
  );
  return res.rows.map((r) => r.resource_id);
}

export async function runRetention(harness: SyncHarness, input: RetentionInput): Promise<RetentionResult> {
  const handle = await harness.temporal.client.workflow.start('retention', {
    taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
    workflowId: `retention/test/${randomUUID()}`,
    args: [input],
  });
  return (await handle.result()) as RetentionResult;
}

export interface PurgeEvent {
  seq: string;
  correlation_id: string;
  details: { count?: number; kind: string; patientPseudonyms: string[]; byType?: Record<string, number> };
}

export async function purgeEvents(harness: SyncHarness, tenantId: string): Promise<PurgeEvent[]> {
  const res = await harness.pool.query<PurgeEvent>(
    `SELECT seq::text, correlation_id, details FROM audit_events
      WHERE tenant_id = $1 AND action = 'retention.records_purged' ORDER BY audit_events.seq`,
    [tenantId],
  );
  return res.rows;
}

export const purgedCount = (events: PurgeEvent[]) => events.reduce((n, e) => n + (e.details.count ?? 0), 0);
