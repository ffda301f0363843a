/**
 * Registering an integration: validate the request against policy and the vendor profile (vendor,
 * auth method, vendor parameters), discover the vendor's token endpoint, prepare the method's
 * credentials — for private_key_jwt a fresh signing key pair (private half to a 0600 secret file,
 * never the database), for client secrets and certificates only their secret references — register
 * the client with a sandbox vendor automatically (real vendors: `vendorNeeds` says what to give
 * them), and store the integration with its audit event.
 */
import type { AuditContext } from '../audit/chain.js';
import type { ResourceType } from '../domain.js';
import { ID_PATTERN, RESOURCE_TYPES, isResourceType } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { Purpose } from '../fhir/classification.js';
import {
  DEFAULT_PURPOSE,
  PURPOSES,
  assertTypesWithinPurpose,
  isPurpose,
  purposePolicy,
} from '../fhir/classification.js';
import { generateIntegrationSigningKey, jwksUrlFor } from '../keys/signing-keys.js';
import type { Integration } from './repository.js';
import { createIntegration, getIntegration } from './repository.js';
import type { Pool } from '../store/pool.js';
import { tenantExists } from '../store/tenants.js';
import { assertTransportAllowed } from '../vendors/http-policy.js';
import { discoverSmartConfiguration } from '../vendors/smart-discovery.js';
import { checkSecretRef } from '../config/secrets.js';
import { tlsRefFields } from '../config/stored-secret-refs.js';
import { assertStoredSecretRefsAllowed, auditingSecretRefRefusals } from '../store/secret-roots.js';
import { profileFor } from '../vendors/profiles/index.js';
import { integrationDefaults } from '../vendors/profiles/compensating.js';
import { scopesFor, validateVendorParams } from '../vendors/profiles/adapters.js';
import { TOKEN_AUTH_METHODS, type TokenAuthMethod, type VendorProfile } from '../vendors/profiles/types.js';
import { certificateThumbprint, registerSandboxClient } from '../vendors/sandbox-registration.js';
import type { SandboxAdmin } from '../vendors/sandbox-registration.js';
import { loadVendorTls } from '../vendors/tls-options.js';
import type { VendorTls, VendorTlsRefs } from '../vendors/tls-options.js';

export interface RegisterIntegrationRequest {
  id: string;
  tenantId: string;
  vendor: string;
  baseUrl: string;
  resourceTypes?: string[];
  /** The declared purpose (default clinical-sync): fixes the allowed resource types and data classes. */
  purpose?: string;
  alg?: 'ES384' | 'RS384';
  /** Required for real vendors (they assign it); the sandbox assigns one on registration. */
  clientId?: string;
  secretsDir: string;
  /** A sandbox vendor's admin endpoint (any personality, any vendor id): the client is registered there. */
  sandboxAdmin?: SandboxAdmin;
  /** Default: the vendor profile's preferred method; otherwise one the profile lists. */
  authMethod?: string;
  /** client_secret_basic/post: a secret reference (file:/env:/manager), never the secret. */
  clientSecretRef?: string;
  /** Vendor CA and client certificate/key references (mTLS; required for tls_client_auth). */
  tlsRefs?: VendorTlsRefs;
  /** The profile's extra parameters (`--param practiceId=…`). */
  vendorParams?: Record<string, string>;
  /** Our hosted JWKS's public base URL (JWKS_PUBLIC_URL): private_key_jwt clients are registered by URL. */
  jwksPublicUrl?: string;
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
  if (!req.sandboxAdmin && !req.clientId)
    throw new InvalidArgumentError('--client-id', `required for vendor ${req.vendor} (the vendor assigns it)`);

