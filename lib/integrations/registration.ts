/**
 * Registering an integration: validate the request against policy and the vendor profile (vendor,
 * auth method, vendor parameters, read strategy), find the vendor's token endpoint (SMART discovery, or
 * the one given for a server without it), prepare the method's credentials — for private_key_jwt a fresh
 * signing key pair (private half to a 0600 secret file, never the database), for client secrets and
 * certificates only their secret references — register the client with a sandbox vendor automatically
 * (real vendors: lib/integrations/onboarding.ts says what to give them; without a client id yet the
 * integration waits as pending-client-id), and store the integration with its audit event.
 * Auth method none (an open server) needs TLS or loopback and an explicit acknowledgement, audited.
 */
import type { AuditContext } from '../audit/chain.js';
import { ID_PATTERN } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError, VendorHttpError } from '../errors/index.js';
import { generateIntegrationSigningKey, jwksUrlFor } from '../keys/signing-keys.js';
import type { Integration } from './repository.js';
import { createIntegration, getIntegration } from './repository.js';
import { parseReadChoice } from './read-choice.js';
import type { ReadChoiceInput } from './read-choice.js';
import {
  parseBaseUrl,
  parseClientId,
  parseEndpointUrl,
  parseFileHosts,
  parsePurpose,
  parseResourceTypes,
} from './registration-input.js';
import type { Pool } from '../store/pool.js';
import { tenantExists } from '../store/tenants.js';
import { assertTransportAllowed, isLoopback } from '../vendors/http-policy.js';
import { discoverSmartConfiguration } from '../vendors/smart-discovery.js';
import { checkSecretRef } from '../config/secrets.js';
import { tlsRefFields } from '../config/stored-secret-refs.js';
import { assertStoredSecretRefsAllowed, auditingSecretRefRefusals } from '../store/secret-roots.js';
import { profileFor } from '../vendors/profiles/index.js';
import { integrationDefaults } from '../vendors/profiles/compensating.js';
import { scopesFor, validateVendorParams } from '../vendors/profiles/adapters.js';
import { TOKEN_AUTH_METHODS, type TokenAuthMethod, type VendorProfile } from '../vendors/profiles/types.js';
import { registerSandboxClient } from '../vendors/sandbox-registration.js';
import type { SandboxAdmin } from '../vendors/sandbox-registration.js';
import { loadVendorTls } from '../vendors/tls-options.js';
import type { VendorTls, VendorTlsRefs } from '../vendors/tls-options.js';

export { vendorNeeds } from './onboarding.js';

export interface RegisterIntegrationRequest {
  id: string;
  tenantId: string;
  vendor: string;
  baseUrl: string;
  resourceTypes?: string[];
  /** The declared purpose (default clinical-sync): fixes the allowed resource types and data classes. */
  purpose?: string;
  alg?: 'ES384' | 'RS384';
  /**
   * Assigned by real vendors (the sandbox assigns one on registration). Absent for a real vendor: the
   * integration is stored as pending-client-id until `integrations update --client-id`.
   */
  clientId?: string;
  /** The token endpoint, for a server that publishes no `.well-known/smart-configuration`. */
  tokenUrl?: string;
  secretsDir: string;
  /** A sandbox vendor's admin endpoint (any personality, any vendor id): the client is registered there. */
  sandboxAdmin?: SandboxAdmin;
  /** Default: the vendor profile's preferred method; otherwise one the profile lists. */
  authMethod?: string;
  /** Auth method none only: the operator's explicit acceptance of an unauthenticated server (audited). */
  acknowledgeUnauthenticatedServer?: boolean;
  /** client_secret_basic/post: a secret reference (file:/env:/manager), never the secret. */
  clientSecretRef?: string;
  /** Vendor CA and client certificate/key references (mTLS; required for tls_client_auth). */
  tlsRefs?: VendorTlsRefs;
  /** The profile's extra parameters (`--param practiceId=…`). */
  vendorParams?: Record<string, string>;
  /** Our hosted JWKS's public base URL (JWKS_PUBLIC_URL): private_key_jwt clients are registered by URL. */
  jwksPublicUrl?: string;
  /** `--strategy` and its options; absent: the vendor profile's default. */
  read?: ReadChoiceInput;
  /** Hosts besides the vendor's own that may serve Bulk Data output files. */
  bulkFileHosts?: string[];
}

