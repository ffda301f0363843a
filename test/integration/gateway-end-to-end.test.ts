/**
 * The whole door, from a real sandbox sync to a consumer's HTTP read: a consumer registered for the synced tenant
 * gets a token at the gateway's token endpoint with its own key, and reads through /fhir/ exactly the stored record
 * decrypted and minimised for its purpose; a consumer of another tenant holding the same scopes gets 404 for it;
 * a type outside the token's scopes is 403; each read is audited under the consumer; the chain verifies.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { loadGatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { GatewayHandle } from '../../workers/gateway.js';
import { startGateway } from '../../workers/gateway.js';
import { uniqueId } from '../harness.js';
import { consumerWithToken } from './gateway-consumer-token.js';
import { openKeyring, storedAs } from './gateway-support.js';
import { syncedSandboxTenant } from './stored-records.js';
import { testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 60 }, config: { EHR_SYNC_PAGE_SIZE: '50' } });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-e2e-'));
let gateway: GatewayHandle;
let keyring: TenantKeyring;
let tenantId: string;
let integrationId: string;

async function tokenForNewConsumer(tenant: string, purpose: string, scopes: string): Promise<[string, string]> {
  const got = await consumerWithToken(harness.pool, gateway.tokenUrl, { tenantId: tenant, purpose, scopes });
  return [got.consumerId, got.accessToken];
}

async function read(token: string, fhirPath: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway.fhirBaseUrl}/${fhirPath}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  const synced = await syncedSandboxTenant(harness, ['Patient', 'Encounter']);
  tenantId = synced.tenantId;
  integrationId = synced.integrationIds[0]!;
  const keyFile = path.join(tmp, 'gateway-access.key');
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  fs.writeFileSync(keyFile, pem, { mode: 0o600 });
  gateway = await startGateway(
    { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: 0, GATEWAY_PUBLIC_URL: undefined, GATEWAY_ACCESS_LIFETIME_SECONDS: 300 },
    { pool: harness.pool, keyring, signingKey: await loadGatewaySigningKey(`file:${keyFile}`), actor: 'test:e2e' },
  );
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('from a real sync through the gateway', () => {
  it("serves the consumer's purpose of a stored record, to its own tenant only, audited under the consumer", async () => {
    const { rows } = await harness.pool.query<{ resource_id: string }>(
      `SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = 'Patient' ORDER BY 1 LIMIT 3`,
      [tenantId],
    );
    expect(rows.length).toBeGreaterThan(0);
    const [scheduler, token] = await tokenForNewConsumer(tenantId, 'scheduling-sync', 'system/Patient.rs');
    for (const { resource_id: id } of rows) {
      const at = { tenantId, integrationId, resourceType: 'Patient' as const, resourceId: id };
      const res = await read(token, `Patient/${id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(await storedAs(harness.pool, keyring, at, 'scheduling-sync'));
    }
    // Encounter is within the purpose but not within this token's scopes.
    expect((await read(token, `Encounter?patient=${rows[0]!.resource_id}`)).status).toBe(403);

    const otherTenant = uniqueId('e2e-other');
    await createTenant(harness.pool, { id: otherTenant, name: 'Synthetic Other Clinic' }, testActor);
    const [, otherToken] = await tokenForNewConsumer(otherTenant, 'clinical-sync', 'system/Patient.rs');
    expect((await read(otherToken, `Patient/${rows[0]!.resource_id}`)).status).toBe(404);

    const audited = await harness.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM audit_events WHERE tenant_id = $1 AND details::text LIKE '%' || $2 || '%'
         AND action LIKE 'gateway.%' AND action NOT LIKE 'gateway.token.%' AND action NOT LIKE 'gateway.consumer.%'`,
      [tenantId, scheduler],
    );
    expect(Number(audited.rows[0]!.n)).toBeGreaterThanOrEqual(rows.length + 1);
    expect((await verifyAuditChain(harness.pool)).ok).toBe(true);
  });
});
