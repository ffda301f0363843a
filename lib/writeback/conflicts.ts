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
import type { ConflictReason, ConflictSource } from './conflict-repository.js';
import { conflictCiphertext, getConflict, insertConflictRow, openConflictOf } from './conflict-repository.js';

export type { ConflictReason, ConflictSource } from './conflict-repository.js';

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
 * Call it before anything else in the transaction appends audit events: loading a data key that is not cached audits
 * the unwrap on another connection, which would wait forever on the audit-head lock this transaction then holds.
 */
export async function openConflict(
  client: PoolClient,
  keyring: TenantKeyring,
  conflict: NewConflict,
  audit: AuditContext,
): Promise<{ id: string; opened: boolean }> {
  const existing = await openConflictOf(client, conflict);
  if (existing !== undefined) return { id: existing, opened: false };
  const id = randomUUID();
  const dek = await keyring.primaryDataKey(conflict.tenantId, audit);
  const plaintext = Buffer.from(JSON.stringify(conflict.sides), 'utf8');
  const ciphertext = encryptRecord(dek, conflictContext(conflict, id), plaintext);
  await insertConflictRow(client, {
    id,
    tenantId: conflict.tenantId,
    integrationId: conflict.integrationId,
    resourceType: conflict.resourceType,
    resourceId: conflict.resourceId,
    source: conflict.source,
    runId: conflict.runId ?? null,
    changeId: conflict.changeId ?? null,
    reason: conflict.reason,
    elements: conflict.elements,
    keyVersion: dek.version,
    ciphertext,
  });
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
  const row = await conflictCiphertext(db, id);
  if (!row) throw new NotFoundError('conflict', id);
  const plain = await decryptRecord(row.ciphertext, conflictContext(row, id), (t, v) => keyring.dataKey(t, v));
  return JSON.parse(plain.toString('utf8')) as ConflictSides;
}

/** Both sides of a conflict's disputed elements, for a caller holding the decode role (workers/codec-server.ts). */
export interface ConflictDiff {
  conflictId: string;
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
  reason: ConflictReason;
  status: string;
  elements: string[];
  /** element -> value on each side (null: absent on that side). */
  local: Record<string, unknown>;
  remote: Record<string, unknown>;
}

/** The decoded diff of a conflict; undefined when there is no such conflict. */
export async function conflictDiff(
  db: Queryable,
  keyring: TenantKeyring,
  id: string,
): Promise<ConflictDiff | undefined> {
  const row = await getConflict(db, id);
  if (!row) return undefined;
  const sides = await openConflictSides(db, keyring, id);
  const pick = (side: Record<string, unknown> | null) =>
    Object.fromEntries(row.elements.map((e) => [e, side && Object.hasOwn(side, e) ? side[e] : null]));
  return {
    conflictId: row.id,
    tenantId: row.tenantId,
    integrationId: row.integrationId,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    reason: row.reason,
    status: row.status,
    elements: row.elements,
    local: pick(sides.local),
    remote: pick(sides.remote),
  };
}
