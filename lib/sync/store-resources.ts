/**
 * The shared tail of every read strategy: a batch of fetched resources is minimised for the integration's
 * purpose, encrypted under the tenant's current data key, and upserted with its audit events in one
 * transaction. Only counts leave: clinical content never reaches Temporal, logs or errors.
 */
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { encryptRecord } from '../crypto/envelope.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../fhir/minimise.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { Deletion, DeletionSource, EncryptedRecord } from '../store/records.js';
import { tombstoneRecords, upsertRecords } from '../store/records.js';

/** Pseudonyms per audit event: keeps each event's details well under the 8 KB cap. */
const PSEUDONYMS_PER_EVENT = 200;

export interface FetchedResource {
  id: string;
  versionId: string;
  lastUpdated: string;
  resource: Record<string, unknown>;
}

export interface StoreScope {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  purpose: Purpose;
}

export interface StoredCounts {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Top-level elements minimisation dropped (unclassified, or of a class the purpose does not allow). */
  dropped: number;
  /** The newest `meta.lastUpdated` in the batch (null for an empty batch). */
  maxLastUpdated: string | null;
}

export async function storeResources(
  deps: { pool: Pool; keyring: TenantKeyring },
  ctx: AuditContext,
  scope: StoreScope,
  items: readonly FetchedResource[],
  /** Identifiers only (e.g. the bulk file and line range), added to the first audit event. */
  auditDetails: Record<string, unknown> = {},
): Promise<StoredCounts> {
  const dataKey = await deps.keyring.primaryDataKey(scope.tenantId, ctx);
  const records: EncryptedRecord[] = [];
  const pseudonyms = new Set<string>();
  // A patient's pseudonym once per batch (an HMAC each), however many of their resources the batch holds.
  const pseudonymOf = new Map<string, string>();
  let maxLastUpdated: string | null = null;
  let maxLastUpdatedMs = -Infinity;
  let dropped = 0;
  for (const item of items) {
    const patientId = patientIdOf(scope.resourceType, item.resource);
    let pseudonym: string | null = null;
    if (patientId) {
      pseudonym = pseudonymOf.get(patientId) ?? (await deps.keyring.pseudonymise(scope.tenantId, patientId));
      pseudonymOf.set(patientId, pseudonym);
      pseudonyms.add(pseudonym);
    }
    const minimised = minimiseForPurpose(scope.resourceType, item.resource, scope.purpose);
    dropped += minimised.dropped;
    const plaintext = Buffer.from(JSON.stringify(minimised.resource), 'utf8');
    const recordCtx = {
      tenantId: scope.tenantId,
      integrationId: scope.integrationId,
      resourceType: scope.resourceType,
      resourceId: item.id,
    };
    records.push({
      resourceId: item.id,
      versionId: item.versionId,
      lastUpdated: item.lastUpdated,
      patientPseudonym: pseudonym,
      keyVersion: dataKey.version,
      ciphertext: encryptRecord(dataKey, recordCtx, plaintext),
    });
    const ms = Date.parse(item.lastUpdated);
    if (maxLastUpdated === null || ms > maxLastUpdatedMs) {
      maxLastUpdated = item.lastUpdated;
      maxLastUpdatedMs = ms;
    }
  }

  const counts = await withTransaction(deps.pool, async (client) => {
    const upserted = await upsertRecords(client, scope, records);
    const events = storedEvents(ctx, scope, { ...upserted, dropped, ...auditDetails }, [...pseudonyms]);
    await appendAuditEvents(client, events);
    return upserted;
  });
  return { ...counts, dropped, maxLastUpdated };
}

function storedEvents(
  ctx: AuditContext,
  scope: StoreScope,
  details: Record<string, unknown>,
  pseudonyms: string[],
): AuditEvent[] {
  const base = {
    ...ctx,
    action: 'records.stored',
    outcome: 'success' as const,
    tenantId: scope.tenantId,
    integrationId: scope.integrationId,
  };
  const events: AuditEvent[] = [];
  for (let i = 0; i === 0 || i < pseudonyms.length; i += PSEUDONYMS_PER_EVENT) {
    events.push({
      ...base,
      details: {
        resourceType: scope.resourceType,
        ...(i === 0 ? details : {}),
        patients: pseudonyms.slice(i, i + PSEUDONYMS_PER_EVENT),
      },
    });
  }
  return events;
}

export interface DeletedCounts {
  /** Stored records removed. */
  removed: number;
  /** Deletions recorded as tombstones (including resources never stored). */
  tombstoned: number;
}

/** The vendor's deletions of one type: tombstones, removed ciphertext and their audit event in one transaction. */
export async function applyDeletions(
  deps: { pool: Pool },
  ctx: AuditContext,
  scope: Omit<StoreScope, 'purpose'>,
  deletions: readonly Deletion[],
  how: DeletionSource,
  auditDetails: Record<string, unknown> = {},
): Promise<DeletedCounts> {
  if (deletions.length === 0) return { removed: 0, tombstoned: 0 };
  return withTransaction(deps.pool, async (client) => {
    const counts = await tombstoneRecords(client, scope, deletions, how, ctx.correlationId);
    const base = {
      ...ctx,
      action: 'records.deleted',
      outcome: 'success' as const,
      tenantId: scope.tenantId,
      integrationId: scope.integrationId,
    };
    const events: AuditEvent[] = [];
    for (let i = 0; i === 0 || i < counts.pseudonyms.length; i += PSEUDONYMS_PER_EVENT) {
      const first = { how, removed: counts.removed, tombstoned: counts.tombstoned, ...auditDetails };
      events.push({
        ...base,
        details: {
          resourceType: scope.resourceType,
          ...(i === 0 ? first : {}),
          patients: counts.pseudonyms.slice(i, i + PSEUDONYMS_PER_EVENT),
        },
      });
    }
    await appendAuditEvents(client, events);
    return { removed: counts.removed, tombstoned: counts.tombstoned };
  });
}
