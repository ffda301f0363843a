/**
 * Applying a person's resolution of a conflict, in one transaction with its audit events:
 *   - elements taken `remote`: the local copy takes the vendor's current values (read by the caller through the
 *     vendor door, minimised for the integration's purpose here, stored encrypted);
 *   - elements taken `local`: one write-back change (origin `resolution`, base = the vendor's current values of
 *     those elements, If-Match on its current version), the local copy keeping the local values;
 *   - a record the vendor no longer has: `remote` tombstones the local copy, `local` re-creates it at the vendor
 *     (a create change; the audit event says so);
 *   - the unsent outbox changes the conflict holds (the one that opened it, those write-back parked on it since)
 *     are cancelled: superseded. Their elements outside the conflict still go to the vendor, in the resolution's
 *     change.
 * The local copy also keeps its local-only elements and the elements of the record's other pending changes.
 * The audit event names elements and sides, never values.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { DataKey } from '../crypto/envelope.js';
import { decryptRecord, encryptRecord } from '../crypto/envelope.js';
import { isResourceType } from '../domain.js';
import type { ResourceType } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../fhir/minimise.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { tombstoneRecords } from '../store/records.js';
import { VENDOR_ASSIGNED_ELEMENTS, writePolicyFor } from './authority.js';
import type { ConflictRow, ConflictSide } from './conflict-repository.js';
import {
  cancelSupersededChange,
  linkChangeToConflict,
  lockConflict,
  markConflictResolved,
  resolutionChangeOf,
  supersededChanges,
} from './conflict-repository.js';
import { openConflictSides } from './conflicts.js';
import { lockLocalRecord, replaceLocalRecord } from './local-record-repository.js';
import { enqueueChange, openChange } from './outbox.js';
import { listOutboxChanges, pendingChangesOfRecord } from './outbox-repository.js';

/** The vendor's current copy of the record, as read through the vendor door; null: it has none (404/410). */
export interface VendorCopy {
  resource: Record<string, unknown>;
  versionId: string;
  lastUpdated: string;
}

export interface ApplyResolution {
  conflictId: string;
  decisions: Record<string, ConflictSide>;
  resolvedBy: string;
  purpose: Purpose;
  vendor: VendorCopy | null;
}

/** What a resolution did: ids, element names and sides only. */
export interface ResolutionOutcome {
  conflictId: string;
  resourceType: string;
  resourceId: string;
  resolution: Record<string, ConflictSide>;
  resolvedBy: string;
  resolvedAt: string;
  /** The write-back change queued for the elements kept local (or the re-create); null when none. */
  changeId: string | null;
  /** The unsent changes the conflict held, cancelled as superseded. */
  cancelledChangeIds: string[];
  /** The record is gone at the vendor and is created there again from the local copy. */
  recreate: boolean;
  /** The record is gone at the vendor and its local copy was tombstoned. */
  tombstoned: boolean;
}

export async function applyConflictResolution(
  deps: { pool: Pool; keyring: TenantKeyring },
  input: ApplyResolution,
  ctx: AuditContext,
): Promise<ResolutionOutcome> {
  return withTransaction(deps.pool, async (client) => {
    const conflict = await lockConflict(client, input.conflictId);
    if (!conflict) throw new NotFoundError('conflict', input.conflictId);
    // A retried activity finds its own committed resolution.
    if (conflict.status === 'resolved') return settledOutcome(client, conflict);
    if (conflict.status !== 'open') throw new ConflictError('conflict', conflict.id, `is ${conflict.status}`);
    const type = conflict.resourceType;
    if (!isResourceType(type)) throw new InvalidArgumentError('resourceType', `${type} is not a stored type`);
    const audit: AuditContext = { actor: input.resolvedBy, correlationId: ctx.correlationId };
    const apply = new Resolution(client, deps.keyring, conflict, type, input, audit);
    return apply.run();
  });
}

class Resolution {
  private readonly record: { tenantId: string; integrationId: string; resourceType: string; resourceId: string };
  private readonly events: Array<Parameters<typeof appendAuditEvents>[1][number]> = [];

  constructor(
    private readonly client: PoolClient,
    private readonly keyring: TenantKeyring,
    private readonly conflict: ConflictRow,
    private readonly type: ResourceType,
    private readonly input: ApplyResolution,
    private readonly audit: AuditContext,
  ) {
    this.record = {
      tenantId: conflict.tenantId,
      integrationId: conflict.integrationId,
      resourceType: conflict.resourceType,
      resourceId: conflict.resourceId,
    };
  }

