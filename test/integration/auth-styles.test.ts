/**
 * Every token-endpoint auth style the vendor profiles use, end to end against the sandbox over real
 * HTTP(S): registration through the product's path (the sandbox learns the method and its material),
 * a full sync through a real worker, and the sandbox's view of how the client authenticated. A wrong
 * secret, certificate or assertion audience fails the sync non-retryably with VENDOR_AUTH_FAILED and
 * stores nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type PemPair,
} from '../../lib/crypto/tls-certs.js';
import { createTenant } from '../../lib/store/tenants.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { restoreIntegration } from '../../lib/revocation/restore.js';
import { revokeIntegration } from '../../lib/revocation/revoke.js';
import { certificateThumbprint } from '../../lib/vendors/sandbox-registration.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson, type SandboxRef } from '../../sandbox/test-client.js';
import { testEnv, uniqueId } from '../harness.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import { sandboxManifest, testActor, useSyncHarness, startTestSandbox } from './support.js';

// Rate-limited vendor endpoints (athenahealth's) get their queue's worker within a second, not the default 10.
const harness = useSyncHarness({
  sandbox: { size: 60 },
  config: { EHR_SYNC_PAGE_SIZE: '50', EHR_ENDPOINT_QUEUE_RECHECK_SECONDS: '1' },
});
// Stored secret references must name files beneath a secret root: the run's secrets directory.
const dir = fs.mkdtempSync(path.join(testEnv().secretsDir, 'auth-styles-'));

/** A reference to a file holding `content` (0600 for secrets, 0644 for certificates). */
function fileRef(name: string, content: string, mode = 0o600): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  return `file:${file}`;
}

function syntheticSecret(): string {
  const secret = `sb-${randomBytes(18).toString('base64url')}:%+`;
  recordIdentifiers([secret]); // the end-of-run leak scan fails if it shows up in any log or history
  return secret;
}

interface ClientView {
  token_endpoint_auth_method: string;
  authentications: number;
  kids_seen: Record<string, number>;
}

async function clientView(sb: SandboxRef, clientId: string): Promise<ClientView> {
  return adminJson<ClientView>(sb, `/admin/clients/${clientId}`);
}

async function newTenant(): Promise<string> {
  const tenantId = uniqueId('t');
  await createTenant(harness.pool, { id: tenantId, name: 'Synthetic Auth Clinic' }, testActor);
  return tenantId;
}

async function register(
  sandbox: SandboxHandle,
  tenantId: string,
  extra: Partial<Parameters<typeof registerIntegration>[1]>,
): Promise<string> {
  const id = uniqueId('i');
  await registerIntegration(
    harness.pool,
    {
      id,
      tenantId,
      vendor: 'sandbox',
      baseUrl: sandbox.fhirBaseUrl,
      resourceTypes: ['Patient'],
      secretsDir: testEnv().secretsDir,
      sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      ...extra,
    },
    testActor,
  );
  return id;
}

async function syncOk(tenantId: string, integrationId: string): Promise<number> {
  const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
    tenantId,
    integrationId,
    vendor: 'sandbox',
  });
  const report = await syncResult(handle);
  expect(report.outcome).toBe('completed');
  return report.totals.fetched;
}

/** The sync's failure type, and how many attempts its failing activity made. */
async function syncFailure(tenantId: string, integrationId: string): Promise<string | undefined> {
  const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
    tenantId,
    integrationId,
    vendor: 'sandbox',
  });
  const failure = await handle.result().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const cause = (failure as WorkflowFailedError).cause?.cause as { type?: string; nonRetryable?: boolean } | undefined;
  expect(cause?.nonRetryable).toBe(true);
  return cause?.type;
}

async function storedCount(integrationId: string): Promise<number> {
  const res = await harness.pool.query<{ n: string }>('SELECT count(*) AS n FROM records WHERE integration_id = $1', [
    integrationId,
  ]);
  return Number(res.rows[0]!.n);
}

