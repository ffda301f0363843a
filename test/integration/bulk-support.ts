/** Running the Bulk Data workflow against the sandbox in integration tests, and reading back what it did. */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { ResourceType } from '../../lib/domain.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import { testEnv } from '../harness.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import type { BulkExportInput } from '../../workflows/bulk-export.js';
import type { bulkExport } from '../../workflows/bulk-export.js';

export type BulkHandle = WorkflowHandle<typeof bulkExport>;

export async function startBulkExport(
  client: Client,
  taskQueue: string,
  input: Omit<BulkExportInput, 'level' | 'types'> & { level?: BulkExportInput['level']; types: ResourceType[] },
): Promise<BulkHandle> {
  const { types, ...rest } = input;
  return client.workflow.start<typeof bulkExport>('bulkExport', {
    taskQueue,
    workflowId: `bulk-test/${input.integrationId}/${randomUUID()}`,
    args: [{ level: 'system', ...rest, types: types.map((resourceType) => ({ resourceType, since: null })) }],
  });
}

/** The stable code a failed workflow ends with (the innermost ApplicationFailure's type) and its message. */
export async function failureOf(handle: BulkHandle): Promise<{ type: string; message: string }> {
  try {
    await handle.result();
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    let cause: unknown = err.cause;
    let last: ApplicationFailure | undefined;
    while (cause instanceof Error) {
      if (cause instanceof ApplicationFailure) last = cause;
      cause = (cause as { cause?: unknown }).cause;
    }
    if (!last) throw err;
    return { type: last.type ?? '', message: last.message };
  }
  throw new Error('the export was expected to fail');
}

export async function checkpointsOf(pool: Pool, tenantId: string, integrationId: string): Promise<Map<string, string>> {
  return readCheckpoints(pool, tenantId, integrationId);
}

export async function tombstonesOf(
  pool: Pool,
  tenantId: string,
  integrationId: string,
): Promise<Array<{ type: string; id: string; how: string }>> {
  const res = await pool.query<{ resource_type: string; resource_id: string; learned_how: string }>(
    `SELECT resource_type, resource_id, learned_how FROM record_tombstones
      WHERE tenant_id = $1 AND integration_id = $2 ORDER BY 1, 2`,
    [tenantId, integrationId],
  );
  return res.rows.map((r) => ({ type: r.resource_type, id: r.resource_id, how: r.learned_how }));
}

/**
 * Allowed file hosts are written only through the owner's functions (lib/integrations); the test acts as the
 * operator with the owner's connection.
 */
export async function allowFileHosts(integrationId: string, hosts: string[]): Promise<void> {
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    await owner.query('UPDATE integrations SET bulk_file_hosts = $2 WHERE id = $1', [integrationId, hosts]);
  } finally {
    await owner.end();
  }
}
