/**
 * The shared tail of every read strategy: a batch of fetched resources is minimised for the integration's
 * purpose, encrypted under the tenant's current data key, and upserted with its audit events in one
 * transaction. Only counts leave: clinical content never reaches Temporal, logs or errors.
 */
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { encryptRecord, type DataKey } from '../crypto/envelope.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../fhir/minimise.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool } from '../store/pool.js';
import { advanceCheckpoint } from '../store/checkpoints.js';
import { withTransaction } from '../store/pool.js';
import type { Deletion, DeletionSource, RecordColumns, UpsertCounts } from '../store/records.js';
import { tombstoneRecords, upsertRecordColumns } from '../store/records.js';

/** Pseudonyms per audit event: keeps each event's details well under the 8 KB cap. */
const PSEUDONYMS_PER_EVENT = 200;

export interface FetchedResource {
  id: string;
  versionId: string;
  lastUpdated: string;
  resource: Record<string, unknown>;
  /**
   * The resource's JSON as the vendor served it (an NDJSON line), when at hand: stored as it is when minimisation
   * keeps everything, rather than serialised again. Read only while the resource is added to a batch.
   */
  raw?: Buffer;
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
  const batch = await SealedBatch.open(deps, ctx, scope);
  for (const item of items) batch.add(item);
  return batch.store(auditDetails);
}

/** A batch's first ciphertext arena (a thousand records of about 1.3 KB); it doubles when full. */
const ARENA_START_BYTES = 2 * 1024 * 1024;
/**
 * Arenas of stored batches, taken again by the next batches. A new one per batch lives through its commit, so
 * it outlives young-generation collections, and dead arenas piled up (megabytes each) until a full collection.
 * They hold ciphertext only, and a batch writes each byte before it is read.
 */
const spareArenas: Buffer[] = [];
const SPARE_ARENAS = 8;

/**
 * A batch sealed as it is filled: each resource is minimised and encrypted when added, so its parsed form can
 * go at once. What stays while the batch fills is columns — ids, versions, pseudonyms — and the ciphertexts end
 * to end in one buffer, not an object and a buffer per record (a streamed file's batches are where the worker's
 * heap grew). A resource added twice keeps its newest version. The data key and the pseudonym key are the
 * tenant's current ones when the batch opens. store() is storeResources' transaction.
 */
export class SealedBatch {
  private readonly columns: Omit<RecordColumns, 'ciphertexts'> = {
    resourceIds: [],
    versionIds: [],
    lastUpdated: [],
    patientPseudonyms: [],
    keyVersions: [],
    offsets: [],
    lengths: [],
  };
  private arena = spareArenas.pop() ?? Buffer.allocUnsafe(0);
  private used = 0;
  /** Where each id is in the columns, and its lastUpdated in ms (a later duplicate replaces it). */
  private readonly positionOf = new Map<string, { index: number; ms: number }>();
  private readonly pseudonyms = new Set<string>();
  private added = 0;
  private maxLastUpdated: string | null = null;
  private maxLastUpdatedMs = -Infinity;
  private dropped = 0;

  private constructor(
    private readonly deps: { pool: Pool },
    private readonly ctx: AuditContext,
    private readonly scope: StoreScope,
    private readonly dataKey: DataKey,
    private readonly pseudonymise: (value: string) => string,
  ) {}

  static async open(
    deps: { pool: Pool; keyring: TenantKeyring },
    ctx: AuditContext,
    scope: StoreScope,
  ): Promise<SealedBatch> {
    const dataKey = await deps.keyring.primaryDataKey(scope.tenantId, ctx);
    const pseudonymise = await deps.keyring.pseudonymiser(scope.tenantId);
    return new SealedBatch(deps, ctx, scope, dataKey, pseudonymise);
  }

  /** Resources added (a duplicate id counts each time it was added). */
  get size(): number {
    return this.added;
  }

