/**
 * SMART Backend Services client assertion (private_key_jwt): header {alg, kid, typ: 'JWT'}, claims
 * iss = sub = client id, aud = the token endpoint (or issuer, per vendor profile), iat, exp ≤ 5 min
 * after iat, and a fresh random jti on every call — even on retry — because servers reject reuse.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { CryptoKey, KeyObject } from 'jose';
import { InvalidArgumentError } from '../errors/index.js';
import type { SigningAlg } from '../keys/signing-keys.js';

export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

export interface ClientAssertionInput {
  clientId: string;
  audience: string;
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey | KeyObject;
  /** Default 240; at most 300. */
  lifetimeSeconds?: number;
  /** Clock for tests. */
  now?: Date;
}

function nonEmpty(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0)
    throw new InvalidArgumentError(name, 'must be a non-empty string');
}

export async function signClientAssertion(input: ClientAssertionInput): Promise<string> {
  const { clientId, audience, kid, alg, privateKey, lifetimeSeconds = 240, now } = input;
  nonEmpty('clientId', clientId);
  nonEmpty('audience', audience);
  nonEmpty('kid', kid);
  if (alg !== 'ES384' && alg !== 'RS384') throw new InvalidArgumentError('alg', 'must be ES384 or RS384');
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1 || lifetimeSeconds > MAX_ASSERTION_LIFETIME_SECONDS) {
    throw new InvalidArgumentError(
      'lifetimeSeconds',
      `must be an integer from 1 to ${MAX_ASSERTION_LIFETIME_SECONDS} (exp ≤ 5 minutes)`,
    );
  }
  const nowMs = (now ?? new Date()).getTime();
  if (!Number.isFinite(nowMs)) throw new InvalidArgumentError('now', 'must be a valid date');
  const iat = Math.floor(nowMs / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetimeSeconds)
    .setJti(randomBytes(24).toString('base64url'))
    .sign(privateKey);
}
