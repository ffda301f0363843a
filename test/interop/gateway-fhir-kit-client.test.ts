/**
 * The gateway read by a FHIR client this project did not write: fhir-kit-client (Vermonster, npm) finds the token
 * endpoint from the gateway's SMART configuration, reads the CapabilityStatement, follows search `next` links to the
 * end, reads by id, runs Patient/$everything and meets a 404 as a FHIR client expects it (an OperationOutcome). What
 * it gets is compared with the store, decrypted and minimised for the consumer's purpose.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as FhirKitModule from 'fhir-kit-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import type { GatewayHandle } from '../../workers/gateway.js';
import { startGateway } from '../../workers/gateway.js';
import { consumerWithToken } from '../integration/gateway-consumer-token.js';
import { openKeyring, storedAs } from '../integration/gateway-support.js';
import { syncedSandboxTenant } from '../integration/stored-records.js';
import { useSyncHarness } from '../integration/support.js';

type FhirKit = typeof FhirKitModule;
type KitClient = FhirKitModule.Client;
interface Bundle {
  resourceType: string;
  entry?: Array<{ resource: { resourceType: string; id: string } }>;
  link?: Array<{ relation: string; url: string }>;
}

const harness = useSyncHarness({ sandbox: { size: 60 }, config: { EHR_SYNC_PAGE_SIZE: '50' } });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-kit-'));
let gateway: GatewayHandle;
let keyring: TenantKeyring;
let tenantId: string;
let integrationId: string;
let kit: FhirKit;

beforeAll(async () => {
  // ESM-only package, loaded from this CommonJS project by dynamic import.
  kit = await import('fhir-kit-client');
  keyring = await openKeyring(harness.pool, harness.config);
  const synced = await syncedSandboxTenant(harness, ['Patient', 'Encounter']);
  tenantId = synced.tenantId;
  integrationId = synced.integrationIds[0]!;
  const keyFile = path.join(tmp, 'gateway-access.key');
  fs.writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  gateway = await startGateway(
    { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: 0, GATEWAY_PUBLIC_URL: undefined, GATEWAY_ACCESS_LIFETIME_SECONDS: 300 },
    { pool: harness.pool, keyring, signingKey: await loadGatewaySigningKey(`file:${keyFile}`), actor: 'test:kit' },
  );
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function storedIds(type: string): Promise<string[]> {
  const { rows } = await harness.pool.query<{ resource_id: string }>(
    'SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = $2 ORDER BY 1',
    [tenantId, type],
  );
  return rows.map((r) => r.resource_id);
}

async function everyPage(client: KitClient, first: Bundle): Promise<Bundle[]> {
  const pages = [first];
  for (;;) {
    const next = client.nextPage({ bundle: pages[pages.length - 1]! as never });
    if (!next) return pages;
    pages.push((await next) as unknown as Bundle);
  }
}

const ids = (pages: Bundle[]): string[] => pages.flatMap((p) => (p.entry ?? []).map((e) => e.resource.id));

describe('a third-party FHIR client (fhir-kit-client) through the gateway', () => {
  it('discovers the token endpoint, pages a search to the end, reads, runs $everything and gets 404s as FHIR', async () => {
    const anonymous = new kit.Client({ baseUrl: gateway.fhirBaseUrl });
    const smart = await anonymous.smartAuthMetadata();
    expect(String(smart.tokenUrl)).toBe(gateway.tokenUrl);
    const capabilities = new kit.CapabilityTool(await anonymous.capabilityStatement());
    expect(capabilities.resourceCan('Encounter', 'search-type')).toBe(true);
    expect(capabilities.resourceCan('Patient', 'read')).toBe(true);

    const { accessToken } = await consumerWithToken(harness.pool, String(smart.tokenUrl), {
      tenantId,
      purpose: 'clinical-sync',
      scopes: 'system/Patient.rs system/Encounter.rs',
    });
    const client = new kit.Client({ baseUrl: gateway.fhirBaseUrl, bearerToken: accessToken });

    const encounters = await storedIds('Encounter');
    expect(encounters.length).toBeGreaterThan(7);
    const first = (await client.search({
      resourceType: 'Encounter',
      searchParams: { _count: 7 },
    })) as unknown as Bundle;
    const pages = await everyPage(client, first);
    expect(pages.length).toBe(Math.ceil(encounters.length / 7));
    expect(ids(pages).sort()).toEqual(encounters);

    const [patientId] = await storedIds('Patient');
    const patient = await client.read({ resourceType: 'Patient', id: patientId! });
    const at = { tenantId, integrationId, resourceType: 'Patient' as const, resourceId: patientId! };
    expect(JSON.parse(JSON.stringify(patient))).toEqual(await storedAs(harness.pool, keyring, at, 'clinical-sync'));

    const everything = (await client.operation({
      name: '$everything',
      resourceType: 'Patient',
      id: patientId!,
      method: 'GET',
    })) as unknown as Bundle;
    const everythingPages = await everyPage(client, everything);
    const byType = ids(everythingPages);
    expect(byType).toContain(patientId);
    const ofPatient = (await client.search({
      resourceType: 'Encounter',
      searchParams: { patient: patientId! },
    })) as unknown as Bundle;
    for (const id of ids(await everyPage(client, ofPatient))) expect(byType).toContain(id);

    const missing = await client.read({ resourceType: 'Patient', id: 'no-such-patient' }).then(
      () => undefined,
      (err: { response?: { status?: number; data?: { resourceType?: string } } }) => err.response,
    );
    expect(missing?.status).toBe(404);
    expect(missing?.data?.resourceType).toBe('OperationOutcome');
  });
});
