/**
 * What integration tests check about a tenant's stored records: a tenant synced from the sandbox, and
 * every stored ciphertext read back through a fresh keyring (as another process would), by its header.
 */
import { startSync, syncResult } from '../../client/sync-client.js';
import { decryptRecord, parseCiphertextHeader } from '../../lib/crypto/envelope.js';
import { isResourceType } from '../../lib/domain.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import type { SyncHarness } from './support.js';
import { registerSandboxTenant } from './support.js';

/** A fresh tenant with one sandbox integration of these types, after one full sync. */
export async function syncedSandboxTenant(
  harness: SyncHarness,
  resourceTypes: string[] = ['Patient', 'Observation'],
): Promise<{ tenantId: string; integrationIds: string[]; stored: number }> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, { resourceTypes });
  const target = { tenantId, integrationId: integrationIds[0]!, vendor: 'sandbox' };
  const report = await syncResult(await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, target));
  return { tenantId, integrationIds, stored: report.totals.inserted };
}

export interface DecryptedRecords {
  records: number;
  /** The data key versions the ciphertext headers name, ascending. */
  versions: number[];
  decrypted: number;
  /** The errors of the records that did not decrypt. */
  failures: unknown[];
}

/** Decrypts every stored record of the tenant with a fresh keyring (plaintexts zeroed at once). */
export async function decryptTenantRecords(harness: SyncHarness, tenantId: string): Promise<DecryptedRecords> {
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  const { rows } = await harness.pool.query<{
    integration_id: string;
    resource_type: string;
    resource_id: string;
    ciphertext: Buffer;
  }>('SELECT integration_id, resource_type, resource_id, ciphertext FROM records WHERE tenant_id = $1', [tenantId]);
  const versions = new Set<number>();
  const failures: unknown[] = [];
  let decrypted = 0;
  for (const r of rows) {
    if (!isResourceType(r.resource_type)) throw new Error('unexpected resource type');
    versions.add(parseCiphertextHeader(r.ciphertext).keyVersion);
    const at = { tenantId, integrationId: r.integration_id, resourceType: r.resource_type, resourceId: r.resource_id };
    await decryptRecord(r.ciphertext, at, keyring.lookup).then(
      (plain) => {
        plain.fill(0);
        decrypted += 1;
      },
      (err: unknown) => failures.push(err),
    );
  }
  return { records: rows.length, versions: [...versions].sort((a, b) => a - b), decrypted, failures };
}

/** The stored records of one type, decrypted (through a fresh keyring) and parsed, by resource id. */
export async function decryptedResources(
  harness: SyncHarness,
  scope: { tenantId: string; integrationId: string; resourceType: string },
): Promise<Map<string, unknown>> {
  if (!isResourceType(scope.resourceType)) throw new Error('unexpected resource type');
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  const { rows } = await harness.pool.query<{ resource_id: string; ciphertext: Buffer }>(
    `SELECT resource_id, ciphertext FROM records WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3`,
    [scope.tenantId, scope.integrationId, scope.resourceType],
  );
  const out = new Map<string, unknown>();
  for (const r of rows) {
    const plain = await decryptRecord(r.ciphertext, { ...scope, resourceId: r.resource_id }, keyring.lookup);
    out.set(r.resource_id, JSON.parse(plain.toString('utf8')));
    plain.fill(0);
  }
  return out;
}