  // Checked before any of them is read or sent (register_integration checks them again when stored).
  const scope = { stage: 'registration' as const, tenantId: req.tenantId, integrationId: req.id };
  const given = [
    ...(material.clientSecretRef ? [{ field: '--client-secret-ref', ref: material.clientSecretRef }] : []),
    ...tlsRefFields(material.tlsRefs),
  ];
  await assertStoredSecretRefsAllowed(pool, ctx, given, scope);
  if (material.clientSecretRef) checkSecretRef(material.clientSecretRef, { field: '--client-secret-ref' });
  const tls = req.tlsRefs ? await loadVendorTls(req.tlsRefs) : undefined;
  const tokenUrl = await discoverTokenEndpoint(baseUrl, tls);
  const key =
    authMethod === 'private_key_jwt'
      ? await generateIntegrationSigningKey({ alg, secretsDir: req.secretsDir, integrationId: req.id })
      : undefined;
  const publicJwk = key ? { ...key.publicJwk, kid: key.kid, alg, use: 'sig' } : null;
  let clientId = req.clientId;
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
      { clientId },
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
        clientId: clientId!,
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
        // The vendor's compensating controls become this integration's own settings (overridable with a reason).
        ...integrationDefaults(profile, authMethod),
      },
      ctx,
    ),
  );
}

/** What to hand the vendor's app registration for this integration (nothing secret). */
export function vendorNeeds(
  i: Integration,
  jwksPublicUrl: string | undefined,
  tls?: VendorTls,
): Record<string, unknown> {
  const base = { client_id: i.clientId, token_endpoint_auth_method: i.authMethod };
  switch (i.authMethod) {
    case 'private_key_jwt':
      return jwksPublicUrl
        ? { ...base, jwks_uri: jwksUrlFor(jwksPublicUrl, i.id) }
        : { ...base, jwks: { keys: [i.publicJwk] } };
    case 'client_secret_basic':
    case 'client_secret_post':
      return { ...base, client_secret: `the secret the vendor issued, stored at ${i.clientSecretRef ?? '?'}` };
    case 'tls_client_auth':
      return {
        ...base,
        tls_client_cert_thumbprint: tls?.clientCertPem
          ? certificateThumbprint(tls.clientCertPem)
          : 'see the certificate at ' + (i.tlsRefs?.clientCertRef ?? '?'),
      };
  }
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

function parsePurpose(purpose: string | undefined): Purpose {
  if (purpose === undefined || purpose === '') return DEFAULT_PURPOSE;
  if (!isPurpose(purpose))
    throw new InvalidArgumentError(
      '--purpose',
      `unknown purpose ${JSON.stringify(purpose)}; known: ${PURPOSES.join(', ')}`,
    );
  return purpose;
}

/** The purpose's types when none are given; otherwise the given ones, each supported and within the purpose. */
function parseResourceTypes(types: string[] | undefined, purpose: Purpose): ResourceType[] {
  if (!types || types.length === 0) return [...purposePolicy(purpose).resourceTypes];
  const unknown = types.filter((t) => !isResourceType(t));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      '--types',
      `unsupported resource type(s) ${unknown.join(', ')}; supported: ${RESOURCE_TYPES.join(', ')}`,
    );
  assertTypesWithinPurpose(purpose, types);
  return [...new Set(types as ResourceType[])];
}

function parseBaseUrl(raw: string): string {
  if (raw.length > 2048) throw new InvalidArgumentError('--base-url', 'longer than 2048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError('--base-url', 'not an absolute URL');
  }
  // Checked first, and never echoed: a password in the URL would otherwise reach errors, output and audit rows.
  if (url.username !== '' || url.password !== '') {
    const hint = 'vendor credentials are given by reference (--client-secret-ref, --tls-key-ref)';
    throw new InvalidArgumentError('--base-url', `must not carry a user name or password; ${hint}`);
  }
  assertTransportAllowed(url);
  if (url.search || url.hash) throw new InvalidArgumentError('--base-url', 'must not carry a query or fragment');
  return url.toString().replace(/\/$/, '');
}

async function discoverTokenEndpoint(baseUrl: string, tls: VendorTls | undefined): Promise<string> {
  // A vendor with a private CA or mTLS is reached with the integration's own TLS material.
  const { tokenEndpoint } = await discoverSmartConfiguration(baseUrl, undefined, tls);
  if (!tokenEndpoint)
    throw new InvalidArgumentError('--base-url', 'the vendor publishes no token_endpoint in its SMART configuration');
  assertTransportAllowed(new URL(tokenEndpoint));
  return tokenEndpoint;
}
