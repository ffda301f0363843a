/**
 * The write side of a reconcile batch (lib/reconcile/compare.ts decides, this applies): one transaction per batch.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { DataKey } from '../crypto/envelope.js';
import { encryptRecord } from '../crypto/envelope.js';
import { patientIdOf } from '../fhir/minimise.js';
import type { PoolClient } from '../store/pool.js';
import type { EncryptedRecord } from '../store/records.js';
import { tombstoneRecords, upsertRecords } from '../store/records.js';
import { openConflict } from '../writeback/conflicts.js';
import { enqueueChange } from '../writeback/outbox.js';
import { decisionEvents } from './audit.js';
import type { BatchInput, Compared, ReconcileDeps } from './compare.js';
import { groupValues } from './digest.js';
import type { Baseline } from './repository.js';
import { dropBaselines, replaceRecords, saveBaselines } from './repository.js';

/** The vendor's copy with the local parts kept: local-only, written-back, disputed and pending elements. */
function merged(
  local: Record<string, unknown>,
  remote: Record<string, unknown>,
  keepLocal: readonly string[],
): Record<string, unknown> {
  const out = { ...remote };
  for (const e of keepLocal) {
    for (const k of [e, `_${e}`]) {
      delete out[k];
      if (local[k] !== undefined) out[k] = local[k];
    }
  }
  return out;
}

/**
 * Applies a batch's decisions in the caller's transaction, with their audit events: vendor copies stored, local
 * copies updated or tombstoned, write-backs queued, conflicts opened (or joined), baselines kept. Returns what the
 * caller must wake after commit.
 */
export async function applyDecisions(
  deps: Pick<ReconcileDeps, 'keyring'>,
  ctx: AuditContext,
  client: PoolClient,
  input: BatchInput,
  compared: Compared,
): Promise<{ writeBacks: number; conflictIds: string[]; conflictsOpened: number }> {
  const { decided, locals, groups } = compared;
  const { scope, runId } = input;
  let dek: DataKey | undefined;
  const dataKey = async () => (dek ??= await deps.keyring.primaryDataKey(scope.tenantId, ctx));
  const pseudonymise = await deps.keyring.pseudonymiser(scope.tenantId);
  const seal = async (id: string, resource: Record<string, unknown>) => {
    const k = await dataKey();
    const plain = Buffer.from(JSON.stringify(resource), 'utf8');
    return { keyVersion: k.version, ciphertext: encryptRecord(k, { ...scope, resourceId: id }, plain) };
  };
  const inserts: EncryptedRecord[] = [];
  const replaces: Parameters<typeof replaceRecords>[2][number][] = [];
  const tombstones: string[] = [];
  const agreed: Array<{ resourceId: string; baseline: Baseline }> = [];
  let writeBacks = 0;
  let conflictsOpened = 0;
  const conflictIds: string[] = [];
  for (const { id, decision: d, remote, baseline } of decided) {
    const local = locals.get(id);
    const recordKey = {
      tenantId: scope.tenantId,
      integrationId: scope.integrationId,
      resourceType: scope.resourceType,
      resourceId: id,
    };
    if (baseline) agreed.push({ resourceId: id, baseline });
    if (d.storeRemote && remote) {
      const patientId = patientIdOf(scope.resourceType, remote.resource);
      inserts.push({
        resourceId: id,
        versionId: remote.versionId,
        lastUpdated: remote.lastUpdated,
        patientPseudonym: patientId ? pseudonymise(patientId) : null,
        ...(await seal(id, { ...remote.resource })),
      });
    }
    if (d.tombstone) tombstones.push(id);
    if (d.takeRemote.length > 0 && remote && local) {
      const keep = [...d.ignored, ...d.writeBack, ...(d.conflict?.elements ?? [])];
      const pendingKept = groups.filter((g) => !d.diverged.includes(g) && !d.ignored.includes(g));
      const resource = merged(local.resource, remote.resource, [...keep, ...pendingKept]);
      replaces.push({
        resourceId: id,
        versionId: remote.versionId,
        lastUpdated: remote.lastUpdated,
        ...(await seal(id, resource)),
      });
    }
    if (d.writeBack.length > 0 && remote && local) {
      const queued = await enqueueChange(
        client,
        deps.keyring,
        {
          ...recordKey,
          origin: 'reconcile',
          requestedBy: `reconcile:${runId}`,
          baseVersionId: remote.versionId,
          payload: {
            kind: 'update',
            elements: groupValues(local.resource, groups, d.writeBack),
            base: groupValues(remote.resource, groups, d.writeBack),
          },
          idempotencyKey: `reconcile:${runId}:${scope.resourceType}:${id}`,
        },
        ctx,
      );
      if (queued.queued) writeBacks += 1;
    }
    if (d.conflict && local) {
      const elements = d.conflict.elements;
      const conflict = await openConflict(
        client,
        deps.keyring,
        {
          ...recordKey,
          source: 'reconcile',
          runId,
          reason: d.conflict.reason,
          elements,
          sides: {
            local: groupValues(local.resource, groups, elements),
            remote: remote ? groupValues(remote.resource, groups, elements) : null,
          },
        },
        ctx,
      );
      conflictIds.push(conflict.id);
      if (conflict.opened) conflictsOpened += 1;
    }
  }
  if (inserts.length > 0) await upsertRecords(client, scope, inserts);
  await replaceRecords(client, scope, replaces);
  if (tombstones.length > 0) {
    const learnedAt = new Date().toISOString();
    const deletions = tombstones.map((resourceId) => ({ resourceId, deletedAt: learnedAt, learned: true }));
    await tombstoneRecords(client, scope, deletions, 'read-gone', runId);
    await dropBaselines(client, scope, tombstones);
  }
  await saveBaselines(client, scope, runId, agreed);
  if (decided.length > 0)
    await appendAuditEvents(
      client,
      decisionEvents(
        ctx,
        { ...scope, runId },
        decided.map(({ id, decision }) => ({ id, decision })),
      ),
    );
  return { writeBacks, conflictIds, conflictsOpened };
}
