/**
 * The gateway's access tokens (RFC 9068 JWT profile, `typ: at+jwt`): EdDSA over the gateway's Ed25519 key
 * (GATEWAY_ACCESS_SIGNING_KEY, a secret reference with no default, shared by every gateway process so any of
 * them accepts a token another issued). Claims: iss = the gateway's public URL, aud = its `/fhir` base, sub and
 * client_id = the consumer, `tenant` = the consumer's tenant, `scope`, `cgen` (when the consumer's status last
 * changed, in ms: a revocation or restoration ends every token issued before it), iat, exp (short: the configured
 * lifetime) and jti. A token carries no PHI. Verification refuses with a GatewayRefusalError (401 invalid_token) whose
 * reason is for the audit trail only.
 */
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, errors, exportJWK, jwtVerify } from 'jose';
import { resolveSecret } from '../../config/secrets.js';
import { ConfigError, GatewayRefusalError } from '../../errors/index.js';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
const FIELD = 'GATEWAY_ACCESS_SIGNING_KEY';
const CLOCK_SKEW_S = 10;

export interface GatewaySigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** The key from its reference (PKCS#8 PEM of an Ed25519 key). ConfigError names the field, never the key. */
export async function loadGatewaySigningKey(ref: string | undefined): Promise<GatewaySigningKey> {
  if (!ref) throw new ConfigError(FIELD, 'is required: the gateway signs its access tokens with it (no default)');
  const pem = await resolveSecret(ref, { field: FIELD });
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new ConfigError(FIELD, 'does not hold a private key (PKCS#8 PEM)');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new ConfigError(FIELD, 'must be an Ed25519 key');
  const publicKey = createPublicKey(privateKey);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
  return { kid, privateKey, publicKey };
}

export interface AccessTokenClaims {
  consumerId: string;
  tenantId: string;
  /** Space-separated scopes as granted. */
  scope: string;
  /** The consumer's `status_changed_at` (ms) when the token was issued. */
  consumerGeneration: number;
  jti: string;
  issuedAt: number;
  expiresAt: number;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresIn: number;
}

export class AccessTokens {
  constructor(
    private readonly key: GatewaySigningKey,
    /** The gateway's public URL, e.g. https://gateway.example.org (iss); aud is `<issuer>/fhir`. */
    private readonly issuer: string,
    private readonly lifetimeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  get audience(): string {
    return `${this.issuer}/fhir`;
  }

  async issue(input: {
    consumerId: string;
    tenantId: string;
    scope: string;
    consumerGeneration: number;
  }): Promise<IssuedAccessToken> {
    const iat = Math.floor(this.now() / 1000);
    const jti = randomUUID();
    const token = await new SignJWT({
      tenant: input.tenantId,
      scope: input.scope,
      client_id: input.consumerId,
      cgen: input.consumerGeneration,
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid: this.key.kid })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(input.consumerId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.lifetimeSeconds)
      .setJti(jti)
      .sign(this.key.privateKey);
    return { token, jti, expiresIn: this.lifetimeSeconds };
  }

  /** Signature, typ, issuer, audience, expiry; throws GatewayRefusalError(401) with the cause as its reason. */
  async verify(token: string): Promise<AccessTokenClaims> {
    const refuse = (reason: string) => new GatewayRefusalError(401, 'invalid_token', reason);
    if (token.length > 8192 || token.split('.').length !== 3) throw refuse('token-malformed');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: ['EdDSA'],
        typ: ACCESS_TOKEN_TYPE,
        issuer: this.issuer,
        audience: this.audience,
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ['exp', 'iat', 'sub', 'jti'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw refuse('token-expired');
      if (err instanceof errors.JWTClaimValidationFailed)
        throw refuse(err.claim === 'aud' ? 'token-audience' : 'token-claims');
      if (err instanceof errors.JWSSignatureVerificationFailed) throw refuse('token-signature');
      throw refuse('token-invalid');
    }
    const { sub, tenant, scope, jti, iat, exp, cgen } = payload as Record<string, unknown>;
    if (
      typeof sub !== 'string' ||
      typeof tenant !== 'string' ||
      typeof scope !== 'string' ||
      typeof jti !== 'string' ||
      typeof cgen !== 'number'
    )
      throw refuse('token-claims');
    return {
      consumerId: sub,
      tenantId: tenant,
      scope,
      consumerGeneration: cgen,
      jti,
      issuedAt: iat as number,
      expiresAt: exp as number,
    };
  }
}
