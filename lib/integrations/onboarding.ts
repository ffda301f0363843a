/**
 * What the vendor's app registration form needs from us, nothing secret: the client id (or that the vendor
 * has not issued one yet), the token endpoint authentication method, for private_key_jwt our hosted JWKS URL
 * (the one the vendor fetches: `<JWKS_PUBLIC_URL>/jwks/<integration>.json`) and the public key as a JWK and
 * as PEM, the scopes to grant; for secrets where the secret lives; for tls_client_auth the thumbprint.
 */
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { jwksUrlFor } from '../keys/signing-keys.js';
import { scopesFor } from '../vendors/profiles/adapters.js';
import { profileFor } from '../vendors/profiles/index.js';
import { certificateThumbprint } from '../vendors/sandbox-registration.js';
import type { VendorTls } from '../vendors/tls-options.js';
import type { Integration } from './repository.js';

/** Our hosted JWKS as vendors reach it: JWKS_PUBLIC_URL, else http://JWKS_LISTEN; undefined: not configured. */
export function jwksPublicBaseUrl(config: { JWKS_PUBLIC_URL?: string; JWKS_LISTEN?: string }): string | undefined {
  return config.JWKS_PUBLIC_URL ?? (config.JWKS_LISTEN ? `http://${config.JWKS_LISTEN}` : undefined);
}

export const JWKS_NOT_CONFIGURED =
  'no hosted JWKS configured (set JWKS_PUBLIC_URL to the https address vendors reach the worker’s JWKS_LISTEN at); ' +
  'until then give the vendor the public key below';

/** The public half of a signing key as PEM (SubjectPublicKeyInfo), from its JWK. */
export function publicKeyPem(jwk: Record<string, unknown>): string {
  const { kty, crv, x, y, n, e } = jwk;
  const bare = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
  return createPublicKey({ key: bare as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

export interface VendorRegistration {
  /** null: the vendor has not issued it yet (pending-client-id), or auth method none. */
  client_id: string | null;
  token_endpoint_auth_method: Integration['authMethod'];
  scopes: string[];
  jwks_uri?: string;
  /** Why there is no jwks_uri (JWKS_PUBLIC_URL not configured). */
  jwks_uri_note?: string;
  jwks?: { keys: Array<Record<string, unknown>> };
  public_key_pem?: string;
  client_secret?: string;
  tls_client_cert_thumbprint?: string;
  note?: string;
}

/** What to hand the vendor's app registration for this integration (nothing secret). */
export function vendorNeeds(i: Integration, jwksPublicUrl: string | undefined, tls?: VendorTls): VendorRegistration {
  const base: VendorRegistration = {
    client_id: i.clientId,
    token_endpoint_auth_method: i.authMethod,
    scopes: i.authMethod === 'none' ? [] : scopesFor(profileFor(i.vendor), i.resourceTypes),
  };
  switch (i.authMethod) {
    case 'private_key_jwt':
      return {
        ...base,
        ...(jwksPublicUrl ? { jwks_uri: jwksUrlFor(jwksPublicUrl, i.id) } : { jwks_uri_note: JWKS_NOT_CONFIGURED }),
        ...(i.publicJwk ? { jwks: { keys: [i.publicJwk] }, public_key_pem: publicKeyPem(i.publicJwk) } : {}),
      };
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
    case 'none':
      return { ...base, note: 'an open server: nothing to register (no client, no token)' };
  }
}

/** The lines `integrations add` and `integrations show` print for the vendor's registration form. */
export function onboardingLines(i: Integration, jwksPublicUrl: string | undefined): string[] {
  const needs = vendorNeeds(i, jwksPublicUrl);
  const lines: string[] = [];
  lines.push(
    i.clientId !== null
      ? `client id: ${i.clientId}`
      : i.authMethod === 'none'
        ? 'client id: none (auth method none)'
        : `client id: PENDING — the vendor has not issued one; syncs are refused until ` +
          `\`ehrctl integrations update ${i.id} --client-id <id> --reason <text>\``,
  );
  lines.push(`token endpoint auth method: ${i.authMethod}`);
  if (needs.scopes.length > 0) lines.push(`scopes to grant: ${needs.scopes.join(' ')}`);
  if (i.authMethod === 'private_key_jwt') {
    lines.push(`JWKS URL: ${needs.jwks_uri ?? `not configured — ${JWKS_NOT_CONFIGURED}`}`);
    if (needs.jwks) lines.push(`public key (JWK): ${JSON.stringify(needs.jwks.keys[0])}`);
    if (needs.public_key_pem) lines.push('public key (PEM):', ...needs.public_key_pem.trimEnd().split('\n'));
  }
  if (needs.client_secret) lines.push(`client secret: ${needs.client_secret}`);
  if (needs.tls_client_cert_thumbprint) lines.push(`client certificate: ${needs.tls_client_cert_thumbprint}`);
  if (needs.note) lines.push(needs.note);
  return lines;
}
