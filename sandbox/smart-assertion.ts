/**
 * Verification of a `private_key_jwt` client assertion (jose): its form, header, registered key, signature
 * and claims. Its own file because it is the one part of SMART Backend Services with a specification of
 * its own (RFC 7523 with SMART's alg and lifetime limits), and the routes need its error and constants
 * without the client registry. Replay (the jti ledger) stays with the registry in smart.ts, which owns
 * the state. Error descriptions are fixed strings: they never echo the assertion.
 */
import { decodeJwt, decodeProtectedHeader, errors, importJWK, jwtVerify } from 'jose';
import type { RegisteredClient } from './smart.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ALLOWED_ALGS = ['RS384', 'ES384'] as const;
type AllowedAlg = (typeof ALLOWED_ALGS)[number];
const MAX_ASSERTION_LIFETIME_S = 300;
export const CLOCK_SKEW_S = 10;

/** An OAuth error answer: status, RFC 6749 code and a fixed description. */
export class OAuthFailure extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly code: string,
    readonly description: string,
  ) {
    super(code);
  }
}

export const invalidClient = (why: string): OAuthFailure => new OAuthFailure(401, 'invalid_client', why);

/** What a verified assertion leaves for the replay check and the client's statistics. */
export interface VerifiedAssertion {
  client: RegisteredClient;
  kid: string;
  jti: string;
  /** The assertion's `exp`, in seconds since the epoch. */
  exp: number;
}

/** Verifies a client assertion except for jti replay; throws OAuthFailure. */
export async function verifyClientAssertion(
  assertion: string,
  endpoints: { tokenUrl: string; issuer: string },
  formClientId: string | undefined,
  clientOf: (clientId: string) => RegisteredClient | undefined,
  now: () => number,
): Promise<VerifiedAssertion> {
  if (assertion.split('.').length !== 3)
    throw new OAuthFailure(400, 'invalid_request', 'client_assertion is not a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw new OAuthFailure(400, 'invalid_request', 'client_assertion could not be decoded');
  }
  if (!ALLOWED_ALGS.includes(header.alg as AllowedAlg)) throw invalidClient('assertion alg must be RS384 or ES384');
  const alg = header.alg as AllowedAlg;
  if (typeof header.kid !== 'string' || header.kid.length === 0) throw invalidClient('assertion header lacks kid');
  if (header.typ !== undefined && header.typ.toUpperCase() !== 'JWT') throw invalidClient('assertion typ must be JWT');
  const client = typeof claims.iss === 'string' ? clientOf(claims.iss) : undefined;
  if (!client) throw invalidClient('unknown client');
  if (client.authMethod !== 'private_key_jwt')
    throw invalidClient('client authentication method is not the one registered');
  if (claims.sub !== client.clientId) throw invalidClient('iss and sub must both equal the client_id');
  if (formClientId !== undefined && formClientId !== client.clientId)
    throw invalidClient('client_id does not match the assertion');
  if (header.jku !== undefined && header.jku !== client.jku)
    throw invalidClient('jku does not match the registered JWKS URL');
  const jwk = client.jwks ? await client.jwks.key(header.kid) : client.keys.get(header.kid);
  if (!jwk) throw invalidClient('unknown kid');
  if (jwk.alg !== undefined && jwk.alg !== alg) throw invalidClient('registered key is not for this alg');
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(jwk, alg);
  } catch {
    throw invalidClient('registered key is not usable with this alg');
  }
  try {
    await jwtVerify(assertion, key, {
      algorithms: [alg],
      issuer: client.clientId,
      subject: client.clientId,
      audience: client.assertionAudience === 'issuer' ? endpoints.issuer : endpoints.tokenUrl,
      clockTolerance: CLOCK_SKEW_S,
      requiredClaims: ['exp', 'jti', 'iss', 'sub', 'aud'],
      currentDate: new Date(now()),
    });
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw invalidClient('assertion has expired');
    if (err instanceof errors.JWTClaimValidationFailed)
      throw invalidClient(`assertion claim "${safeClaim(err.claim)}" is invalid`);
    if (err instanceof errors.JWSSignatureVerificationFailed)
      throw invalidClient('assertion signature verification failed');
    throw invalidClient('assertion verification failed');
  }
  const nowS = now() / 1000;
  const exp = claims.exp as number;
  if (exp > nowS + MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S)
    throw invalidClient('assertion exp is more than 5 minutes ahead');
  if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw invalidClient('assertion lacks jti');
  return { client, kid: header.kid, jti: claims.jti, exp };
}

function safeClaim(claim: string): string {
  return /^[a-z]{1,8}$/.test(claim) ? claim : 'unknown';
}