export async function registerIntegration(
  pool: Pool,
  req: RegisterIntegrationRequest,
  ctx: AuditContext,
): Promise<Integration> {
  if (!ID_PATTERN.test(req.id))
    throw new InvalidArgumentError('integration id', 'use 1-63 lowercase letters, digits or hyphens');
  const profile = profileFor(req.vendor);
  const authMethod = parseAuthMethod(profile, req.authMethod);
  const purpose = parsePurpose(req.purpose);
  const resourceTypes = parseResourceTypes(req.resourceTypes, purpose);
  const baseUrl = parseBaseUrl(req.baseUrl);
  const vendorParams = req.vendorParams ?? {};
  validateVendorParams(profile, vendorParams);
  const material = checkMaterial(authMethod, req);
  const read = parseReadChoice(profile, req.read ?? {});
  const bulkFileHosts = parseFileHosts(req.bulkFileHosts ?? []);
  const givenTokenUrl = req.tokenUrl === undefined ? undefined : parseEndpointUrl(req.tokenUrl, '--token-url');
  if (authMethod === 'none') checkUnauthenticated(req, baseUrl, givenTokenUrl);
  const alg = req.alg ?? (profile.auth.algorithms.value.includes('ES384') ? 'ES384' : 'RS384');
  if (authMethod === 'private_key_jwt' && !profile.auth.algorithms.value.includes(alg)) {
    throw new InvalidArgumentError('--alg', `${profile.name} accepts ${profile.auth.algorithms.value.join(', ')}`);
  }
  if (!(await tenantExists(pool, req.tenantId))) throw new NotFoundError('tenant', req.tenantId);
  const existing = await getIntegration(pool, req.id).catch((err: unknown) =>
    err instanceof NotFoundError ? undefined : Promise.reject(err),
  );
  if (existing) throw new ConflictError('integration', req.id);
  if (req.vendor === 'sandbox' && !req.sandboxAdmin && !req.clientId) {
    throw new InvalidArgumentError(
      'sandbox',
      'no running sandbox to register with: start the dev stack (`ehrctl dev up`)',
    );
  }
  const givenClientId = req.clientId === undefined ? undefined : parseClientId(req.clientId);

  // Checked before any of them is read or sent (register_integration checks them again when stored).
  const scope = { stage: 'registration' as const, tenantId: req.tenantId, integrationId: req.id };
  const given = [
    ...(material.clientSecretRef ? [{ field: '--client-secret-ref', ref: material.clientSecretRef }] : []),
    ...tlsRefFields(material.tlsRefs),
  ];
  await assertStoredSecretRefsAllowed(pool, ctx, given, scope);
  if (material.clientSecretRef) checkSecretRef(material.clientSecretRef, { field: '--client-secret-ref' });
  const tls = req.tlsRefs ? await loadVendorTls(req.tlsRefs) : undefined;
  const tokenUrl = authMethod === 'none' ? null : (givenTokenUrl ?? (await discoverTokenEndpoint(baseUrl, tls)));
  const key =
    authMethod === 'private_key_jwt'
      ? await generateIntegrationSigningKey({ alg, secretsDir: req.secretsDir, integrationId: req.id })
      : undefined;
  const publicJwk = key ? { ...key.publicJwk, kid: key.kid, alg, use: 'sig' } : null;
  let clientId = givenClientId ?? null;
  if (req.sandboxAdmin) {
    clientId = await registerSandboxClient(
      req.sandboxAdmin,
      profile,
      {
        authMethod,
        scopes: scopesFor(profile, resourceTypes),
        ...(req.jwksPublicUrl ? { jwksUri: jwksUrlFor(req.jwksPublicUrl, req.id) } : {}),
        ...(publicJwk ? { publicJwk } : {}),
        clientSecretRef: material.clientSecretRef,
        ...(tls ? { tls } : {}),
      },
      { clientId: givenClientId },
    );
  }
  return auditingSecretRefRefusals(pool, ctx, scope, () =>
    createIntegration(
      pool,
      {
        id: req.id,
        tenantId: req.tenantId,
        vendor: req.vendor,
        baseUrl,
        tokenUrl,
        clientId,
        authMethod,
        signingAlg: key ? alg : null,
        signingKid: key?.kid ?? null,
        publicJwk,
        privateKeyRef: key?.privateKeyRef ?? null,
        clientSecretRef: material.clientSecretRef,
        tlsRefs: material.tlsRefs,
        vendorParams,
        resourceTypes,
        purpose,
        readStrategy: read.strategy,
        readOptions: read.options,
        bulkFileHosts,
        // The vendor's compensating controls become this integration's own settings (overridable with a reason).
        ...integrationDefaults(profile, authMethod),
      },
      ctx,
      {
        tokenUrlSource: authMethod === 'none' ? 'none' : givenTokenUrl ? 'given' : 'smart-discovery',
        ...(authMethod === 'none' ? { unauthenticatedServerAcknowledged: true } : {}),
      },
    ),
  );
}

