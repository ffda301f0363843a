/**
 * How a change's write-back ends, each in one transaction with its audit event: sent (and the vendor's answer,
 * minimised and encrypted like a sync stores it, becomes the local record again — for a create, under the
 * vendor's id in place of the local one), refused (the vendor's status and OperationOutcome code kept, the
 * change kept), or a conflict (opened with both sides, the change parked on it). Audit details carry ids,
 * element names and codes only.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { encryptRecord } from '../crypto/envelope.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../fhir/minimise.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { upsertRecords } from '../store/records.js';
import type { ConflictReason, ConflictSides } from './conflicts.js';
import { openConflict } from './conflicts.js';
import type { OutboxChange } from './outbox-repository.js';
import { markChangeConflict, markChangeRefused, markChangeSent, pendingChangesOfRecord } from './outbox-repository.js';

export interface SettleDeps {
  pool: Pool;
  keyring: TenantKeyring;
}

export interface VendorAnswer {
  status: number;
  resourceId: string;
  versionId: string | null;
  lastUpdated: string | null;
  /** The vendor's resource as it answered (absent: it answered without a body). */
  resource?: Record<string, unknown>;
}

/** Stores the vendor's answer as the record (minimised, encrypted), replacing the local id's row for a create. */
async function storeAnswer(
  client: PoolClient,
  deps: SettleDeps,
  change: OutboxChange,
  purpose: Purpose,
  answer: VendorAnswer,
  audit: AuditContext,
): Promise<boolean> {
  if (!answer.resource || !answer.versionId || !answer.lastUpdated) return false;
  const type = change.resourceType as ResourceType;
  const scope = { tenantId: change.tenantId, integrationId: change.integrationId, resourceType: type };
  // A later local change of the record is still pending: its local version (which includes this one) stays.
  const later = await pendingChangesOfRecord(client, { ...scope, resourceId: change.resourceId });
  if (later.some((c) => c.id !== change.id)) return false;
  const dek = await deps.keyring.primaryDataKey(change.tenantId, audit);
  const pseudonymise = await deps.keyring.pseudonymiser(change.tenantId, audit);
  const minimised = minimiseForPurpose(type, answer.resource, purpose);
  const patientId = patientIdOf(type, answer.resource);
  const ciphertext = encryptRecord(
    dek,
    { ...scope, resourceId: answer.resourceId },
    Buffer.from(JSON.stringify(minimised.resource), 'utf8'),
  );
  // The local version (own version id, stamped when the change was made) gives way to the vendor's.
  await client.query(
    `DELETE FROM records WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4`,
    [scope.tenantId, scope.integrationId, type, change.resourceId],
  );
  await upsertRecords(client, scope, [
    {
      resourceId: answer.resourceId,
      versionId: answer.versionId,
      lastUpdated: answer.lastUpdated,
      patientPseudonym: patientId ? pseudonymise(patientId) : null,
      keyVersion: dek.version,
      ciphertext,
    },
  ]);
  return true;
}

export async function settleSent(
  deps: SettleDeps,
  change: OutboxChange,
  purpose: Purpose,
  answer: VendorAnswer,
  details: { elements: string[]; alreadyApplied: boolean },
  audit: AuditContext,
): Promise<boolean> {
  return withTransaction(deps.pool, async (client) => {
    const moved = await markChangeSent(client, change.id, {
      status: answer.status,
      resourceId: answer.resourceId,
      versionId: answer.versionId,
    });
    if (!moved) return false;
    const stored = await storeAnswer(client, deps, change, purpose, answer, audit);
    await appendAuditEvents(client, [
      {
        ...audit,
        action: 'writeback.sent',
        outcome: 'success',
        tenantId: change.tenantId,
        integrationId: change.integrationId,
        details: {
          changeId: change.id,
          kind: change.kind,
          resourceType: change.resourceType,
          resourceId: answer.resourceId,
          ...(change.kind === 'create' ? { localId: change.resourceId } : {}),
          vendorStatus: answer.status,
          vendorVersionId: answer.versionId,
          elements: details.elements,
          alreadyApplied: details.alreadyApplied,
          localRecordReplaced: stored,
        },
      },
    ]);
    return true;
  });
}

export async function settleRefused(
  deps: SettleDeps,
  change: OutboxChange,
  vendor: { status: number | null; outcomeCode: string | null },
  audit: AuditContext,
): Promise<boolean> {
  return withTransaction(deps.pool, async (client) => {
    if (!(await markChangeRefused(client, change.id, vendor))) return false;
    await appendAuditEvents(client, [
      {
        ...audit,
        action: 'writeback.refused',
        outcome: 'failure',
        tenantId: change.tenantId,
        integrationId: change.integrationId,
        details: {
          changeId: change.id,
          kind: change.kind,
          resourceType: change.resourceType,
          resourceId: change.resourceId,
          vendorStatus: vendor.status,
          outcomeCode: vendor.outcomeCode,
        },
      },
    ]);
    return true;
  });
}

/** Opens (or joins) the record's conflict and parks the change on it; returns the conflict id and whether new. */
export async function settleConflict(
  deps: SettleDeps,
  change: OutboxChange,
  conflict: { reason: ConflictReason; elements: string[]; sides: ConflictSides },
  audit: AuditContext,
): Promise<{ conflictId: string; opened: boolean }> {
  return withTransaction(deps.pool, async (client) => {
    const { id, opened } = await openConflict(
      client,
      deps.keyring,
      {
        tenantId: change.tenantId,
        integrationId: change.integrationId,
        resourceType: change.resourceType,
        resourceId: change.resourceId,
        source: 'write-back',
        changeId: change.id,
        reason: conflict.reason,
        elements: conflict.elements,
        sides: conflict.sides,
      },
      audit,
    );
    if (!(await markChangeConflict(client, change.id, id))) throw new Error('change left pending meanwhile');
    await appendAuditEvents(client, [
      {
        ...audit,
        action: 'writeback.conflict',
        outcome: 'failure',
        tenantId: change.tenantId,
        integrationId: change.integrationId,
        details: {
          changeId: change.id,
          conflictId: id,
          reason: conflict.reason,
          resourceType: change.resourceType,
          resourceId: change.resourceId,
          elements: conflict.elements,
        },
      },
    ]);
    return { conflictId: id, opened };
  });
}
