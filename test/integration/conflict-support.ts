/**
 * Conflicts as reconciliation and write-back open them, for the conflict tests: a sandbox Appointment stored
 * locally with local edits (as the gateway stores a local version), a conflict opened with `openConflict` in a
 * transaction, and its workflow started through the real Temporal notifier (workers/outbox-notifier.ts).
 */
import type { Payload } from '@temporalio/common';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import { convertPayloadsIn } from '../../lib/crypto/payload-codec.js';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import { withTransaction } from '../../lib/store/pool.js';
import { storeResources } from '../../lib/sync/store-resources.js';
import type { ConflictReason, ConflictSides } from '../../lib/writeback/conflicts.js';
import { openConflict } from '../../lib/writeback/conflicts.js';
import { conflictWorkflowId } from '../../lib/writeback/notifier.js';
import { temporalConflictNotifier } from '../../workers/outbox-notifier.js';
import type { SyncHarness } from './support.js';
import { sandboxAdmin, sandboxManifest, testActor } from './support.js';

export type Resource = Record<string, unknown>;

export async function testKeyring(h: SyncHarness): Promise<TenantKeyring> {
  const kek = await KeyHierarchy.open({ pool: h.pool, backend: await createKekProvider(h.config) });
  return new TenantKeyring({ pool: h.pool, kek });
}

let next = 0;

/** The next sandbox Appointment not used by another test of this run (the vendor's current copy). */
export async function vendorAppointment(h: SyncHarness): Promise<Resource> {
  const manifest = await sandboxManifest(h.sandbox, 'Appointment');
  const entry = manifest[next++ % manifest.length]!;
  return sandboxAdmin<Resource>(h.sandbox, 'GET', `/admin/resource/Appointment/${entry.id}`);
}

export interface OpenedConflict {
  conflictId: string;
  resourceId: string;
  vendor: Resource;
}

/**
 * Stores the vendor's Appointment locally with `local` edits (a local version, newer than the vendor's), then
 * opens a conflict over `elements` (sides: the local edits, the vendor's values) and starts its workflow.
 */
export async function openTestConflict(
  h: SyncHarness,
  keyring: TenantKeyring,
  scope: { tenantId: string; integrationId: string },
  /** notify: false leaves the workflow unstarted (a notification that failed). */
  opts: { local: Resource; reason?: ConflictReason; changeId?: string; vendor?: Resource; notify?: boolean },
): Promise<OpenedConflict> {
  const vendor = opts.vendor ?? (await vendorAppointment(h));
  const resourceId = vendor.id as string;
  const localVersion = {
    ...vendor,
    ...opts.local,
    meta: { versionId: 'local-1', lastUpdated: new Date().toISOString() },
  };
  await storeResources(
    { pool: h.pool, keyring },
    testActor,
    { ...scope, resourceType: 'Appointment', purpose: 'clinical-sync' },
    [{ id: resourceId, versionId: 'local-1', lastUpdated: new Date().toISOString(), resource: localVersion }],
  );
  const elements = Object.keys(opts.local);
  const sides: ConflictSides = {
    local: opts.local,
    remote: Object.fromEntries(elements.map((e) => [e, vendor[e] ?? null])),
  };
  const { id } = await withTransaction(h.pool, (client) =>
    openConflict(
      client,
      keyring,
      {
        ...scope,
        resourceType: 'Appointment',
        resourceId,
        source: opts.changeId ? 'write-back' : 'reconcile',
        reason: opts.reason ?? 'both-changed',
        elements,
        sides,
        ...(opts.changeId ? { changeId: opts.changeId } : { runId: 'run-conflict-test' }),
      },
      testActor,
    ),
  );
  if (opts.notify !== false)
    await temporalConflictNotifier(h.temporal.client, h.config.TEMPORAL_TASK_QUEUE).conflictOpened({
      ...scope,
      conflictId: id,
    });
  return { conflictId: id, resourceId, vendor };
}

/** The local copy of a record, decrypted. */
export async function localCopy(
  h: SyncHarness,
  keyring: TenantKeyring,
  record: { tenantId: string; integrationId: string; resourceType: string; resourceId: string },
): Promise<{ versionId: string; resource: Resource } | undefined> {
  const res = await h.pool.query<{ version_id: string; ciphertext: Buffer }>(
    `SELECT version_id, ciphertext FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4`,
    [record.tenantId, record.integrationId, record.resourceType, record.resourceId],
  );
  const row = res.rows[0];
  if (!row) return undefined;
  const plain = await decryptRecord(row.ciphertext, record, keyring.lookup);
  return { versionId: row.version_id, resource: JSON.parse(plain.toString('utf8')) as Resource };
}

/** Every payload of a conflict workflow's history, decoded with the product's codec, as text. */
export async function decodedHistoryText(h: SyncHarness, conflictId: string): Promise<string> {
  const codec = await openPayloadCodec(h.config, { pool: h.pool, actor: 'test:conflict-history' });
  const history = await h.temporal.client.workflow.getHandle(conflictWorkflowId(conflictId)).fetchHistory();
  const texts: string[] = [];
  await convertPayloadsIn(history, async (payloads: Payload[]) => {
    const decoded = await codec.decode(payloads);
    for (const p of decoded) texts.push(Buffer.from(p.data ?? new Uint8Array()).toString('utf8'));
    return decoded;
  });
  return texts.join('\n');
}
