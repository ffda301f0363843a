/**
 * Crypto-shredding a tenant, as an operator does it when an organisation leaves: `ehrctl tenants shred`
 * refuses a tenant whose integrations are still active and a mistyped confirmation, and — the legal
 * hold's reader — refuses while an incident's legal hold covers the tenant, audited. Once the hold is
 * released it destroys every data key and the pseudonym key, and the stored records can no longer be
 * decrypted: checked on the ciphertexts themselves, with a fresh keyring.
 */
import { describe, expect, it } from 'vitest';
import { DecryptionError } from '../../lib/errors/index.js';
import { revokeTenant } from '../../lib/revocation/revoke.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import { testEnv } from '../harness.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { testActor, useSyncHarness } from './support.js';
import { decryptTenantRecords, syncedSandboxTenant } from './stored-records.js';

const harness = useSyncHarness({ sandbox: { seed: 7, size: 10 } });

const ehrctl = (args: string[]) => runEhrctl(args, ehrctlEnv({ config: harness.config }));

async function asOwner<T>(fn: (owner: Pool) => Promise<T>): Promise<T> {
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    return await fn(owner);
  } finally {
    await owner.end();
  }
}

async function dataKeyStatuses(tenantId: string): Promise<string[]> {
  const sql = 'SELECT status FROM data_keys WHERE tenant_id = $1 ORDER BY key_version';
  return (await harness.pool.query<{ status: string }>(sql, [tenantId])).rows.map((r) => r.status);
}

async function auditOutcomes(tenantId: string): Promise<string[]> {
  const sql = `SELECT outcome FROM audit_events WHERE tenant_id = $1 AND action = 'key.dek.destroyed' ORDER BY seq`;
  return (await harness.pool.query<{ outcome: string }>(sql, [tenantId])).rows.map((r) => r.outcome);
}

describe('ehrctl tenants shred', () => {
  it('refuses an active tenant, a wrong confirmation and a legal hold; then no record can be decrypted', async () => {
    const { tenantId, integrationIds } = await syncedSandboxTenant(harness);
    const before = await decryptTenantRecords(harness, tenantId);
    expect(before.records).toBeGreaterThan(0);
    expect(before.failures).toEqual([]);
    const shred = (confirm = tenantId) =>
      ehrctl(['tenants', 'shred', tenantId, '--reason', 'organisation offboarded (synthetic)', '--confirm', confirm]);

    const active = await shred();
    expect(active.code, active.stderr).toBe(3);
    expect(active.stderr).toMatch(new RegExp(`has active integrations \\(${integrationIds[0]}\\): revoke it first`));
    const mistyped = await shred(`${tenantId}-x`);
    expect(mistyped.code).toBe(2);
    expect(mistyped.stderr).toMatch(/--confirm.*must repeat the tenant id exactly/);
    expect(await dataKeyStatuses(tenantId)).toEqual(['primary']);

    await revokeTenant(harness.pool, tenantId, testActor, { reason: 'offboarding (synthetic)' });
    // An incident's legal hold on the tenant, as containment leaves it after recovery.
    const incidentId = `legal-${tenantId}`.slice(0, 63);
    await asOwner(async (owner) => {
      await owner.query(
        `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
         VALUES ($1, $2, 'high', 'synthetic', 'user:test', now(), '[]'::jsonb, 'recovered')`,
        [incidentId, `tenant:${tenantId}`],
      );
      await owner.query(
        `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold,
                                     released_at)
         VALUES ($1, $2, false, false, false, true, now())`,
        [incidentId, `tenant:${tenantId}`],
      );
    });
    const held = await shred();
    expect(held.code, held.stderr).toBe(1);
    expect(held.stderr).toMatch(/crypto-shredding tenant .* incident/i);
    expect(await dataKeyStatuses(tenantId)).toEqual(['primary']);
    expect((await decryptTenantRecords(harness, tenantId)).failures).toEqual([]);

    await asOwner((owner) =>
      owner.query(
        `UPDATE incident_holds SET legal_hold = false, legal_hold_released_at = now(), legal_hold_released_by = 'counsel'
          WHERE incident_id = $1`,
        [incidentId],
      ),
    );
    const done = await shred();
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`tenant ${tenantId} crypto-shredded: data key versions 1 destroyed`));
    expect(await dataKeyStatuses(tenantId)).toEqual(['destroyed']);
    const after = await decryptTenantRecords(harness, tenantId);
    expect(after.records).toBe(before.records);
    expect(after.failures).toHaveLength(before.records);
    for (const err of after.failures) expect(err).toBeInstanceOf(DecryptionError);
    // The refusals (active integrations, the legal hold) and the shredding, in the chain.
    expect(await auditOutcomes(tenantId)).toEqual(['failure', 'failure', 'success']);
  });
});