describe('auth styles against the sandbox', () => {
  for (const alg of ['RS384', 'ES384'] as const) {
    it(`private_key_jwt with ${alg}: registered keys, assertions verified, records synced`, async () => {
      const tenantId = await newTenant();
      const id = await register(harness.sandbox, tenantId, { authMethod: 'private_key_jwt', alg });
      const integration = await getIntegration(harness.pool, id);
      expect(await syncOk(tenantId, id)).toBe((await sandboxManifest(harness.sandbox, 'Patient')).length);
      const view = await clientView(harness.sandbox, integration.clientId!);
      expect(view.token_endpoint_auth_method).toBe('private_key_jwt');
      expect(view.kids_seen[integration.signingKid!]).toBeGreaterThanOrEqual(1);
    });
  }

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    it(`${method}: the secret by reference, a hash at the vendor, records synced`, async () => {
      const tenantId = await newTenant();
      const clientSecretRef = fileRef(`${method}.secret`, syntheticSecret());
      const id = await register(harness.sandbox, tenantId, { authMethod: method, clientSecretRef });
      const integration = await getIntegration(harness.pool, id);
      expect(integration.clientSecretRef).toBe(clientSecretRef);
      expect(integration.signingKid).toBeNull();
      expect(await syncOk(tenantId, id)).toBeGreaterThan(0);
      const view = await clientView(harness.sandbox, integration.clientId!);
      expect(view.token_endpoint_auth_method).toBe(method);
      expect(view.authentications).toBeGreaterThanOrEqual(1);
    });
  }

  it('a wrong client secret fails the sync non-retryably with VENDOR_AUTH_FAILED and stores nothing', async () => {
    const tenantId = await newTenant();
    const id = await register(harness.sandbox, tenantId, {
      authMethod: 'client_secret_post',
      clientSecretRef: fileRef('wrong.secret', syntheticSecret()),
    });
    const { clientId } = await getIntegration(harness.pool, id);
    // The vendor rotated the secret; ours is stale.
    await adminJson(
      harness.sandbox,
      `/admin/clients/${clientId}`,
      {
        token_endpoint_auth_method: 'client_secret_post',
        client_secret: syntheticSecret(),
        scopes: ['system/Patient.rs'],
      },
      'PUT',
    );
    expect(await syncFailure(tenantId, id)).toBe('VENDOR_AUTH_FAILED');
    expect(await storedCount(id)).toBe(0);
  });

  it('an assertion with the wrong aud (vendor expects its issuer) fails non-retryably and stores nothing', async () => {
    const tenantId = await newTenant();
    const id = await register(harness.sandbox, tenantId, { authMethod: 'private_key_jwt', alg: 'ES384' });
    const integration = await getIntegration(harness.pool, id);
    await adminJson(
      harness.sandbox,
      `/admin/clients/${integration.clientId}`,
      { jwks: { keys: [integration.publicJwk] }, scopes: ['system/Patient.rs'], assertion_audience: 'issuer' },
      'PUT',
    );
    expect(await syncFailure(tenantId, id)).toBe('VENDOR_AUTH_FAILED');
    expect(await storedCount(id)).toBe(0);
  });

  describe('tls_client_auth (RFC 8705) against a mutual-TLS sandbox', () => {
    let ca: CertificateAuthority;
    let client: PemPair;
    let other: PemPair;
    let tlsSandbox: SandboxHandle;
    let ref: SandboxRef;
    let tlsRefs: { caRef: string; clientCertRef: string; clientKeyRef: string };

    beforeAll(async () => {
      ca = await createCertificateAuthority('auth-styles test CA');
      const server = await issueCertificate(ca, {
        commonName: 'localhost',
        altNames: ['localhost', '127.0.0.1'],
        usage: 'server',
      });
      client = await issueCertificate(ca, { commonName: 'connector-a', usage: 'client' });
      other = await issueCertificate(ca, { commonName: 'connector-b', usage: 'client' });
      tlsSandbox = await startSandbox({
        seed: 7,
        size: 60,
        tls: { certPem: server.certPem, keyPem: server.keyPem, caPem: ca.certPem, requireClientCert: true },
      });
      ref = { ...tlsSandbox, tls: { caPem: ca.certPem, certPem: client.certPem, keyPem: client.keyPem } };
      // startTestSandbox's registration uses plain fetch; this sandbox needs our CA and certificate.
      recordIdentifiers((await adminJson<{ strings: string[] }>(ref, '/admin/identifiers')).strings);
      tlsRefs = {
        caRef: fileRef('ca.pem', ca.certPem, 0o644),
        clientCertRef: fileRef('client.pem', client.certPem, 0o644),
        clientKeyRef: fileRef('client.key', client.keyPem),
      };
    });
    afterAll(async () => tlsSandbox?.close());

    it('authenticates by the client certificate and syncs', async () => {
      const tenantId = await newTenant();
      const id = await register(tlsSandbox, tenantId, { authMethod: 'tls_client_auth', tlsRefs });
      const integration = await getIntegration(harness.pool, id);
      expect(await syncOk(tenantId, id)).toBeGreaterThan(0);
      const view = await clientView(ref, integration.clientId!);
      expect(view.token_endpoint_auth_method).toBe('tls_client_auth');
      expect(view.authentications).toBeGreaterThanOrEqual(1);
      // Revocation reaches this vendor too: RFC 7009 over mTLS, authenticated by the certificate.
      const revoked = await revokeIntegration(harness.pool, id, testActor);
      expect(revoked.acknowledged).toBe(revoked.workers);
      expect((await adminJson<{ tokensRevoked: number }>(ref, '/admin/stats')).tokensRevoked).toBeGreaterThanOrEqual(1);
    });

    it('a certificate the vendor did not register fails non-retryably and stores nothing', async () => {
      const tenantId = await newTenant();
      const id = await register(tlsSandbox, tenantId, { authMethod: 'tls_client_auth', tlsRefs });
      const { clientId } = await getIntegration(harness.pool, id);
      // The vendor has another certificate on file for this client.
      await adminJson(
        ref,
        `/admin/clients/${clientId}`,
        {
          token_endpoint_auth_method: 'tls_client_auth',
          tls_client_cert_thumbprint: certificateThumbprint(other.certPem),
          scopes: ['system/Patient.rs'],
        },
        'PUT',
      );
      expect(await syncFailure(tenantId, id)).toBe('VENDOR_AUTH_FAILED');
      expect(await storedCount(id)).toBe(0);
    });
  });

  it('restore of a client_secret integration needs the rotated secret by a new reference, then syncs with it', async () => {
    const tenantId = await newTenant();
    const oldRef = fileRef('restore-old.secret', syntheticSecret());
    const id = await register(harness.sandbox, tenantId, {
      authMethod: 'client_secret_basic',
      clientSecretRef: oldRef,
    });
    await revokeIntegration(harness.pool, id, testActor, { awaitWorkersMs: 0 });
    const opts = {
      secretsDir: testEnv().secretsDir,
      sandboxAdmin: { url: harness.sandbox.url, adminToken: harness.sandbox.adminToken },
    };
    await expect(restoreIntegration(harness.pool, id, testActor, opts)).rejects.toThrow(
      /rotate the secret at the vendor/,
    );
    await expect(restoreIntegration(harness.pool, id, testActor, { ...opts, clientSecretRef: oldRef })).rejects.toThrow(
      /must differ/,
    );
    const newRef = fileRef('restore-new.secret', syntheticSecret());
    const restored = await restoreIntegration(harness.pool, id, testActor, { ...opts, clientSecretRef: newRef });
    expect(restored.status).toBe('active');
    expect(restored.clientSecretRef).toBe(newRef);
    expect(await syncOk(tenantId, id)).toBeGreaterThan(0);
  });

  it('registers a vendor id with its personality sandbox, checking its parameters, and syncs with the chosen method', async () => {
    const tenantId = await newTenant();
    // The athenahealth personality requires ah-practice on every search (a plain sandbox would refuse it as unknown).
    // A small practice (5 patients): athenahealth is read patient by patient, paced at its published 10/s on our
    // side, and what is checked here (parameters, auth method, records synced) holds for any size.
    const athena = await startTestSandbox({ personality: 'athenahealth', rateLimit: null, size: 50 });
    try {
      const base = { vendor: 'athenahealth', authMethod: 'client_secret_basic' };
      await expect(
        register(athena, tenantId, { ...base, clientSecretRef: fileRef('athena-0.secret', syntheticSecret()) }),
      ).rejects.toThrow(/needs practiceId/);
      const vendorParams = { practiceId: 'a-1.Practice-195900' };
      const id = await register(athena, tenantId, {
        ...base,
        vendorParams,
        clientSecretRef: fileRef('athena.secret', syntheticSecret()),
      });
      const integration = await getIntegration(harness.pool, id);
      expect(integration).toMatchObject({ vendor: 'athenahealth', authMethod: 'client_secret_basic', vendorParams });
      expect(await syncOk(tenantId, id)).toBeGreaterThan(0);
      expect((await clientView(athena, integration.clientId!)).token_endpoint_auth_method).toBe('client_secret_basic');
    } finally {
      await athena.close();
    }
  });

  it('refuses an auth method the vendor profile does not list, naming the ones it does', async () => {
    const tenantId = await newTenant();
    await expect(
      registerIntegration(
        harness.pool,
        {
          id: uniqueId('i'),
          tenantId,
          vendor: 'epic',
          baseUrl: harness.sandbox.fhirBaseUrl,
          authMethod: 'client_secret_basic',
          clientId: 'c',
          secretsDir: testEnv().secretsDir,
        },
        testActor,
      ),
    ).rejects.toThrow(/Epic accepts private_key_jwt/);
  });
});
