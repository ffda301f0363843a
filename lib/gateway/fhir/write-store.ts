/**
 * A local write, stored in ONE transaction: the local version of the record (encrypted like sync stores records,
 * its own version id `local-<change id>` and lastUpdated now — never before the version it replaces, so the
 * upsert's version check lets it in and an older vendor version never overwrites it), the outbox change through
 * `enqueueChange` (with its own audit event), and the `gateway.write` audit event. The record's row is locked
 * first and its version compared with the one the write was decided on: a write that raced another answers 409
 * (412 when the consumer sent If-Match), and nothing is stored. A create's Idempotency-Key is claimed before
 * all of it: the key commits with the create or not at all.
 */
import { randomUUID } from 'node:crypto';
import { appendAuditEvents } from '../../audit/chain.js';
import { encryptRecord } from '../../crypto/envelope.js';
import type { ResourceType } from '../../domain.js';
import { patientIdOf } from '../../fhir/minimise.js';
import type { TenantKeyring } from '../../keys/keyring.js';
import type { Pool } from '../../store/pool.js';
import { withTransaction } from '../../store/pool.js';
import { upsertRecords } from '../../store/records.js';
import type { ChangePayload } from '../../writeback/outbox.js';
import { enqueueChange } from '../../writeback/outbox.js';
import type { GatewayAccess } from '../access.js';
import { auditEvents } from './audit.js';
import type { ClaimedKey } from './idempotency-repository.js';
import { claimIdempotencyKey } from './idempotency-repository.js';
import { lockRecordVersion } from './write-repository.js';

export type WriteInteraction = 'create' | 'update' | 'patch';

export interface LocalWrite {
  integrationId: string;
  resourceType: ResourceType;
  resourceId: string;
  interaction: WriteInteraction;
  /** The scope that granted it, e.g. `system/Appointment.cu`. */
  scope: string;
  /** The new local content (no id, meta or text). */
  content: Record<string, unknown>;
  /** Every changed element (local-only ones too), for the audit event. */
  changed: readonly string[];
  /** The outbox change; undefined when only local-only elements changed (stored, never sent). */
  payload?: ChangePayload;
  baseVersionId: string | null;
  /** The stored version the write was decided on (update); undefined for a create. */
  expectedVersionId?: string;
  /** Its lastUpdated: the local version is stamped after it. */
  previousLastUpdated?: Date;
  /** A create's Idempotency-Key, claimed first in the transaction, and its request's keyed digest. */
  idempotency?: { key: string; requestDigest: string };
}

export interface StoredWrite {
  changeId?: string;
  versionId: string;
  lastUpdated: Date;
  /** The stored local version as a whole resource. */
  resource: Record<string, unknown>;
  pseudonym: string | null;
}

/** The consumer sent this create's Idempotency-Key before: nothing is stored; `earlier` is what that request made. */
export class IdempotentReplay extends Error {
  constructor(readonly earlier: ClaimedKey) {
    super('the Idempotency-Key was used before');
  }
}

/** The record changed between the write's decision and its transaction (another write got there first). */
export class WriteRaced extends Error {
  constructor() {
    super('the record changed while the write was being made');
  }
}

export async function storeLocalWrite(
  deps: { pool: Pool; keyring: TenantKeyring },
  access: GatewayAccess,
  write: LocalWrite,
): Promise<StoredWrite> {
  const ctx = { actor: `consumer:${access.consumerId}`, correlationId: access.correlationId };
  const key = {
    tenantId: access.tenantId,
    integrationId: write.integrationId,
    resourceType: write.resourceType,
    resourceId: write.resourceId,
  };
  const dek = await deps.keyring.primaryDataKey(access.tenantId, ctx);
  const pseudonymise = await deps.keyring.pseudonymiser(access.tenantId, ctx);
  return withTransaction(deps.pool, async (client) => {
    if (write.idempotency) {
      const claim = await claimIdempotencyKey(client, {
        ...key,
        consumerId: access.consumerId,
        key: write.idempotency.key,
        requestDigest: write.idempotency.requestDigest,
      });
      if (!claim.claimed) throw new IdempotentReplay(claim.earlier);
    }
    const current = await lockRecordVersion(client, key);
    if (current !== write.expectedVersionId) throw new WriteRaced();
    let changeId: string | undefined;
    if (write.payload) {
      const queued = await enqueueChange(
        client,
        deps.keyring,
        {
          ...key,
          origin: 'gateway',
          requestedBy: `consumer:${access.consumerId}`,
          baseVersionId: write.baseVersionId,
          payload: write.payload,
        },
        ctx,
      );
      changeId = queued.id;
    }
    const versionId = `local-${changeId ?? randomUUID()}`;
    const now = Date.now();
    const lastUpdated = new Date(Math.max(now, (write.previousLastUpdated?.getTime() ?? 0) + 1));
    const resource: Record<string, unknown> = {
      resourceType: write.resourceType,
      id: write.resourceId,
      meta: { versionId, lastUpdated: lastUpdated.toISOString() },
      ...write.content,
    };
    const patientId = patientIdOf(write.resourceType, resource);
    const pseudonym = patientId ? pseudonymise(patientId) : null;
    const plaintext = Buffer.from(JSON.stringify(resource), 'utf8');
    const counts = await upsertRecords(client, key, [
      {
        resourceId: write.resourceId,
        versionId,
        lastUpdated: lastUpdated.toISOString(),
        patientPseudonym: pseudonym,
        keyVersion: dek.version,
        ciphertext: encryptRecord(dek, key, plaintext),
      },
    ]);
    // A tombstone newer than the write (the vendor deleted it meanwhile) keeps it out.
    if (counts.inserted + counts.updated !== 1) throw new WriteRaced();
    await appendAuditEvents(
      client,
      auditEvents(access, {
        action: 'gateway.write',
        status: write.interaction === 'create' ? 201 : 200,
        resourceType: write.resourceType,
        scope: write.scope,
        count: 1,
        patients: pseudonym ? [pseudonym] : [],
        integrationIds: [write.integrationId],
        extra: {
          interaction: write.interaction,
          resourceId: write.resourceId,
          elements: [...write.changed],
          ...(changeId ? { changeId } : { localOnly: true }),
        },
      }),
    );
    return { ...(changeId ? { changeId } : {}), versionId, lastUpdated, resource, pseudonym };
  });
}