  async run(): Promise<ResolutionOutcome> {
    const { client, conflict, input } = this;
    // Every key this resolution uses is at hand before its first audit event is appended: a key loaded later may
    // write its own audit event on another connection, which would wait for this transaction's audit head lock.
    const keys = {
      dek: await this.keyring.primaryDataKey(conflict.tenantId, this.audit),
      pseudonymise: await this.keyring.pseudonymiser(conflict.tenantId, this.audit),
    };
    const sides = await openConflictSides(client, this.keyring, conflict.id);
    const local = await this.localCopy();
    const superseded = await supersededChanges(client, conflict.id, conflict.changeId);
    const carried = await this.carriedElements(superseded);
    const sidesTaken = new Set(Object.values(input.decisions));
    let changeId: string | null = null;
    let recreate = false;
    let tombstoned = false;
    if (input.vendor === null) {
      if (sidesTaken.size > 1)
        throw new InvalidArgumentError('resolution', 'the record is gone at the vendor: take local or remote whole');
      if (sidesTaken.has('remote')) {
        const deletion = { resourceId: conflict.resourceId, deletedAt: new Date().toISOString(), learned: true };
        await tombstoneRecords(client, this.record, [deletion], 'read-gone', this.audit.correlationId);
        tombstoned = true;
      } else {
        if (!local) throw new ConflictError('conflict', conflict.id, 'has no local copy to create at the vendor again');
        changeId = await this.queue({ kind: 'create', resource: withoutVendorElements(local) }, null);
        recreate = true;
      }
    } else {
      const vendor = input.vendor;
      const next = minimiseForPurpose(this.type, vendor.resource, input.purpose).resource;
      const supersededIds = new Set(superseded.map((ch) => ch.id));
      if (local) for (const element of await this.keptLocally(supersededIds)) setElement(next, element, local[element]);
      const write: Record<string, unknown> = { ...carried };
      for (const [element, side] of Object.entries(input.decisions))
        if (side === 'local') write[element] = sides.local?.[element] ?? null;
      for (const [element, value] of Object.entries(write)) setElement(next, element, value);
      const written = Object.keys(write);
      if (written.length > 0) {
        const base = Object.fromEntries(written.map((e) => [e, vendor.resource[e] ?? null]));
        changeId = await this.queue({ kind: 'update', elements: write, base }, vendor.versionId);
      }
      // Local = vendor again when nothing is to be written back; else a local version, newer than the vendor's.
      const version =
        written.length === 0
          ? { versionId: vendor.versionId, lastUpdated: vendor.lastUpdated }
          : { versionId: `resolution-${conflict.id}`, lastUpdated: new Date().toISOString() };
      if (next.meta !== undefined) next.meta = { ...version };
      await this.storeLocal(next, version, keys);
    }
    const cancelledChangeIds: string[] = [];
    for (const { id: changeId } of superseded) {
      if (!(await cancelSupersededChange(client, changeId, conflict.id))) continue;
      cancelledChangeIds.push(changeId);
      this.event('writeback.cancelled', { changeId, reason: 'superseded-by-resolution', conflictId: conflict.id });
    }
    if (changeId) await linkChangeToConflict(client, changeId, conflict.id);
    const resolved = await markConflictResolved(client, conflict.id, input.decisions, input.resolvedBy);
    this.event('reconcile.conflict_resolved', {
      conflictId: conflict.id,
      reason: conflict.reason,
      resourceType: conflict.resourceType,
      resourceId: conflict.resourceId,
      resolution: input.decisions,
      ...(Object.keys(carried).length > 0 ? { carriedElements: Object.keys(carried) } : {}),
      ...(changeId ? { changeId } : {}),
      ...(cancelledChangeIds.length > 0 ? { cancelledChangeIds } : {}),
      ...(recreate ? { recreate: true } : {}),
      ...(tombstoned ? { tombstoned: true } : {}),
      ...(input.vendor ? { vendorVersionId: input.vendor.versionId } : { vendorGone: true }),
    });
    await appendAuditEvents(client, this.events);
    return {
      ...outcomeOf(resolved),
      changeId,
      cancelledChangeIds,
      recreate,
      tombstoned,
    };
  }

  private event(action: string, details: Record<string, unknown>): void {
    const { tenantId, integrationId } = this.conflict;
    this.events.push({ ...this.audit, action, outcome: 'success', tenantId, integrationId, details });
  }

