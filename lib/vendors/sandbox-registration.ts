/**
 * Registering our client with a sandbox vendor (sandbox/, any personality) through its admin API,
 * the way a vendor's app registration would: the chosen auth method with its material — our hosted
 * JWKS URL or the public JWK, the client secret (the sandbox keeps only a hash), or the client
 * certificate's thumbprint — the scopes in the profile's syntax and the profile's assertion `aud`.
 */
import { X509Certificate, createHash } from 'node:crypto';
import https from 'node:https';
import { resolveSecret } from '../config/secrets.js';
import { RESOURCE_TYPES } from '../domain.js';
import { defaultWritePolicy } from '../writeback/authority.js';
import { scopesFor, writeScopesFor } from './profiles/adapters.js';
import { InvalidArgumentError, VendorHttpError } from '../errors/index.js';
import type { VendorProfile } from './profiles/types.js';
import type { TokenAuthMethod } from './profiles/types.js';
import { agentOptions, httpsExchange } from './tls-options.js';
import type { VendorTls } from './tls-options.js';

export interface SandboxAdmin {
  url: string;
  adminToken: string;
}

export interface SandboxClientMaterial {
  authMethod: TokenAuthMethod;
  scopes: string[];
  /** private_key_jwt: our hosted JWKS URL (preferred) or the public JWK. */
  jwksUri?: string;
  publicJwk?: Record<string, unknown>;
  clientSecretRef?: string | null;
  tls?: VendorTls;
}

/** RFC 8705 `x5t#S256` of the first certificate in a PEM. */
export function certificateThumbprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

/**
 * The write scopes a registration adds: for each type read whose built-in write policy lets the organisation create
 * or update it (lib/writeback/authority.ts), as a vendor app registration for write-back would list them. Only the
 * vendor door's write token asks for them (lib/vendors/client-auth.ts).
 */
function withWriteScopes(profile: VendorProfile, scopes: readonly string[]): string[] {
  const read = new Set(scopes);
  const writable = RESOURCE_TYPES.filter((t) => {
    const policy = defaultWritePolicy(t);
    return (policy.create || policy.update) && scopesFor(profile, [t]).every((s) => read.has(s));
  });
  return [...scopes, ...writeScopesFor(profile, writable).filter((s) => !read.has(s))];
}

async function body(profile: VendorProfile, m: SandboxClientMaterial): Promise<Record<string, unknown>> {
  const common = {
    token_endpoint_auth_method: m.authMethod,
    scopes: withWriteScopes(profile, m.scopes),
    assertion_audience: profile.auth.assertionAudience.value,
  };
  switch (m.authMethod) {
    case 'private_key_jwt':
      return { ...common, ...(m.jwksUri ? { jwks_uri: m.jwksUri } : { jwks: { keys: [m.publicJwk] } }) };
    case 'client_secret_basic':
    case 'client_secret_post':
      return { ...common, client_secret: await resolveSecret(m.clientSecretRef ?? '', { field: 'clientSecretRef' }) };
    case 'tls_client_auth':
      return { ...common, tls_client_cert_thumbprint: certificateThumbprint(m.tls?.clientCertPem ?? '') };
    case 'none':
      // The sandbox, like every SMART server, issues tokens only to authenticated clients.
      throw new InvalidArgumentError('--auth-method', 'the sandbox registers no unauthenticated clients');
  }
}

/** Registers (or, with `replace`, re-registers) the client; returns its client id. */
export async function registerSandboxClient(
  admin: SandboxAdmin,
  profile: VendorProfile,
  material: SandboxClientMaterial,
  opts: { clientId?: string; replace?: boolean } = {},
): Promise<string> {
  const payload = {
    ...(await body(profile, material)),
    ...(opts.clientId && !opts.replace ? { client_id: opts.clientId } : {}),
  };
  const path = opts.replace ? `/admin/clients/${encodeURIComponent(opts.clientId ?? '')}` : '/admin/clients';
  const method = opts.replace ? 'PUT' : 'POST';
  const res = await adminRequest(
    new URL(`${admin.url}${path}`),
    {
      method,
      headers: { 'content-type': 'application/json', 'x-sandbox-admin': admin.adminToken },
      body: JSON.stringify(payload),
    },
    material.tls,
  );
  if (!res.ok) throw new VendorHttpError(res.status, method, opts.replace ? '/admin/clients/{id}' : '/admin/clients');
  return ((await res.json()) as { client_id: string }).client_id;
}

/** An https sandbox (mTLS personality) is reached with the integration's own trust and certificate. */
function adminRequest(
  url: URL,
  init: { method: string; headers: Record<string, string>; body: string },
  tls: VendorTls | undefined,
): Promise<Response> {
  const signal = AbortSignal.timeout(10_000);
  if (url.protocol === 'https:')
    return httpsExchange(url, { ...init, agent: new https.Agent({ ...agentOptions(tls), keepAlive: false }), signal });
  return fetch(url, { ...init, redirect: 'error', signal });
}
