/**
 * The tenant DEK rotation a user found destroying a key a record still needed: with one record's
 * `key_version` column raised by hand (as the owner), the rotation skipped it, printed "verified", and
 * destroyed v1. Now the owner's raise is refused by a constraint; and with that constraint out of the
 * way (dropped and re-added NOT VALID in one transaction), the rotation still re-encrypts the record by
 * its ciphertext header, verifies by counting headers, destroys v1 only then, and every record decrypts.
 */
import { describe, expect, it } from 'vitest';
import type { Pool } from '../../lib/store/pool.js';
import { createPool, withTransaction } from '../../lib/store/pool.js';
import type { KeyRotationResult } from '../../workflows/key-rotation-api.js';
import { keyRotationResult, startKeyRotation } from '../../client/commands/keys.js';
import { testEnv } from '../harness.js';
import { rejection } from '../helpers.js';
import { useSyncHarness } from './support.js';
import { decryptTenantRecords, syncedSandboxTenant } from './stored-records.js';

const harness = useSyncHarness({ sandbox: { seed: 43, size: 40 }, config: { EHR_SYNC_PAGE_SIZE: '25' } });
const CONSTRAINT = 'records_key_version_is_header';
const RAISE_ONE = `UPDATE records SET key_version = key_version + 1 WHERE tenant_id = $1
    AND resource_type = 'Patient' AND resource_id = $2`;

async function firstRecordId(tenantId: string): Promise<string> {
  const sql = `SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = 'Patient'
      ORDER BY resource_id LIMIT 1`;
  const { rows } = await harness.pool.query<{ resource_id: string }>(sql, [tenantId]);
  return rows[0]!.resource_id;
}

/**
 * The owner raises one record's column past its header, with the constraint (where it exists) dropped
 * and re-added NOT VALID in the same transaction: other sessions never see the table unguarded, and
 * only this row is left disagreeing.
 */
async function raiseColumnPastHeader(tenantId: string, resourceId: string): Promise<void> {
  await asOwner((owner) => raiseAsOwner(owner, tenantId, resourceId));
}

/** Altering the table is the owner's right: the tests' own connections are the application role's. */
async function asOwner<T>(fn: (owner: Pool) => Promise<T>): Promise<T> {
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    return await fn(owner);
  } finally {
    await owner.end();
  }
}

async function raiseAsOwner(owner: Pool, tenantId: string, resourceId: string): Promise<void> {
  await withTransaction(owner, async (client) => {
    const { rows } = await client.query<{ def: string }>(
      'SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = $1',
      [CONSTRAINT],
    );
    if (rows[0]) await client.query(`ALTER TABLE records DROP CONSTRAINT ${CONSTRAINT}`);
    await client.query(RAISE_ONE, [tenantId, resourceId]);
    if (rows[0]) await client.query(`ALTER TABLE records ADD CONSTRAINT ${CONSTRAINT} ${rows[0].def} NOT VALID`);
  });
}

const detailOf = (r: KeyRotationResult, step: string) => r.steps.find((s) => s.step === step)?.detail;

describe('tenant DEK rotation follows the ciphertext header, not the key_version column', () => {
  it("refuses the owner's raise of key_version past the ciphertext header", async () => {
    const { tenantId } = await syncedSandboxTenant(harness);
    const raise = harness.pool.query(RAISE_ONE, [tenantId, await firstRecordId(tenantId)]);
    expect(await rejection(raise)).toMatchObject({ code: '23514', constraint: CONSTRAINT });
  });

  it(
    're-encrypts a record whose column was raised, verifies by headers, destroys v1 only then',
    { timeout: 180_000 },
    async () => {
      const { tenantId, stored } = await syncedSandboxTenant(harness);
      await raiseColumnPastHeader(tenantId, await firstRecordId(tenantId));
      const handle = await startKeyRotation(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
        kind: 'tenant-dek',
        tenantId,
        requestedBy: 'test:key-rotation-drift',
        reason: 'integration test',
        graceSeconds: 1,
        batchSize: 7,
      });
      const result = await keyRotationResult(handle);
      expect(result.outcome).toBe('completed');
      // First what a user would notice: every record is under the new key and readable.
      expect(await decryptTenantRecords(harness, tenantId)).toMatchObject({
        versions: [2],
        decrypted: stored,
        failures: [],
      });
      expect(detailOf(result, 'records re-encrypted')).toEqual({ count: stored });
      expect(detailOf(result, 'verified: no record left under an older key')).toMatchObject({
        records: stored,
        underOlderKeys: 0,
      });
      expect(detailOf(result, 'old DEK retired')).toMatchObject({ keyVersion: 1, destroyed: true });
      const keys = await harness.pool.query(
        'SELECT key_version, status FROM data_keys WHERE tenant_id = $1 ORDER BY 1',
        [tenantId],
      );
      expect(keys.rows).toEqual([
        { key_version: 1, status: 'destroyed' },
        { key_version: 2, status: 'primary' },
      ]);
      // The rotation rewrote the drifted row, so the constraint holds for every row again.
      await asOwner((owner) => owner.query(`ALTER TABLE records VALIDATE CONSTRAINT ${CONSTRAINT}`));
    },
  );
});