  /** The local copy, decrypted; undefined when there is none. */
  private async localCopy(): Promise<Record<string, unknown> | undefined> {
    const row = await lockLocalRecord(this.client, this.record);
    if (!row) return undefined;
    const plain = await decryptRecord(row.ciphertext, this.record, this.keyring.lookup);
    try {
      return JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    } finally {
      plain.fill(0);
    }
  }

  /** Elements of the superseded updates outside the conflict (the newest value of each): still to be sent. */
  private async carriedElements(
    superseded: ReadonlyArray<{ id: string; kind: 'create' | 'update' }>,
  ): Promise<Record<string, unknown>> {
    const disputed = new Set(this.conflict.elements);
    const carried: Record<string, unknown> = {};
    for (const change of superseded) {
      if (change.kind !== 'update') continue;
      const payload = await openChange(this.client, this.keyring, change.id);
      if (payload.kind !== 'update') continue;
      for (const [element, value] of Object.entries(payload.elements))
        if (!disputed.has(element)) carried[element] = value;
    }
    return carried;
  }

  /** Elements whose local value stays: local-only ones, and those of the record's other pending changes. */
  private async keptLocally(superseded: ReadonlySet<string>): Promise<string[]> {
    const policy = await writePolicyFor(this.client, this.conflict, this.type);
    const kept = new Set(Object.entries(policy.elements).flatMap(([e, a]) => (a === 'local-only' ? [e] : [])));
    for (const change of await pendingChangesOfRecord(this.client, this.record))
      if (!superseded.has(change.id)) for (const element of change.changedElements) kept.add(element);
    for (const element of Object.keys(this.input.decisions)) kept.delete(element);
    for (const element of VENDOR_ASSIGNED_ELEMENTS) kept.delete(element);
    return [...kept];
  }

  private async queue(
    payload: Parameters<typeof enqueueChange>[2]['payload'],
    baseVersionId: string | null,
  ): Promise<string> {
    const queued = await enqueueChange(
      this.client,
      this.keyring,
      {
        ...this.record,
        origin: 'resolution',
        requestedBy: this.input.resolvedBy,
        baseVersionId,
        payload,
        idempotencyKey: `resolution-${this.conflict.id}`,
      },
      this.audit,
    );
    return queued.id;
  }

  private async storeLocal(
    resource: Record<string, unknown>,
    version: { versionId: string; lastUpdated: string },
    { dek, pseudonymise }: { dek: DataKey; pseudonymise: (value: string) => string },
  ): Promise<void> {
    const patientId = patientIdOf(this.type, resource);
    const pseudonym = patientId ? pseudonymise(patientId) : null;
    const plaintext = Buffer.from(JSON.stringify(resource), 'utf8');
    const ciphertext = encryptRecord(dek, this.record, plaintext);
    plaintext.fill(0);
    await replaceLocalRecord(this.client, {
      ...this.record,
      ...version,
      patientPseudonym: pseudonym,
      keyVersion: dek.version,
      ciphertext,
    });
  }
}

function setElement(resource: Record<string, unknown>, element: string, value: unknown): void {
  if (value === null || value === undefined) delete resource[element];
  else resource[element] = value;
}

function withoutVendorElements(resource: Record<string, unknown>): Record<string, unknown> {
  const out = { ...resource };
  for (const element of VENDOR_ASSIGNED_ELEMENTS) if (element !== 'resourceType') delete out[element];
  return out;
}

function outcomeOf(
  c: ConflictRow,
): Omit<ResolutionOutcome, 'changeId' | 'cancelledChangeIds' | 'recreate' | 'tombstoned'> {
  return {
    conflictId: c.id,
    resourceType: c.resourceType,
    resourceId: c.resourceId,
    resolution: c.resolution ?? {},
    resolvedBy: c.resolvedBy ?? '',
    resolvedAt: c.resolvedAt ?? '',
  };
}

/** A conflict resolved before (a retried activity): what its resolution did, from the rows it left. */
async function settledOutcome(client: PoolClient, c: ConflictRow): Promise<ResolutionOutcome> {
  const change = await resolutionChangeOf(client, c.id);
  const cancelled = await listOutboxChanges(client, { integrationId: c.integrationId, status: 'cancelled' });
  return {
    ...outcomeOf(c),
    changeId: change?.id ?? null,
    cancelledChangeIds: cancelled.filter((ch) => ch.conflictId === c.id).map((ch) => ch.id),
    recreate: change?.kind === 'create',
    tombstoned: false,
  };
}
