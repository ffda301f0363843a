/**
 * Resolves an integration id to what the vendor wrapper needs to authenticate: endpoint URLs,
 * client id, requested scopes (exactly the policy's resource types, read/search only) and a
 * signer for client assertions. Private keys are loaded from their secret reference once and
 * kept in process memory; they never enter the database, a log line or a workflow history.
 */
import { readScopeFor } from '../domain.js';
import { ConfigError, IntegrationRevokedError } from '../errors/index.js';
import { signClientAssertion } from '../security/client-assertion.js';
import { loadSigningKey } from '../security/signing-keys.js';
import type { Integration } from '../store/integrations.js';
import { getIntegration } from '../store/integrations.js';
import type { Queryable } from '../store/pool.js';
import { discoverSmartConfiguration } from './smart-discovery.js';
import type { IntegrationCredentials } from './vendor-client.js';

export interface CredentialDirectory {
  credentials(integrationId: string): Promise<IntegrationCredentials>;
  integration(integrationId: string): Promise<Integration>;
  /** Drops the cached integration row (revocation, restore: lib/vendors/revocation-watcher.ts). */
  forget(integrationId: string): void;
  /** Credentials (whatever the status) and the vendor's RFC 7009 endpoint, for revoking tokens there. */
  revocationTarget(integrationId: string): Promise<{ cred: IntegrationCredentials; endpoint: string } | undefined>;
}

export function createCredentialDirectory(db: Queryable, cacheTtlMs = 15_000): CredentialDirectory {
  const integrations = new Map<string, { value: Integration; loadedAt: number }>();
  const keys = new Map<string, ReturnType<typeof loadSigningKey>>();

  async function integration(integrationId: string): Promise<Integration> {
    const cached = integrations.get(integrationId);
    if (cached && Date.now() - cached.loadedAt < cacheTtlMs) return cached.value;
    const value = await getIntegration(db, integrationId);
    integrations.set(integrationId, { value, loadedAt: Date.now() });
    return value;
  }

  async function credentials(integrationId: string): Promise<IntegrationCredentials> {
    const i = await integration(integrationId);
    if (i.status !== 'active') throw new IntegrationRevokedError(i.id, i.status);
    return credentialsFor(i);
  }

  function credentialsFor(i: Integration): IntegrationCredentials {
    if (i.authMethod !== 'private_key_jwt' || !i.privateKeyRef || !i.signingAlg || !i.signingKid) {
      throw new ConfigError(`integration ${i.id}`, `auth method ${i.authMethod} is not supported by this worker yet`);
    }
    const { privateKeyRef, signingAlg, signingKid } = i;
    const keyCacheKey = `${privateKeyRef}#${signingKid}`;
    if (!keys.has(keyCacheKey)) {
      const loading = loadSigningKey(privateKeyRef, signingAlg);
      // A failed load (e.g. a key file with the wrong mode) is not cached: fixing the file is enough.
      loading.catch(() => keys.delete(keyCacheKey));
      keys.set(keyCacheKey, loading);
    }
    const privateKey = keys.get(keyCacheKey)!;
    return {
      tenantId: i.tenantId,
      integrationId: i.id,
      vendor: i.vendor,
      baseUrl: i.baseUrl,
      tokenUrl: i.tokenUrl,
      clientId: i.clientId,
      scopes: i.resourceTypes.map(readScopeFor),
      generation: i.credentialGeneration,
      signAssertion: async () =>
        signClientAssertion({ clientId: i.clientId, audience: i.tokenUrl, kid: signingKid, alg: signingAlg, privateKey: await privateKey }),
    };
  }

  function forget(integrationId: string): void {
    integrations.delete(integrationId);
  }

  /** Discovered at revocation time from the vendor's SMART configuration (cached per base URL). */
  const endpoints = new Map<string, Promise<string | undefined>>();
  async function revocationTarget(integrationId: string): Promise<{ cred: IntegrationCredentials; endpoint: string } | undefined> {
    const i = await getIntegration(db, integrationId);
    let endpoint = endpoints.get(i.baseUrl);
    if (!endpoint) {
      endpoint = discoverRevocationEndpoint(i.baseUrl);
      endpoints.set(i.baseUrl, endpoint);
      endpoint.catch(() => endpoints.delete(i.baseUrl));
    }
    const url = await endpoint;
    return url ? { cred: credentialsFor(i), endpoint: url } : undefined;
  }

  return { credentials, integration, forget, revocationTarget };
}

async function discoverRevocationEndpoint(baseUrl: string): Promise<string | undefined> {
  return (await discoverSmartConfiguration(baseUrl, 5_000)).revocationEndpoint;
}
