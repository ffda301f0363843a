/**
 * The write-back outbox's door: a change enters encrypted, with its audit event, in the caller's transaction
 * (the gateway stores the local version of the record in the same one), and only the writeBack activities open
 * it again. The ciphertext's AAD names the outbox row (resource type `OutboxChange`, resource id = change id),
 * so a ciphertext moved to another row, tenant or integration does not decrypt.
 */
import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { RecordContext } from '../crypto/envelope.js';
import { decryptRecord, encryptRecord } from '../crypto/envelope.js';
import { NotFoundError } from '../errors/index.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { PoolClient, Queryable } from '../store/pool.js';
import type { ChangeKind, ChangeOrigin } from './outbox-repository.js';
import { insertOutboxRow, outboxCiphertext } from './outbox-repository.js';

/**
 * What a change carries, encrypted.
 *   update: `elements` maps each changed element to its new local value (null: removed locally), and `base` the
 *     same elements' values in the version the change was made against (null: absent) — what write-back compares
 *     the vendor's current values with, to tell whether the vendor changed them too;
 *   create: `resource` is the whole resource as the organisation's system created it (without id/meta).
 */
export type ChangePayload =
  | { kind: 'update'; elements: Record<string, unknown>; base: Record<string, unknown> }
  | { kind: 'create'; resource: Record<string, unknown> };

export interface NewChange {
  tenantId: string;
  integrationId: string;
  resourceType: string;
  /** update: the vendor's id; create: the local id the gateway assigned. */
  resourceId: string;
  origin: ChangeOrigin;
  /** `consumer:<id>`, `reconcile:<run>` or a person. */
  requestedBy: string;
  baseVersionId: string | null;
  payload: ChangePayload;
  /** Defaults to a fresh key; a caller that may repeat the same change passes a stable one. */
  idempotencyKey?: string;
}

function outboxContext(change: { tenantId: string; integrationId: string }, id: string): RecordContext {
  return {
    tenantId: change.tenantId,
    integrationId: change.integrationId,
    resourceType: 'OutboxChange',
    resourceId: id,
  };
}

/** Element names a payload changes (for listing; values stay encrypted). */
export function changedElementsOf(payload: ChangePayload): string[] {
  const names = payload.kind === 'update' ? Object.keys(payload.elements) : Object.keys(payload.resource);
  return names.filter((n) => n !== 'resourceType').sort();
}

/**
 * Encrypts and queues one change with its `writeback.change_queued` audit event, in the caller's transaction.
 * Returns the change id, and whether it was new (false: the idempotency key was already queued, nothing stored).
 * Call it before anything else in the transaction appends audit events: loading a data key that is not cached audits
 * the unwrap on another connection, which would wait forever on the audit-head lock this transaction then holds.
 */
export async function enqueueChange(
  client: PoolClient,
  keyring: TenantKeyring,
  change: NewChange,
  audit: AuditContext,
): Promise<{ id: string; queued: boolean }> {
  const id = randomUUID();
  const dek = await keyring.primaryDataKey(change.tenantId, audit);
  const plaintext = Buffer.from(JSON.stringify(change.payload), 'utf8');
  const ciphertext = encryptRecord(dek, outboxContext(change, id), plaintext);
  const kind: ChangeKind = change.payload.kind;
  const changedElements = changedElementsOf(change.payload);
  const queued = await insertOutboxRow(client, {
    id,
    tenantId: change.tenantId,
    integrationId: change.integrationId,
    resourceType: change.resourceType,
    resourceId: change.resourceId,
    kind,
    origin: change.origin,
    requestedBy: change.requestedBy,
    baseVersionId: change.baseVersionId,
    changedElements,
    keyVersion: dek.version,
    ciphertext,
    idempotencyKey: change.idempotencyKey ?? `outbox-${id}`,
  });
  if (queued) {
    await appendAuditEvents(client, [
      {
        ...audit,
        action: 'writeback.change_queued',
        outcome: 'success',
        tenantId: change.tenantId,
        integrationId: change.integrationId,
        details: {
          changeId: id,
          kind,
          origin: change.origin,
          resourceType: change.resourceType,
          resourceId: change.resourceId,
          elements: changedElements,
        },
      },
    ]);
  }
  return { id, queued };
}

/** Decrypts a queued change (writeBack activities and the decode-role diff only). */
export async function openChange(db: Queryable, keyring: TenantKeyring, id: string): Promise<ChangePayload> {
  const row = await outboxCiphertext(db, id);
  if (!row) throw new NotFoundError('outbox change', id);
  const plain = await decryptRecord(row.ciphertext, outboxContext(row, id), (t, v) => keyring.dataKey(t, v));
  return JSON.parse(plain.toString('utf8')) as ChangePayload;
}
