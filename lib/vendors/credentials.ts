/**
 * Resolves an integration id to what the vendor wrapper needs to authenticate: endpoint URLs,
 * client id, requested scopes (the policy's resource types that the vendor's SMART discovery
 * advertises, read/search only: lib/vendors/advertised-scopes.ts), its auth
 * method with the matching material (a signer for client assertions, a client secret, TLS
 * material for mTLS / tls_client_auth) and its vendor parameters. Private keys, secrets and client
 * keys are loaded from their secret references once and kept in process memory; they never enter
 * the database, a log line or a workflow history.
 */
import type { ResourceType } from '../domain.js';
import { readScopeFor } from '../domain.js';
import { resolveSecret } from '../config/secrets.js';
import type { StoredSecretPolicy } from '../config/stored-secret-refs.js';
import { TLS_REF_KEYS, assertStoredSecretRefAllowed } from '../config/stored-secret-refs.js';
import { ClientIdPendingError, ConfigError, IntegrationRevokedError, SecretRefRefusedError } from '../errors/index.js';
import { signClientAssertion } from '../crypto/client-assertion.js';
import { loadSigningKey } from '../keys/signing-keys.js';
import type { Integration } from '../integrations/repository.js';
import { getIntegration } from '../integrations/repository.js';
import type { Queryable } from '../store/pool.js';
import { writableTypes } from '../writeback/authority.js';
import { advertisedTypes, unadvertisedTypes } from './advertised-scopes.js';
import { discoverSmartConfiguration } from './smart-discovery.js';
import { loadVendorTls } from './tls-options.js';
import type { VendorTls } from './tls-options.js';
import type { IntegrationCredentials } from './vendor-call.js';

export interface CredentialDirectory {
  credentials(integrationId: string): Promise<IntegrationCredentials>;
  integration(integrationId: string): Promise<Integration>;
  /** Drops the cached integration row (revocation, restore: lib/revocation/watcher.ts). */
  forget(integrationId: string): void;
  /** Credentials (whatever the status) and the vendor's RFC 7009 endpoint, for revoking tokens there. */
  revocationTarget(integrationId: string): Promise<{ cred: IntegrationCredentials; endpoint: string } | undefined>;
  /** The integration's types its vendor's `scopes_supported` does not advertise (none when it says nothing). */
  unadvertisedTypes(integrationId: string): Promise<ResourceType[]>;
}

export interface CredentialDirectoryOptions {
  /**
   * What the integration's stored secret references may name (the worker's own configuration:
   * storedSecretPolicyFromConfig). Checked before every use, so a reference that reached the row
   * some other way (an owner's write, a restored backup, a symbolic link swapped later) is refused
   * before anything is read or sent.
   */
  secretPolicy: StoredSecretPolicy;
  /** Called (and awaited) with each refusal before it is thrown: the worker audits it. */
  onRefusal?: (integration: Integration, err: SecretRefRefusedError) => Promise<void>;
  cacheTtlMs?: number;
  /**
   * Ask the vendor's SMART discovery which scopes it advertises (default true), remembered per base
   * URL for `scopesTtlMs` (default 10 minutes). A discovery that fails says nothing: every type is asked.
   */
  discoverScopes?: boolean;
  scopesTtlMs?: number;
}