  add(item: FetchedResource): void {
    const scope = this.scope;
    const ms = Date.parse(item.lastUpdated);
    const seen = this.positionOf.get(item.id);
    this.added += 1;
    // An older version of a resource already in the batch changes nothing (the newest wins, as in the store).
    if (seen && seen.ms > ms) return;
    const patientId = patientIdOf(scope.resourceType, item.resource);
    const pseudonym = patientId ? this.pseudonymise(patientId) : null;
    if (pseudonym) this.pseudonyms.add(pseudonym);
    const minimised = minimiseForPurpose(scope.resourceType, item.resource, scope.purpose);
    this.dropped += minimised.dropped;
    // Kept whole, the vendor's bytes are the stored form as they are: one serialisation less per resource.
    const plaintext =
      minimised.unchanged && item.raw ? item.raw : Buffer.from(JSON.stringify(minimised.resource), 'utf8');
    const recordCtx = {
      tenantId: scope.tenantId,
      integrationId: scope.integrationId,
      resourceType: scope.resourceType,
      resourceId: item.id,
    };
    const ciphertext = encryptRecord(this.dataKey, recordCtx, plaintext);
    const at = this.append(ciphertext);
    const c = this.columns;
    const index = seen ? seen.index : c.resourceIds.length;
    c.resourceIds[index] = item.id;
    c.versionIds[index] = item.versionId;
    c.lastUpdated[index] = item.lastUpdated;
    c.patientPseudonyms[index] = pseudonym;
    c.keyVersions[index] = this.dataKey.version;
    c.offsets[index] = at;
    c.lengths[index] = ciphertext.length;
    this.positionOf.set(item.id, { index, ms });
    if (this.maxLastUpdated === null || ms > this.maxLastUpdatedMs) {
      this.maxLastUpdated = item.lastUpdated;
      this.maxLastUpdatedMs = ms;
    }
  }

  /** Copies a ciphertext to the end of the arena (grown as needed); returns its offset. */
  private append(ciphertext: Buffer): number {
    if (this.used + ciphertext.length > this.arena.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(ARENA_START_BYTES, 2 * this.arena.length, this.used + ciphertext.length),
      );
      this.arena.copy(grown, 0, 0, this.used);
      this.arena = grown;
    }
    const at = this.used;
    this.used += ciphertext.copy(this.arena, at);
    return at;
  }

  /** Upsert and audit in one transaction. */
  async store(auditDetails: Record<string, unknown> = {}): Promise<StoredCounts> {
    const { ctx, scope, dropped } = this;
    const columns: RecordColumns = { ...this.columns, ciphertexts: this.arena.subarray(0, this.used) };
    let counts: UpsertCounts;
    try {
      counts = await withTransaction(this.deps.pool, async (client) => {
        const upserted = await upsertRecordColumns(client, scope, columns);
        const events = storedEvents(ctx, scope, { ...upserted, dropped, ...auditDetails }, [...this.pseudonyms]);
        await appendAuditEvents(client, events);
        return upserted;
      });
    } finally {
      // The query has been written out (or has failed): the arena goes back for the next batch; this one is done.
      if (this.arena.length > 0 && this.arena.length <= 2 * ARENA_START_BYTES && spareArenas.length < SPARE_ARENAS)
        spareArenas.push(this.arena);
      this.arena = Buffer.allocUnsafe(0);
      this.used = 0;
    }
    return { ...counts, dropped, maxLastUpdated: this.maxLastUpdated };
  }
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

/**
 * Moves a type's checkpoint forward (never back) with its audit event in one transaction; `auditDetails` says how
 * the type was read (identifiers and counts only). Returns the checkpoint as stored.
 */
export async function advanceTypeCheckpoint(
  deps: { pool: Pool },
  ctx: AuditContext,
  checkpoint: { tenantId: string; integrationId: string; resourceType: string; highWater: string },
  auditDetails: Record<string, unknown> = {},
): Promise<string> {
  return withTransaction(deps.pool, async (client) => {
    const stored = await advanceCheckpoint(client, { ...checkpoint, runId: ctx.correlationId });
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'sync.checkpoint_advanced',
        outcome: 'success',
        tenantId: checkpoint.tenantId,
        integrationId: checkpoint.integrationId,
        details: { resourceType: checkpoint.resourceType, highWater: stored, ...auditDetails },
      },
    ]);
    return stored;
  });
}
