/**
 * OAuth client authentication at the vendor's token (and RFC 7009 revocation) endpoint, one builder
 * per method the vendor profiles name:
 *   private_key_jwt      SMART Backend Services: a signed client assertion, a fresh jti every call
 *                        (so every retry too), `aud` per the vendor profile (token endpoint or issuer);
 *   client_secret_basic  RFC 6749 §2.3.1: id and secret are each form-urlencoded, THEN joined with
 *                        ':' and base64-encoded (a ':' or '%' in a secret must survive the round trip);
 *   client_secret_post   id and secret in the form body;
 *   tls_client_auth      RFC 8705: only `client_id` in the form; the client certificate is presented
 *                        by the integration's TLS agent (vendor-client.ts), which the vendor checks;
 *   none                 an open server: no token is ever requested (vendor-client.ts sends no
 *                        Authorization header), so asking for client authentication is a bug.
 * The secret is resolved by reference on demand and lives only in this process's memory.
 */
import { profileFor } from './profiles/index.js';
import { assertionAudience, scopesFor, writeScopesFor } from './profiles/adapters.js';
import { isVendorId } from './profiles/types.js';
import { ConfigError } from '../errors/index.js';
import type { IntegrationCredentials } from './vendor-call.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Headers and form fields that authenticate the client; the caller adds grant or token fields. */
export interface ClientAuthentication {
  headers: Record<string, string>;
  params: Record<string, string>;
}

/** RFC 6749 §2.3.1 / Appendix B: application/x-www-form-urlencoded, then base64 of `id:secret`. */
export function basicAuthorization(clientId: string, secret: string): string {
  const encode = (v: string): string => new URLSearchParams({ v }).toString().slice(2);
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`, 'utf8').toString('base64')}`;
}

/** The `aud` of this integration's client assertions, from its vendor profile. */
export function audienceFor(cred: Pick<IntegrationCredentials, 'vendor' | 'tokenUrl' | 'baseUrl'>): string {
  // SMART discovery's `issuer` is the FHIR base URL, which is what the integration stores. A vendor
  // without a profile (registration refuses them; older rows, stubs) gets the SMART default.
  if (!isVendorId(cred.vendor)) return cred.tokenUrl;
  return assertionAudience(profileFor(cred.vendor), { tokenUrl: cred.tokenUrl, issuer: cred.baseUrl });
}

export async function clientAuthentication(cred: IntegrationCredentials): Promise<ClientAuthentication> {
  const method = cred.authMethod ?? 'private_key_jwt';
  switch (method) {
    case 'private_key_jwt':
      return {
        headers: {},
        params: {
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await cred.signAssertion(audienceFor(cred)),
        },
      };
    case 'client_secret_basic':
      return { headers: { authorization: basicAuthorization(cred.clientId, await secretOf(cred)) }, params: {} };
    case 'client_secret_post':
      return { headers: {}, params: { client_id: cred.clientId, client_secret: await secretOf(cred) } };
    case 'tls_client_auth':
      return { headers: {}, params: { client_id: cred.clientId } };
    case 'none':
      throw new ConfigError(`integration ${cred.integrationId}`, 'auth method none authenticates no client');
  }
}

async function secretOf(cred: IntegrationCredentials): Promise<string> {
  if (!cred.clientSecret)
    throw new TypeError(`integration ${cred.integrationId}: ${cred.authMethod} credentials carry no client secret`);
  return cred.clientSecret();
}

export interface FormRequest {
  headers: Record<string, string>;
  body: string;
}

function formRequest(auth: ClientAuthentication, fields: Record<string, string>): FormRequest {
  return {
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', ...auth.headers },
    body: new URLSearchParams({ ...fields, ...auth.params }).toString(),
  };
}

/** A client_credentials token request; scopes in the profile's syntax (v1 `.read` or v2 `.rs`). */
export async function tokenRequest(cred: IntegrationCredentials, forWrites = false): Promise<FormRequest> {
  const profile = isVendorId(cred.vendor) ? profileFor(cred.vendor) : undefined;
  const reads = cred.resourceTypes && profile ? scopesFor(profile, cred.resourceTypes) : cred.scopes;
  // Only the token that writes (write-back) asks for write scopes, of the types the integration writes back: a
  // vendor that would refuse them (a registration without write scopes) never fails the reads.
  const writes = forWrites && cred.writeTypes && profile ? writeScopesFor(profile, cred.writeTypes) : [];
  const scope = [...reads, ...writes].join(' ');
  return formRequest(await clientAuthentication(cred), { grant_type: 'client_credentials', scope });
}

/** An RFC 7009 revocation request for an access token, authenticated like token requests. */
export async function revocationRequest(cred: IntegrationCredentials, token: string): Promise<FormRequest> {
  return formRequest(await clientAuthentication(cred), { token, token_type_hint: 'access_token' });
}