export function createCredentialDirectory(db: Queryable, options: CredentialDirectoryOptions): CredentialDirectory {
  const cacheTtlMs = options.cacheTtlMs ?? 15_000;
  const integrations = new Map<string, { value: Integration; loadedAt: number }>();

  async function integration(integrationId: string): Promise<Integration> {
    const cached = integrations.get(integrationId);
    if (cached && Date.now() - cached.loadedAt < cacheTtlMs) return cached.value;
    const value = await getIntegration(db, integrationId);
    integrations.set(integrationId, { value, loadedAt: Date.now() });
    return value;
  }

  async function credentials(integrationId: string): Promise<IntegrationCredentials> {
    const i = await integration(integrationId);
    if (i.status === 'pending-client-id') throw new ClientIdPendingError(i.id);
    if (i.status !== 'active') throw new IntegrationRevokedError(i.id, i.status);
    return credentialsFor(i);
  }

  /** One load per reference (and kid); a failed load is not cached: fixing the file is enough. */
  const material = new Map<string, Promise<unknown>>();
  function once<T>(key: string, load: () => Promise<T>): Promise<T> {
    let loading = material.get(key) as Promise<T> | undefined;
    if (!loading) {
      loading = load();
      loading.catch(() => material.delete(key));
      material.set(key, loading);
    }
    return loading;
  }

  /** The integration's references as they may be read now (file: → realpath), or a refusal, audited. */
  async function checkedRefs(
    i: Integration,
  ): Promise<Pick<Integration, 'privateKeyRef' | 'clientSecretRef' | 'tlsRefs'>> {
    const check = (field: string, ref: string): string =>
      assertStoredSecretRefAllowed(ref, { field, policy: options.secretPolicy });
    try {
      const tlsRefs = i.tlsRefs ? { ...i.tlsRefs } : null;
      for (const key of TLS_REF_KEYS) {
        const ref = tlsRefs?.[key];
        if (tlsRefs && ref !== undefined) tlsRefs[key] = check(`tls.${key}`, ref);
      }
      return {
        privateKeyRef: i.privateKeyRef === null ? null : check('privateKeyRef', i.privateKeyRef),
        clientSecretRef: i.clientSecretRef === null ? null : check('clientSecretRef', i.clientSecretRef),
        tlsRefs,
      };
    } catch (err) {
      if (err instanceof SecretRefRefusedError) await options.onRefusal?.(i, err);
      throw err;
    }
  }

  const scopesTtlMs = options.scopesTtlMs ?? 600_000;
  const discovered = new Map<string, { at: number; scopes: Promise<string[] | undefined> }>();
  /** SMART discovery's `scopes_supported` of the integration's base URL (cached; undefined when unknown). */
  function scopesSupported(i: Integration, tls: VendorTls | undefined): Promise<string[] | undefined> {
    if (options.discoverScopes === false) return Promise.resolve(undefined);
    const hit = discovered.get(i.baseUrl);
    if (hit && Date.now() - hit.at < scopesTtlMs) return hit.scopes;
    const scopes = discoverSmartConfiguration(i.baseUrl, 5_000, tls).then(
      (c) => c.scopesSupported,
      () => undefined,
    );
    discovered.set(i.baseUrl, { at: Date.now(), scopes });
    return scopes;
  }

  async function tlsOf(refs: Pick<Integration, 'tlsRefs'>): Promise<VendorTls | undefined> {
    return refs.tlsRefs
      ? once<VendorTls>(`tls:${JSON.stringify(refs.tlsRefs)}`, () => loadVendorTls(refs.tlsRefs!))
      : undefined;
  }

  async function unadvertised(integrationId: string): Promise<ResourceType[]> {
    const i = await integration(integrationId);
    return unadvertisedTypes(i.resourceTypes, await scopesSupported(i, await tlsOf(await checkedRefs(i))));
  }

  async function credentialsFor(i: Integration): Promise<IntegrationCredentials> {
    if (i.authMethod !== 'none' && (i.clientId === null || i.tokenUrl === null)) throw new ClientIdPendingError(i.id);
    const refs = await checkedRefs(i);
    const tls = await tlsOf(refs);
    // Only what the vendor advertises: one unheld type must not fail the token request for all.
    const types = advertisedTypes(i.resourceTypes, await scopesSupported(i, tls));
    const writeTypes = await writableTypes(db, { tenantId: i.tenantId, integrationId: i.id }, types);
    const base: Omit<IntegrationCredentials, 'signAssertion'> = {
      tenantId: i.tenantId,
      integrationId: i.id,
      vendor: i.vendor,
      baseUrl: i.baseUrl,
      // Auth method none: no token endpoint and no client id; nothing is ever requested with them.
      tokenUrl: i.tokenUrl ?? '',
      clientId: i.clientId ?? '',
      scopes: types.map(readScopeFor),
      resourceTypes: types,
      ...(writeTypes.length > 0 ? { writeTypes } : {}),
      authMethod: i.authMethod,
      generation: i.credentialGeneration,
      vendorParams: { ...i.vendorParams },
      ...(tls ? { tls } : {}),
    };
    const noAssertion = (): Promise<string> =>
      Promise.reject(new ConfigError(`integration ${i.id}`, `auth method ${i.authMethod} signs no client assertion`));
    switch (i.authMethod) {
      case 'private_key_jwt': {
        const { signingAlg, signingKid } = i;
        const { privateKeyRef } = refs;
        if (!privateKeyRef || !signingAlg || !signingKid)
          throw new ConfigError(`integration ${i.id}`, 'private_key_jwt needs a signing key');
        const privateKey = once(`key:${privateKeyRef}#${signingKid}`, () => loadSigningKey(privateKeyRef, signingAlg));
        return {
          ...base,
          signAssertion: async (audience = i.tokenUrl ?? '') =>
            signClientAssertion({
              clientId: i.clientId ?? '',
              audience,
              kid: signingKid,
              alg: signingAlg,
              privateKey: await privateKey,
            }),
        };
      }
      case 'client_secret_basic':
      case 'client_secret_post': {
        const ref = refs.clientSecretRef;
        if (!ref) throw new ConfigError(`integration ${i.id}`, `${i.authMethod} needs a client secret reference`);
        return {
          ...base,
          signAssertion: noAssertion,
          clientSecret: () => once(`secret:${ref}`, () => resolveSecret(ref, { field: 'clientSecretRef' })),
        };
      }
      case 'tls_client_auth':
        if (!tls?.clientCertPem)
          throw new ConfigError(`integration ${i.id}`, 'tls_client_auth needs a client certificate and key (tls refs)');
        return { ...base, signAssertion: noAssertion };
      case 'none':
        return { ...base, signAssertion: noAssertion };
    }
  }

  function forget(integrationId: string): void {
    integrations.delete(integrationId);
  }

  /** Discovered at revocation time from the vendor's SMART configuration (cached per base URL). */
  const endpoints = new Map<string, Promise<string | undefined>>();
  async function revocationTarget(
    integrationId: string,
  ): Promise<{ cred: IntegrationCredentials; endpoint: string } | undefined> {
    const i = await getIntegration(db, integrationId);
    if (i.authMethod === 'none') return undefined; // no token was ever issued
    let endpoint = endpoints.get(i.baseUrl);
    if (!endpoint) {
      endpoint = discoverRevocationEndpoint(i);
      endpoints.set(i.baseUrl, endpoint);
      endpoint.catch(() => endpoints.delete(i.baseUrl));
    }
    const url = await endpoint;
    return url ? { cred: await credentialsFor(i), endpoint: url } : undefined;
  }

  async function discoverRevocationEndpoint(i: Integration): Promise<string | undefined> {
    // A vendor behind a private CA or mTLS is reached with the integration's TLS material.
    const { tlsRefs } = await checkedRefs(i);
    return (await discoverSmartConfiguration(i.baseUrl, 5_000, tlsRefs ? await loadVendorTls(tlsRefs) : undefined))
      .revocationEndpoint;
  }

  return { credentials, integration, forget, revocationTarget, unadvertisedTypes: unadvertised };
}
