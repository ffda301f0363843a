/**
 * Write-back tests' ground: a sandbox tenant whose integration writes back (the built-in write policies), and
 * local changes queued the way the gateway queues them — the local version of the record stored (its own
 * version id, last_updated = now) together with the outbox change and its audit event, in one transaction.
 */
import type { LedgerRow, WriteStats } from '../../sandbox/write-ledger.js';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { encryptRecord } from '../../lib/crypto/envelope.js';
import type { ResourceType } from '../../lib/domain.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import type { Pool } from '../../lib/store/pool.js';
import { withTransaction } from '../../lib/store/pool.js';
import { upsertRecords } from '../../lib/store/records.js';
import type { ChangePayload } from '../../lib/writeback/outbox.js';
import { enqueueChange } from '../../lib/writeback/outbox.js';
import type { OutboxChange } from '../../lib/writeback/outbox-repository.js';
import { getOutboxChange } from '../../lib/writeback/outbox-repository.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import type { SyncHarness } from './support.js';
import { registerSandboxTenant, sandboxAdmin, testActor } from './support.js';

export interface WriteBackTenant {
  tenantId: string;
  integrationId: string;
  keyring: TenantKeyring;
}

/** A tenant with one sandbox integration of `types`, each written back as its built-in write policy says. */
export async function writeBackTenant(
  harness: SyncHarness,
  types: ResourceType[] = ['Patient', 'Appointment'],
): Promise<WriteBackTenant> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: types,
  });
  const integrationId = integrationIds[0]!;
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  // The tenant's data key exists before anything else happens to it (as after its first sync).
  await keyring.primaryDataKey(tenantId, testActor);
  return { tenantId, integrationId, keyring };
}

/** The sandbox's current copy of a record (admin read: no token, no ledger entry). */
export async function vendorCopy(harness: SyncHarness, type: string, id: string): Promise<Record<string, unknown>> {
  return sandboxAdmin<Record<string, unknown>>(harness.sandbox, 'GET', `/admin/resource/${type}/${id}`);
}

/**
 * Queues a local change as the gateway does: the local version of the record (the vendor copy with the change
 * applied, or the new resource under a local id) stored beside the outbox change, in one transaction.
 */
export async function queueLocalChange(
  pool: Pool,
  t: WriteBackTenant,
  change: { resourceType: ResourceType; resourceId: string; baseVersionId: string | null; payload: ChangePayload },
  localVersion: Record<string, unknown>,
): Promise<string> {
  const scope = { tenantId: t.tenantId, integrationId: t.integrationId, resourceType: change.resourceType };
  const dek = await t.keyring.primaryDataKey(t.tenantId, testActor);
  const ciphertext = encryptRecord(
    dek,
    { ...scope, resourceId: change.resourceId },
    Buffer.from(JSON.stringify(localVersion), 'utf8'),
  );
  return withTransaction(pool, async (client) => {
    await upsertRecords(client, scope, [
      {
        resourceId: change.resourceId,
        versionId: `local-${randomUUID()}`,
        lastUpdated: new Date().toISOString(),
        patientPseudonym: null,
        keyVersion: dek.version,
        ciphertext,
      },
    ]);
    const queued = await enqueueChange(
      client,
      t.keyring,
      { ...scope, ...change, origin: 'gateway', requestedBy: 'consumer:test' },
      testActor,
    );
    return queued.id;
  });
}

/** An update of some elements of a vendor record, with their base values taken from the vendor copy. */
export async function queueUpdate(
  harness: SyncHarness,
  t: WriteBackTenant,
  type: ResourceType,
  id: string,
  elements: Record<string, unknown>,
): Promise<string> {
  const copy = await vendorCopy(harness, type, id);
  const base = Object.fromEntries(Object.keys(elements).map((e) => [e, copy[e] ?? null]));
  const version = (copy.meta as { versionId: string }).versionId;
  return queueLocalChange(
    harness.pool,
    t,
    { resourceType: type, resourceId: id, baseVersionId: version, payload: { kind: 'update', elements, base } },
    { ...copy, ...elements },
  );
}

/** Wakes (or starts) the integration's writeBack workflow, as the gateway does after its commit. */
export async function wakeWriteBack(client: Client, taskQueue: string, t: WriteBackTenant): Promise<void> {
  await temporalOutboxNotifier(client, taskQueue).changesQueued(t);
}

/** Polls until the change leaves `pending` (or the timeout passes); returns its row. */
export async function settled(pool: Pool, changeId: string, timeoutMs = 60_000): Promise<OutboxChange> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const change = await getOutboxChange(pool, changeId);
    if (!change) throw new Error(`change ${changeId} not found`);
    if (change.status !== 'pending' || Date.now() > deadline) return change;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What the sandbox's `GET /admin/writes` answers (sandbox/write-admin.ts). */
export type WritesLedger = WriteStats & { resources: number; ledger: LedgerRow[] };

export async function writesLedger(harness: SyncHarness): Promise<WritesLedger> {
  return sandboxAdmin<WritesLedger>(harness.sandbox, 'GET', '/admin/writes');
}

/** Versions the sandbox wrote for a change's requests (its idempotency key): more than one is a duplicate. */
export async function effectsOf(harness: SyncHarness, change: OutboxChange): Promise<number> {
  const { ledger } = await writesLedger(harness);
  return ledger.filter((r) => r.key === change.idempotencyKey).reduce((n, r) => n + r.effects, 0);
}
