/**
 * Scopes requested = the integration's types ∩ what the vendor's SMART discovery advertises. A vendor
 * whose `scopes_supported` leaves out a type (it does not hold it) would answer `invalid_scope` to a
 * token request naming it, failing every type: so the type's scope is not requested, the planner skips
 * it with VENDOR_SCOPE_NOT_ADVERTISED, and the other types sync. The vendor here is the sandbox behind
 * a small proxy that rewrites only its discovery document, as a server holding no Specimen would.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { createTenant } from '../../lib/store/tenants.js';
import { tokenRequest } from '../../lib/vendors/client-auth.js';
import { createCredentialDirectory } from '../../lib/vendors/credentials.js';
import { storedSecretPolicyFromConfig } from '../../lib/config/stored-secret-refs.js';
import { sandboxManifest, storedVersions, testActor, useSyncHarness } from './support.js';
import { testEnv, uniqueId } from '../harness.js';

const harness = useSyncHarness({ sandbox: { size: 200 }, config: { EHR_SYNC_PAGE_SIZE: '1000' } });
const ADVERTISED = ['Patient', 'Observation'];

let proxy: http.Server;
let proxyBase = '';
beforeAll(async () => {
  const target = new URL(harness.sandbox.fhirBaseUrl);
  proxy = http.createServer((req, res) => {
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        if (!req.url?.endsWith('/.well-known/smart-configuration')) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          config.scopes_supported = ['openid', ...ADVERTISED.map((t) => `system/${t}.rs`), 'patient/*.rs'];
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(config));
        });
      },
    );
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyBase = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${target.pathname}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
});

async function registerBehindProxy(): Promise<{ tenantId: string; integrationId: string }> {
  const tenantId = uniqueId('t');
  await createTenant(harness.pool, { id: tenantId, name: 'Synthetic Test Clinic' }, testActor);
  const integrationId = uniqueId('i');
  await registerIntegration(
    harness.pool,
    {
      id: integrationId,
      tenantId,
      vendor: 'sandbox',
      baseUrl: proxyBase,
      resourceTypes: ['Patient', 'Observation', 'Specimen'],
      secretsDir: testEnv().secretsDir,
      sandboxAdmin: { url: harness.sandbox.url, adminToken: harness.sandbox.adminToken },
    },
    testActor,
  );
  return { tenantId, integrationId };
}

describe('scopes the vendor does not advertise', () => {
  it('are not requested: the token request names only the advertised types', async () => {
    const { integrationId } = await registerBehindProxy();
    const directory = createCredentialDirectory(harness.pool, {
      secretPolicy: storedSecretPolicyFromConfig(harness.config),
    });
    const cred = await directory.credentials(integrationId);
    expect(cred.scopes).toEqual(['system/Patient.rs', 'system/Observation.rs']);
    const form = new URLSearchParams((await tokenRequest(cred)).body);
    expect(form.get('scope')?.split(' ').sort()).toEqual(['system/Observation.rs', 'system/Patient.rs']);
    expect(form.get('scope')).not.toContain('Specimen');
  });

  it('a sync stores the advertised types and fetches nothing of the others', async () => {
    const { tenantId, integrationId } = await registerBehindProxy();
    const handle = await startSync(
      harness.temporal.client,
      harness.config.TEMPORAL_TASK_QUEUE,
      { tenantId, integrationId, vendor: 'sandbox' },
      { full: false },
    );
    const report = await syncResult(handle);
    expect(report.outcome).toBe('completed');
    for (const type of ['Patient', 'Observation'] as const)
      expect((await storedVersions(harness.pool, tenantId, integrationId, type)).size, type).toBe(
        (await sandboxManifest(harness.sandbox, type)).length,
      );
    expect((await sandboxManifest(harness.sandbox, 'Specimen')).length).toBeGreaterThan(0);
    expect((await storedVersions(harness.pool, tenantId, integrationId, 'Specimen')).size).toBe(0);
    // The plan skipped Specimen, and the report names it with its reason.
    expect(report.skipped).toEqual([
      expect.objectContaining({ resourceType: 'Specimen', reason: 'VENDOR_SCOPE_NOT_ADVERTISED' }),
    ]);
    expect(report.types.filter((t) => t.done).map((t) => t.resourceType)).toEqual(['Patient', 'Observation']);
  });
});
