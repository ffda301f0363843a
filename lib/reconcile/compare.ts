/**
 * One batch of reconciliation: the vendor's copies (a search page, or what reads by id found) against the stored
 * records of the same ids, looked up in one query. Both sides are the minimised form (the vendor's is minimised
 * for the integration's purpose here, as sync would store it), compared as RFC 8785 text and, where they differ,
 * per element group by keyed digest. The decisions (lib/reconcile/decide.ts) are applied in one transaction with
 * their audit events: local copies updated or tombstoned, write-backs queued, conflicts opened, baselines kept.
 * After commit the write-back and conflict workflows are woken. Only counts leave.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { DataKey } from '../crypto/envelope.js';
import { decryptRecord, encryptRecord } from '../crypto/envelope.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose, patientIdOf } from '../fhir/minimise.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { EncryptedRecord } from '../store/records.js';
import { tombstoneRecords, upsertRecords } from '../store/records.js';
import type { TypeWritePolicy } from '../writeback/authority.js';
import { openConflict } from '../writeback/conflicts.js';
import type { ConflictNotifier, OutboxNotifier } from '../writeback/notifier.js';
import { enqueueChange } from '../writeback/outbox.js';
import { decisionEvents } from './audit.js';
import type { Decision, RecordFacts, Side } from './decide.js';
import { decideRecord, NO_PENDING } from './decide.js';
import type { DigestKey } from './digest.js';
import { canonicalContent, digestKeyFor, groupDigests, groupValues, policyGroups } from './digest.js';
import type { RecordScope } from './repository.js';
import {
  baselines,
  dropBaselines,
  localRecords,
  pendingOfRecords,
  replaceRecords,
  saveBaselines,
} from './repository.js';
import type { BatchTally } from './tally.js';
import { emptyTally, tallyDecision } from './tally.js';

export interface ReconcileDeps {
  pool: Pool;
  keyring: TenantKeyring;
  outbox: OutboxNotifier;
  conflicts: ConflictNotifier;
}

export interface RemoteCopy {
  id: string;
  versionId: string;
  lastUpdated: string;
  resource: Record<string, unknown>;
}

export interface BatchInput {
  scope: RecordScope & { resourceType: ResourceType; purpose: Purpose };
  runId: string;
  policy: TypeWritePolicy;
  /** The vendor's copies. */
  remote: readonly RemoteCopy[];
  /** Stored ids the vendor said are gone (404/410 on a read by id). */
  gone?: readonly string[];
}

interface Sides {
  side: Side;
  resource: Record<string, unknown>;
}

function sideOf(key: DigestKey, groups: readonly string[], resource: Record<string, unknown>): Sides {
  let digests: ReturnType<typeof groupDigests> | undefined;
  return {
    resource,
    side: { canonical: canonicalContent(resource), digests: () => (digests ??= groupDigests(key, resource, groups)) },
  };
}

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

export async function reconcileBatch(deps: ReconcileDeps, ctx: AuditContext, input: BatchInput): Promise<BatchTally> {
  const { scope, policy } = input;
  const gone = input.gone ?? [];
  const ids = [...new Set([...input.remote.map((r) => r.id), ...gone])];
  const [rows, base, pending] = await Promise.all([
    localRecords(deps.pool, scope, ids),
    baselines(deps.pool, scope, ids),
    pendingOfRecords(deps.pool, scope, ids),
  ]);
  const key = await digestKeyFor(deps.keyring, scope.tenantId);
  const groups = policyGroups(policy);
  const locals = new Map<string, Sides & { versionId: string }>();
  for (const row of rows) {
    const plain = await decryptRecord(row.ciphertext, { ...scope, resourceId: row.resourceId }, deps.keyring.lookup);
    const resource = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    plain.fill(0);
    locals.set(row.resourceId, { ...sideOf(key, groups, resource), versionId: row.versionId });
  }
  const decided: Array<{ id: string; decision: Decision; remote?: RemoteCopy & Sides }> = [];
  for (const copy of input.remote) {
    const minimised = minimiseForPurpose(scope.resourceType, copy.resource, scope.purpose).resource;
    const remote = { ...copy, ...sideOf(key, groups, minimised) };
    const local = locals.get(copy.id);
    const facts: RecordFacts = {
      local: local?.side ?? null,
      remote: remote.side,
      baseline: base.get(copy.id) ?? null,
      pending: pending.get(copy.id) ?? NO_PENDING,
    };
    decided.push({ id: copy.id, decision: decideRecord(facts, policy), remote });
  }
  for (const id of gone) {
    const local = locals.get(id);
    if (!local) continue;
    const facts: RecordFacts = {
      local: local.side,
      remote: 'gone',
      baseline: null,
      pending: pending.get(id) ?? NO_PENDING,
    };
    decided.push({ id, decision: decideRecord(facts, policy) });
  }
  const tally = emptyTally();
  for (const d of decided) tallyDecision(tally, d.decision);
  const opened = await withTransaction(deps.pool, (client) =>
    apply(deps, ctx, client, { input, decided, locals, groups }),
  );
  tally.decisions.writeBacksQueued = opened.writeBacks;
  tally.decisions.conflictsOpened = opened.conflictsOpened;
  if (opened.writeBacks > 0) await deps.outbox.changesQueued(scope);
  for (const conflictId of opened.conflictIds) await deps.conflicts.conflictOpened({ ...scope, conflictId });
  return tally;
}

async function apply(
  deps: ReconcileDeps,
  ctx: AuditContext,
  client: PoolClient,
  batch: {
    input: BatchInput;
    decided: Array<{ id: string; decision: Decision; remote?: RemoteCopy & Sides }>;
    locals: Map<string, Sides & { versionId: string }>;
    groups: string[];
  },
): Promise<{ writeBacks: number; conflictIds: string[]; conflictsOpened: number }> {
  const { input, decided, locals, groups } = batch;
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
  const agreed: Array<{ resourceId: string; digests: Record<string, string> }> = [];
  let writeBacks = 0;
  let conflictsOpened = 0;
  const conflictIds: string[] = [];
  for (const { id, decision: d, remote } of decided) {
    const local = locals.get(id);
    if (d.baseline) agreed.push({ resourceId: id, digests: d.baseline });
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
          tenantId: scope.tenantId,
          integrationId: scope.integrationId,
          resourceType: scope.resourceType,
          resourceId: id,
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
          tenantId: scope.tenantId,
          integrationId: scope.integrationId,
          resourceType: scope.resourceType,
          resourceId: id,
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
