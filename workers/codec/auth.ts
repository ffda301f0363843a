/**
 * Who may use the codec server. Two doors, one identity:
 *  - `Authorization: Bearer <JWT>` verified with jose against CODEC_AUTH_JWKS_URL (remote JWKS) or
 *    CODEC_AUTH_ISSUER_KEY (a public key: PEM or JWK, inline or by `file:`/`env:` reference), checking
 *    signature, issuer, audience, exp (required) and nbf; `sub` is required, `roles` is a string array.
 *  - a session cookie for the dev Web UI (which has no login): `POST /login` with a valid bearer token
 *    sets a short-lived JWS (HS256, key generated per process, never stored) carrying sub and roles.
 * Refusals carry a reason that names the failed check, never the token.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SignJWT, createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { Config } from '../../lib/config/schema.js';
import { ConfigError } from '../../lib/errors/index.js';
import { resolveSecret } from '../../lib/config/secrets.js';

export const SESSION_COOKIE = 'ehr_codec_session';
const SESSION_ISSUER = 'ehr-connectors-codec-session';
const ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'RS384', 'PS256'];
const MAX_SESSION_SECONDS = 30 * 60;

export interface Principal {
  sub: string;
  roles: string[];
  via: 'bearer' | 'session';
  /** Seconds since epoch. */
  exp: number;
}

export class AuthRefusal extends Error {
  constructor(
    readonly status: 401 | 403,
    readonly reason: string,
    readonly sub?: string,
  ) {
    super(reason);
  }
}

export interface TokenVerifier {
  /** Verifies a bearer token; throws AuthRefusal(401) with the failed check. */
  verifyBearer(token: string): Promise<Principal>;
  /** Issues the session cookie value for a verified principal, and its lifetime in seconds. */
  issueSession(p: Principal): Promise<{ value: string; maxAge: number }>;
  verifySession(value: string): Promise<Principal>;
}

async function issuerKey(ref: string): Promise<KeyObject> {
  const text = (
    ref.startsWith('file:') || ref.startsWith('env:')
      ? await resolveSecret(ref, { field: 'CODEC_AUTH_ISSUER_KEY', shareable: true })
      : ref
  ).trim();
  try {
    if (text.startsWith('{')) {
      const jwk = JSON.parse(text) as Record<string, unknown>;
      if ('d' in jwk) throw new Error('private');
      return createPublicKey({ key: jwk as never, format: 'jwk' });
    }
    return createPublicKey(text);
  } catch {
    throw new ConfigError(
      'CODEC_AUTH_ISSUER_KEY',
      'must be a public key (SPKI PEM or public JWK), inline or as file:/env: reference',
    );
  }
}

function refusalFor(err: unknown): AuthRefusal {
  if (err instanceof AuthRefusal) return err;
  if (err instanceof joseErrors.JWTExpired) return new AuthRefusal(401, 'token expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = err.claim;
    const what =
      claim === 'aud'
        ? 'wrong audience'
        : claim === 'iss'
          ? 'wrong issuer'
          : claim === 'nbf'
            ? 'token not yet valid'
            : `claim ${claim} invalid`;
    return new AuthRefusal(401, `${what}`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new AuthRefusal(401, 'bad token signature');
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return new AuthRefusal(401, 'no issuer key matches the token (kid/alg)');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new AuthRefusal(401, 'token algorithm not allowed');
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid)
    return new AuthRefusal(401, 'issuer keys (JWKS) unavailable');
  if (err instanceof joseErrors.JOSEError) return new AuthRefusal(401, 'malformed token');
  return new AuthRefusal(401, 'token could not be verified');
}

function principalFrom(payload: JWTPayload, via: Principal['via']): Principal {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200)
    throw new AuthRefusal(401, 'token has no sub');
  const roles = payload.roles;
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
    throw new AuthRefusal(401, 'token roles claim must be an array of strings', payload.sub);
  }
  return { sub: payload.sub, roles: (roles as string[] | undefined) ?? [], via, exp: payload.exp ?? 0 };
}

