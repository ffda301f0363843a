/**
 * Resolves an integration id to what the vendor wrapper needs to authenticate: endpoint URLs,
 * client id, requested scopes (exactly the policy's resource types, read/search only) and a
 * signer for client assertions. Private keys are loaded from their secret reference once and
 * kept in process memory; they never enter the database, a log line or a workflow history.
 */
import { readScopeFor } from '../domain.js';
import { PolicyViolationError } from '../errors/index.js';
import { signClientAssertion } from '../security/client-assertion.js';
import { loadSigningKey } from '../security/signing-keys.js';
import type { Integration } from '../store/integrations.js';
import { getIntegration } from '../store/integrations.js';
import type { Queryable } from '../store/pool.js';
import type { IntegrationCredentials } from './vendor-client.js';

export interface CredentialDirectory {
  credentials(integrationId: string): Promise<IntegrationCredentials>;
  integration(integrationId: string): Promise<Integration>;
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
    if (i.status !== 'active') throw new PolicyViolationError('integration-suspended', `integration ${i.id} is ${i.status}`);
    const keyCacheKey = `${i.privateKeyRef}#${i.signingKid}`;
    if (!keys.has(keyCacheKey)) keys.set(keyCacheKey, loadSigningKey(i.privateKeyRef, i.signingAlg));
    const privateKey = keys.get(keyCacheKey)!;
    return {
      tenantId: i.tenantId,
      integrationId: i.id,
      vendor: i.vendor,
      baseUrl: i.baseUrl,
      tokenUrl: i.tokenUrl,
      clientId: i.clientId,
      scopes: i.resourceTypes.map(readScopeFor),
      signAssertion: async () =>
        signClientAssertion({ clientId: i.clientId, audience: i.tokenUrl, kid: i.signingKid, alg: i.signingAlg, privateKey: await privateKey }),
    };
  }

  return { credentials, integration };
}
