/**
 * Purges what is past its retention, one batch per call (the retention workflow's activities call these).
 *
 * Every batch is one transaction: the rows it deletes, the audit event(s) recording them (counts, types and
 * patient pseudonyms — never content or resource ids) and a ledger row (`retention_purge_batches`, keyed by
 * the run and the batch) commit together or not at all. So an interrupted batch leaves nothing half-deleted;
 * a batch repeated after its reply was lost finds its ledger row and returns what it did without deleting
 * more; and a new run simply finds fewer rows past due. Holds are read under a lock that new holds wait for
 * (lib/retention/holds.ts): nothing a standing hold covers is deleted.
 */
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { DataClass } from '../fhir/data-classes.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { ActiveHold } from './holds.js';
import { activeLegalHolds, heldIntegrations, lockHoldsForPurge } from './holds.js';
import { typesOfRetentionClass } from './rules.js';

export interface PurgeBatchInput {
  /** The retention run (its workflow run id): with `batchKey`, the batch's idempotency key. */
  runId: string;
  batchKey: string;
  tenantId: string;
  /** Rows stored/received before this instant are past due (fixed when the run was planned). */
  cutoff: string;
  limit: number;
}

export interface PurgeBatchResult {
  purged: number;
  /** Fewer than `limit` were past due and unheld: this kind is done for the tenant in this run. */
  done: boolean;
  /** The holds that kept something of this tenant (ids), for the run's report. */
  heldBy: string[];
  /** This batch had committed before (its reply was lost): nothing more was deleted. */
  replayed: boolean;
}

const PSEUDONYMS_PER_EVENT = 60;

async function ledgerOf(client: PoolClient, runId: string, batchKey: string): Promise<number | undefined> {
  const res = await client.query<{ purged: number }>(
    'SELECT purged FROM retention_purge_batches WHERE run_id = $1 AND batch_key = $2',
    [runId, batchKey],
  );
  return res.rows[0]?.purged;
}

async function writeLedger(
  client: PoolClient,
  input: { runId: string; batchKey: string; kind: string; tenantId: string | null; purged: number },
): Promise<void> {
  await client.query(
    'INSERT INTO retention_purge_batches (run_id, batch_key, kind, tenant_id, purged) VALUES ($1, $2, $3, $4, $5)',
    [input.runId, input.batchKey, input.kind, input.tenantId, input.purged],
  );
}

function heldIds(tenant: ActiveHold | undefined, integrations: Map<string, ActiveHold>): string[] {
  return [...new Set([...(tenant ? [tenant.id] : []), ...[...integrations.values()].map((h) => h.id)])].sort();
}

/**
 * A purge batch's frame: a batch already in the run's ledger answers from it (a retried activity purges nothing
 * twice); otherwise the holds are locked and read, `purge` deletes outside the held integrations (nothing at all
 * under a tenant-wide hold) and the ledger records the count, all in one transaction.
 */
async function purgeBatch(
  pool: Pool,
  input: PurgeBatchInput,
  kind: string,
  purge: (client: PoolClient, heldIntegrationIds: string[]) => Promise<number>,
): Promise<PurgeBatchResult> {
  return withTransaction(pool, async (client) => {
    const seen = await ledgerOf(client, input.runId, input.batchKey);
    if (seen !== undefined) return { purged: seen, done: seen < input.limit, heldBy: [], replayed: true };
    await lockHoldsForPurge(client);
    const { tenant, integrations } = await heldIntegrations(client, await activeLegalHolds(client), input.tenantId);
    const purged = tenant ? 0 : await purge(client, [...integrations.keys()]);
    await writeLedger(client, { ...input, kind, purged });
    return { purged, done: purged < input.limit, heldBy: heldIds(tenant, integrations), replayed: false };
  });
}

/** One batch of a tenant's records of one data class, stored before the cutoff, outside every hold. */
export async function purgeRecordsBatch(
  pool: Pool,
  input: PurgeBatchInput & { dataClass: DataClass },
  ctx: AuditContext,
): Promise<PurgeBatchResult> {
  const kind = `records:${input.dataClass}`;
  return purgeBatch(pool, input, kind, async (client, heldIntegrationIds) => {
    const types = typesOfRetentionClass(input.dataClass);
    const deleted = (
      await client.query<{ resource_type: string; patient_pseudonym: string | null; integration_id: string }>(
        `DELETE FROM records r USING (
               SELECT tenant_id, integration_id, resource_type, resource_id FROM records
                WHERE tenant_id = $1 AND resource_type = ANY ($2::text[]) AND stored_at < $3
                  AND NOT (integration_id = ANY ($4::text[]))
                ORDER BY stored_at, resource_type, resource_id LIMIT $5 FOR UPDATE SKIP LOCKED) due
             WHERE r.tenant_id = due.tenant_id AND r.integration_id = due.integration_id
               AND r.resource_type = due.resource_type AND r.resource_id = due.resource_id
             RETURNING r.resource_type, r.patient_pseudonym, r.integration_id`,
        [input.tenantId, types, input.cutoff, heldIntegrationIds, input.limit],
      )
    ).rows;
    if (deleted.length > 0) {
      const byType: Record<string, number> = {};
      const byIntegration: Record<string, number> = {};
      for (const r of deleted) {
        byType[r.resource_type] = (byType[r.resource_type] ?? 0) + 1;
        byIntegration[r.integration_id] = (byIntegration[r.integration_id] ?? 0) + 1;
      }
      const pseudonyms = [...new Set(deleted.flatMap((r) => (r.patient_pseudonym ? [r.patient_pseudonym] : [])))];
      const events: AuditEvent[] = [];
      for (let i = 0; i === 0 || i < pseudonyms.length; i += PSEUDONYMS_PER_EVENT) {
        events.push({
          ...ctx,
          action: 'retention.records_purged',
          outcome: 'success',
          tenantId: input.tenantId,
          details: {
            runId: input.runId,
            batch: input.batchKey,
            kind,
            cutoff: input.cutoff,
            // The counts go on the batch's first event; the rest carry the remaining pseudonyms.
            ...(i === 0 ? { count: deleted.length, byType, byIntegration } : { continued: true }),
            patientPseudonyms: pseudonyms.slice(i, i + PSEUDONYMS_PER_EVENT),
          },
        });
      }
      await appendAuditEvents(client, events);
    }
    return deleted.length;
  });
}

/** One batch of a tenant's signalled webhook deliveries received before the cutoff, outside every hold. */
export async function purgeWebhookDeliveriesBatch(
  pool: Pool,
  input: PurgeBatchInput,
  ctx: AuditContext,
): Promise<PurgeBatchResult> {
  return purgeBatch(pool, input, 'webhook-deliveries', async (client, heldIntegrationIds) => {
    const res = await client.query<{ n: string }>(
      'SELECT retention_purge_webhook_deliveries($1, $2, $3::text[], $4)::text AS n',
      [input.tenantId, input.cutoff, heldIntegrationIds, input.limit],
    );
    const purged = Number(res.rows[0]?.n ?? 0);
    if (purged > 0) {
      await appendAuditEvents(client, [
        {
          ...ctx,
          action: 'retention.webhook_deliveries_purged',
          outcome: 'success',
          tenantId: input.tenantId,
          details: { runId: input.runId, batch: input.batchKey, cutoff: input.cutoff, count: purged },
        },
      ]);
    }
    return purged;
  });
}