export async function createTokenVerifier(
  config: Pick<Config, 'CODEC_AUTH_JWKS_URL' | 'CODEC_AUTH_ISSUER_KEY' | 'CODEC_AUTH_ISSUER' | 'CODEC_AUTH_AUDIENCE'>,
): Promise<TokenVerifier> {
  if (!config.CODEC_AUTH_ISSUER)
    throw new ConfigError('CODEC_AUTH_ISSUER', 'is required by the codec server (the token issuer it trusts)');
  let key: KeyObject | JWTVerifyGetKey;
  if (config.CODEC_AUTH_JWKS_URL) {
    const url = new URL(config.CODEC_AUTH_JWKS_URL);
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !loopback)
      throw new ConfigError('CODEC_AUTH_JWKS_URL', 'must be https (plain http only on loopback)');
    key = createRemoteJWKSet(url, { timeoutDuration: 5_000, cooldownDuration: 30_000 });
  } else if (config.CODEC_AUTH_ISSUER_KEY) {
    key = await issuerKey(config.CODEC_AUTH_ISSUER_KEY);
  } else {
    throw new ConfigError(
      'CODEC_AUTH_JWKS_URL',
      'the codec server needs CODEC_AUTH_JWKS_URL or CODEC_AUTH_ISSUER_KEY to verify tokens',
    );
  }
  const verifyOptions = {
    issuer: config.CODEC_AUTH_ISSUER,
    audience: config.CODEC_AUTH_AUDIENCE,
    algorithms: ALGORITHMS,
    requiredClaims: ['exp', 'sub'],
    clockTolerance: 30,
  };
  const sessionKey = randomBytes(32);

  return {
    async verifyBearer(token) {
      try {
        const { payload } = await jwtVerify(token, key as KeyObject, verifyOptions);
        return principalFrom(payload, 'bearer');
      } catch (err) {
        throw refusalFor(err);
      }
    },
    async issueSession(p) {
      const now = Math.floor(Date.now() / 1000);
      const exp = Math.min(p.exp, now + MAX_SESSION_SECONDS);
      const value = await new SignJWT({ roles: p.roles })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(p.sub)
        .setIssuer(SESSION_ISSUER)
        .setAudience(config.CODEC_AUTH_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(exp)
        .sign(sessionKey);
      return { value, maxAge: Math.max(0, exp - now) };
    },
    async verifySession(value) {
      try {
        const { payload } = await jwtVerify(value, sessionKey, {
          issuer: SESSION_ISSUER,
          audience: config.CODEC_AUTH_AUDIENCE,
          algorithms: ['HS256'],
          requiredClaims: ['exp', 'sub'],
        });
        return principalFrom(payload, 'session');
      } catch (err) {
        const refusal = refusalFor(err);
        throw new AuthRefusal(401, `session cookie: ${refusal.reason} (log in again via POST /login)`);
      }
    },
  };
}

/**
 * The caller of one request: the bearer token when an Authorization header is present (a malformed
 * one is refused, never skipped in favour of the cookie), else the session cookie.
 */
export async function authenticateRequest(
  verifier: TokenVerifier,
  headers: { authorization?: string; cookie?: string },
): Promise<Principal> {
  const auth = headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(auth);
    if (!m) throw new AuthRefusal(401, 'Authorization header must be "Bearer <JWT>"');
    return verifier.verifyBearer(m[1]!);
  }
  const session = readCookie(headers.cookie, SESSION_COOKIE);
  if (session) return verifier.verifySession(session);
  throw new AuthRefusal(401, 'no bearer token or session cookie (POST /login with a bearer token to get one)');
}

/** Whether a request offers any credential (verified or not). */
export function offersCredentials(headers: { authorization?: string; cookie?: string }): boolean {
  return headers.authorization !== undefined || readCookie(headers.cookie, SESSION_COOKIE) !== undefined;
}

/** Cookie header → value of one cookie. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
