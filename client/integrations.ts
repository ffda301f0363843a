/**
 * Registering an integration: validate the request against policy, discover the vendor's token
 * endpoint, generate the integration's own signing key pair (private half to a 0600 secret file,
 * never the database), register the public key with the vendor (automatic for the sandbox; printed
 * as a JWKS for real vendors), and store the integration with its audit event.
 */
import type { AuditContext } from '../lib/audit/chain.js';
import type { ResourceType } from '../lib/domain.js';
import { ID_PATTERN, RESOURCE_TYPES, isResourceType, readScopeFor } from '../lib/domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError, VendorHttpError } from '../lib/errors/index.js';
import type { Purpose } from '../lib/fhir/classification.js';
import { DEFAULT_PURPOSE, PURPOSES, assertTypesWithinPurpose, isPurpose, purposePolicy } from '../lib/fhir/classification.js';
import { generateIntegrationSigningKey } from '../lib/security/signing-keys.js';
import type { Integration } from '../lib/store/integrations.js';
import { createIntegration, getIntegration } from '../lib/store/integrations.js';
import type { Pool } from '../lib/store/pool.js';
import { tenantExists } from '../lib/store/tenants.js';
import { assertTransportAllowed } from '../lib/vendors/http-policy.js';
import { discoverSmartConfiguration } from '../lib/vendors/smart-discovery.js';

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
  /** For vendor 'sandbox': its admin endpoint, used to register our public key. */
  sandboxAdmin?: { url: string; adminToken: string };
}

export async function registerIntegration(pool: Pool, req: RegisterIntegrationRequest, ctx: AuditContext): Promise<Integration> {
  if (!ID_PATTERN.test(req.id)) throw new InvalidArgumentError('integration id', 'use 1-63 lowercase letters, digits or hyphens');
  if (!/^[a-z][a-z0-9-]{1,31}$/.test(req.vendor)) throw new InvalidArgumentError('vendor', 'use a short lowercase vendor name such as sandbox or epic');
  const purpose = parsePurpose(req.purpose);
  const resourceTypes = parseResourceTypes(req.resourceTypes, purpose);
  const baseUrl = parseBaseUrl(req.baseUrl);
  if (!(await tenantExists(pool, req.tenantId))) throw new NotFoundError('tenant', req.tenantId);
  const existing = await getIntegration(pool, req.id).catch((err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)));
  if (existing) throw new ConflictError('integration', req.id);
  if (req.vendor !== 'sandbox' && !req.clientId) throw new InvalidArgumentError('--client-id', `required for vendor ${req.vendor} (the vendor assigns it)`);

  const tokenUrl = await discoverTokenEndpoint(baseUrl);
  const alg = req.alg ?? 'ES384';
  const key = await generateIntegrationSigningKey({ alg, secretsDir: req.secretsDir, integrationId: req.id });
  let clientId = req.clientId;
  if (req.vendor === 'sandbox') {
    if (!req.sandboxAdmin) throw new InvalidArgumentError('sandbox', 'no running sandbox to register with: start the dev stack (`ehrctl dev up`)');
    clientId = await registerWithSandbox(req.sandboxAdmin, { clientId, jwk: { ...key.publicJwk, kid: key.kid, alg, use: 'sig' }, scopes: resourceTypes.map(readScopeFor) });
  }
  return createIntegration(
    pool,
    {
      id: req.id,
      tenantId: req.tenantId,
      vendor: req.vendor,
      baseUrl,
      tokenUrl,
      clientId: clientId!,
      signingAlg: alg,
      signingKid: key.kid,
      publicJwk: { ...key.publicJwk, kid: key.kid, alg, use: 'sig' },
      privateKeyRef: key.privateKeyRef,
      resourceTypes,
      purpose,
    },
    ctx,
  );
}

function parsePurpose(purpose: string | undefined): Purpose {
  if (purpose === undefined || purpose === '') return DEFAULT_PURPOSE;
  if (!isPurpose(purpose)) throw new InvalidArgumentError('--purpose', `unknown purpose ${JSON.stringify(purpose)}; known: ${PURPOSES.join(', ')}`);
  return purpose;
}

/** The purpose's types when none are given; otherwise the given ones, each supported and within the purpose. */
function parseResourceTypes(types: string[] | undefined, purpose: Purpose): ResourceType[] {
  if (!types || types.length === 0) return [...purposePolicy(purpose).resourceTypes];
  const unknown = types.filter((t) => !isResourceType(t));
  if (unknown.length > 0) throw new InvalidArgumentError('--types', `unsupported resource type(s) ${unknown.join(', ')}; supported: ${RESOURCE_TYPES.join(', ')}`);
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
  assertTransportAllowed(url);
  if (url.search || url.hash) throw new InvalidArgumentError('--base-url', 'must not carry a query or fragment');
  return url.toString().replace(/\/$/, '');
}

async function discoverTokenEndpoint(baseUrl: string): Promise<string> {
  const { tokenEndpoint } = await discoverSmartConfiguration(baseUrl);
  if (!tokenEndpoint) throw new InvalidArgumentError('--base-url', 'the vendor publishes no token_endpoint in its SMART configuration');
  return tokenEndpoint;
}

async function registerWithSandbox(
  admin: { url: string; adminToken: string },
  client: { clientId: string | undefined; jwk: Record<string, unknown>; scopes: string[] },
): Promise<string> {
  const res = await fetch(`${admin.url}/admin/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sandbox-admin': admin.adminToken },
    body: JSON.stringify({ ...(client.clientId ? { client_id: client.clientId } : {}), jwks: { keys: [client.jwk] }, scopes: client.scopes }),
  });
  if (!res.ok) throw new VendorHttpError(res.status, 'POST', '/admin/clients');
  return ((await res.json()) as { client_id: string }).client_id;
}
