/**
 * Tenant DEK rotation's record side: re-encrypt a tenant's records from older DEK versions to the
 * primary in batches, and verify that none is left. Each batch is one transaction with its audit
 * event; the records' row locks (SKIP LOCKED) let concurrent batches share work, and the update checks
 * the version it read, so a sync write that lands in between is never overwritten.
 *
 * Which DEK version a record needs is read from its ciphertext's envelope header, in SQL
 * (lib/keys/record-key-repository.ts) — the same bytes decryption trusts — never from the
 * `key_version` column beside it.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { DataKey } from '../crypto/envelope.js';
import { decryptRecord, encryptRecord } from '../crypto/envelope.js';
import type { TenantKeyring } from './keyring.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import {
  countRecordsBelowKeyVersion,
  countRecordsByKeyVersion,
  lockRecordsBelowKeyVersion,
  sampleRecordsUnderKeyVersion,
  storeReencryptedRecords,
} from './record-key-repository.js';

export { countRecordsBelowKeyVersion };

/**
 * Re-encrypts up to `batchSize` of the tenant's records whose header names a DEK version below
 * `target` (the new primary) and returns how many moved and how many are left.
 */
export async function reencryptRecordBatch(
  pool: Pool,
  keyring: TenantKeyring,
  args: { tenantId: string; target: DataKey; batchSize: number },
  ctx: AuditContext,
): Promise<{ reencrypted: number; remaining: number }> {
  const { tenantId, target, batchSize } = args;
  const reencrypted = await withTransaction(pool, async (client) => {
    const rows = await lockRecordsBelowKeyVersion(client, tenantId, target.version, batchSize);
    if (rows.length === 0) return 0;
    const fresh: Buffer[] = [];
    for (const r of rows) {
      const recordCtx = {
        tenantId,
        integrationId: r.integration_id,
        resourceType: r.resource_type,
        resourceId: r.resource_id,
      };
      const plaintext = await decryptRecord(r.ciphertext, recordCtx, (t, v) => keyring.dataKey(t, v, ctx));
      try {
        fresh.push(encryptRecord(target, recordCtx, plaintext));
      } finally {
        plaintext.fill(0);
      }
    }
    const written = await storeReencryptedRecords(client, tenantId, target.version, rows, fresh);
    const fromVersions = [...new Set(rows.map((r) => r.header_version))].sort((a, b) => a - b);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'records.reencrypted',
        outcome: 'success',
        tenantId,
        details: { count: written, fromKeyVersions: fromVersions, toKeyVersion: target.version },
      },
    ]);
    return written;
  });
  return { reencrypted, remaining: await countRecordsBelowKeyVersion(pool, tenantId, target.version) };
}

export interface ReencryptionCheck {
  /** Every record of the tenant, counted by the DEK version its ciphertext header names. */
  records: number;
  underOlderKeys: number;
  underKeyVersion: number;
  /** Records under `keyVersion` decrypted in full (GCM tag checked), picked at random. */
  sampleDecrypted: number;
}

/**
 * The check behind "no record left under an older key": counts the tenant's records by the version
 * their ciphertext headers name and decrypts a random sample of those under `keyVersion`. Audited
 * (`records.reencryption_verified`, a failure when any record is still under an older key).
 */
export async function verifyReencryption(
  pool: Pool,
  keyring: TenantKeyring,
  args: { tenantId: string; keyVersion: number; sampleSize: number },
  ctx: AuditContext,
): Promise<ReencryptionCheck> {
  const { tenantId, keyVersion, sampleSize } = args;
  const counts = await countRecordsByKeyVersion(pool, tenantId, keyVersion);
  const sample = await sampleRecordsUnderKeyVersion(pool, tenantId, keyVersion, sampleSize);
  for (const r of sample) {
    const at = { tenantId, integrationId: r.integration_id, resourceType: r.resource_type, resourceId: r.resource_id };
    (await decryptRecord(r.ciphertext, at, (t, v) => keyring.dataKey(t, v, ctx))).fill(0);
  }
  const check = {
    records: counts.records,
    underOlderKeys: counts.older,
    underKeyVersion: counts.current,
    sampleDecrypted: sample.length,
  };
  await recordAuditEvent(pool, {
    ...ctx,
    action: 'records.reencryption_verified',
    outcome: check.underOlderKeys === 0 ? 'success' : 'failure',
    tenantId,
    details: { keyVersion, ...check },
  });
  return check;
}
