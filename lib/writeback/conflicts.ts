/**
 * Conflicts: what neither the authority policy nor write-back can decide, waiting for a person. Opened by
 * reconciliation (both sides changed a shared element, a record with local changes deleted at the vendor) and by
 * write-back (the vendor deleted or changed the record under a pending change). Each open conflict is worked by
 * its conflictResolution workflow (`conflict-<id>`, reminders and escalation on durable timers, resolved by a
 * workflow update). Both sides' values are encrypted here; the row, the workflow and the audit events carry ids,
 * element names and codes only.
 */
import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { RecordContext } from '../crypto/envelope.js';
import { decryptRecord, encryptRecord } from '../crypto/envelope.js';
import { NotFoundError } from '../errors/index.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { PoolClient, Queryable } from '../store/pool.js';

export type ConflictSource = 'reconcile' | 'write-back';
export type ConflictReason = 'both-changed' | 'deleted-remote' | 'missing-remote' | 'stale-write';

/** The two sides of the disputed elements (absent side: null), encrypted in the row. */
export interface ConflictSides {
  local: Record<string, unknown> | null;
  remote: Record<string, unknown> | null;
}

export interface NewConflict {
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
  source: ConflictSource;
  runId?: string;
  changeId?: string;
  reason: ConflictReason;
  elements: readonly string[];
  sides: ConflictSides;
}

function conflictContext(c: { tenantId: string; integrationId: string }, id: string): RecordContext {
  return { tenantId: c.tenantId, integrationId: c.integrationId, resourceType: 'ReconcileConflict', resourceId: id };
}

/**
 * Opens a conflict with its `reconcile.conflict_opened` audit event, in the caller's transaction. A record holds
 * at most one open conflict: when it already has one, that one's id is returned and nothing is stored
 * (`opened: false`). After commit the caller starts its workflow (ConflictNotifier.conflictOpened).
 */
export async function openConflict(
  client: PoolClient,
  keyring: TenantKeyring,
  conflict: NewConflict,
  audit: AuditContext,
): Promise<{ id: string; opened: boolean }> {
  const existing = await client.query<{ id: string }>(
    `SELECT id FROM reconcile_conflicts WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3
        AND resource_id = $4 AND status = 'open'`,
    [conflict.tenantId, conflict.integrationId, conflict.resourceType, conflict.resourceId],
  );
  if (existing.rows[0]) return { id: existing.rows[0].id, opened: false };
  const id = randomUUID();
  const dek = await keyring.primaryDataKey(conflict.tenantId, audit);
  const plaintext = Buffer.from(JSON.stringify(conflict.sides), 'utf8');
  const ciphertext = encryptRecord(dek, conflictContext(conflict, id), plaintext);
  await client.query(
    `INSERT INTO reconcile_conflicts (id, tenant_id, integration_id, resource_type, resource_id, source, run_id,
       change_id, reason, elements, key_version, ciphertext, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'open')`,
    [
      id,
      conflict.tenantId,
      conflict.integrationId,
      conflict.resourceType,
      conflict.resourceId,
      conflict.source,
      conflict.runId ?? null,
      conflict.changeId ?? null,
      conflict.reason,
      [...conflict.elements],
      dek.version,
      ciphertext,
    ],
  );
  await appendAuditEvents(client, [
    {
      ...audit,
      action: 'reconcile.conflict_opened',
      outcome: 'success',
      tenantId: conflict.tenantId,
      integrationId: conflict.integrationId,
      details: {
        conflictId: id,
        source: conflict.source,
        reason: conflict.reason,
        resourceType: conflict.resourceType,
        resourceId: conflict.resourceId,
        elements: [...conflict.elements],
        ...(conflict.runId ? { runId: conflict.runId } : {}),
        ...(conflict.changeId ? { changeId: conflict.changeId } : {}),
      },
    },
  ]);
  return { id, opened: true };
}

/** Decrypts a conflict's two sides (resolution and the decode-role diff only). */
export async function openConflictSides(db: Queryable, keyring: TenantKeyring, id: string): Promise<ConflictSides> {
  const res = await db.query<{ tenant_id: string; integration_id: string; ciphertext: Buffer }>(
    'SELECT tenant_id, integration_id, ciphertext FROM reconcile_conflicts WHERE id = $1',
    [id],
  );
  const row = res.rows[0];
  if (!row) throw new NotFoundError('conflict', id);
  const scope = { tenantId: row.tenant_id, integrationId: row.integration_id };
  const plain = await decryptRecord(row.ciphertext, conflictContext(scope, id), (t, v) => keyring.dataKey(t, v));
  return JSON.parse(plain.toString('utf8')) as ConflictSides;
}