/**
 * An open server: no token, no client, so TLS (or loopback) is all that protects the exchange and the
 * network is the organisation's to guard. Refused unless both hold and the operator says so explicitly.
 */
function checkUnauthenticated(req: RegisterIntegrationRequest, baseUrl: string, tokenUrl: string | undefined): void {
  const url = new URL(baseUrl);
  if (url.protocol !== 'https:' && !isLoopback(url))
    throw new InvalidArgumentError('--auth-method', 'none needs an https base URL (or a loopback address)');
  if (req.acknowledgeUnauthenticatedServer !== true)
    throw new InvalidArgumentError(
      '--acknowledge-unauthenticated-server',
      'auth method none sends requests without any credential: only for an open server on a network the ' +
        'organisation controls; say so with --acknowledge-unauthenticated-server (recorded in the audit trail)',
    );
  if (tokenUrl !== undefined) throw new InvalidArgumentError('--token-url', 'auth method none requests no token');
  if (req.clientId !== undefined) throw new InvalidArgumentError('--client-id', 'auth method none has no client');
  if (req.sandboxAdmin)
    throw new InvalidArgumentError('--auth-method', 'the sandbox registers no unauthenticated clients');
}

function parseAuthMethod(profile: VendorProfile, method: string | undefined): TokenAuthMethod {
  const accepted = profile.auth.methods.value;
  if (method === undefined || method === '') return accepted[0]!;
  if (!(TOKEN_AUTH_METHODS as readonly string[]).includes(method) || !accepted.includes(method as TokenAuthMethod)) {
    throw new InvalidArgumentError('--auth-method', `${profile.name} accepts ${accepted.join(', ')}`);
  }
  return method as TokenAuthMethod;
}

/** The references each method needs (checked against the stored-reference policy by the caller). */
function checkMaterial(
  method: TokenAuthMethod,
  req: RegisterIntegrationRequest,
): { clientSecretRef: string | null; tlsRefs: VendorTlsRefs | null } {
  const tlsRefs = req.tlsRefs && Object.values(req.tlsRefs).some((v) => v !== undefined) ? req.tlsRefs : null;
  const secretMethod = method === 'client_secret_basic' || method === 'client_secret_post';
  if (secretMethod && !req.clientSecretRef)
    throw new InvalidArgumentError(
      '--client-secret-ref',
      `${method} needs the client secret by reference (file:/env:)`,
    );
  if (!secretMethod && req.clientSecretRef)
    throw new InvalidArgumentError('--client-secret-ref', `${method} uses no client secret`);
  if (method === 'tls_client_auth' && (!tlsRefs?.clientCertRef || !tlsRefs.clientKeyRef)) {
    throw new InvalidArgumentError('--tls-cert-ref', 'tls_client_auth needs --tls-cert-ref and --tls-key-ref');
  }
  return { clientSecretRef: req.clientSecretRef ?? null, tlsRefs };
}

async function discoverTokenEndpoint(baseUrl: string, tls: VendorTls | undefined): Promise<string> {
  // A vendor with a private CA or mTLS is reached with the integration's own TLS material.
  const { tokenEndpoint } = await discoverSmartConfiguration(baseUrl, undefined, tls).catch((err: unknown) => {
    if (err instanceof VendorHttpError && err.status === 404)
      throw new InvalidArgumentError(
        '--token-url',
        'the server publishes no .well-known/smart-configuration (HTTP 404): give its token endpoint with --token-url',
      );
    throw err;
  });
  if (!tokenEndpoint)
    throw new InvalidArgumentError(
      '--token-url',
      'the vendor publishes no token_endpoint in its SMART configuration: give it with --token-url',
    );
  assertTransportAllowed(new URL(tokenEndpoint));
  return tokenEndpoint;
}
