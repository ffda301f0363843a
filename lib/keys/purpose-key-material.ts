/**
 * A purpose key's material (purpose-key-store.ts stores it): generating a payload key or an Ed25519
 * signing pair, the AAD it is wrapped under, payload key ids, and the objects handed to users with the
 * secret kept off their enumerable fields (so it cannot reach a log or JSON). Apart from the store
 * because this is cryptography with no database, and rewrapping (rewrap-stages.ts) needs the same AAD.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';
import { calculateJwkThumbprint } from 'jose';
import type { JWK } from 'jose';
import type { AuditSigningKey, KeyPurpose, PayloadKey } from './purpose-keys.js';
import type { PurposeKeyRow as PurposeRow } from './purpose-key-repository.js';

export const PAYLOAD_KEY_ID = /^payload-v([1-9][0-9]{0,8})$/;

/** The AAD a purpose key is wrapped under. */
export function purposeKeyWrapAad(
  purpose: KeyPurpose,
  version: number,
  keyId: string,
  kekId: string,
  kekVersion: number,
): Buffer {
  return Buffer.from(
    canonicalize({ purpose: 'ehr-connectors/purpose-key/v1', keyPurpose: purpose, version, keyId, kekId, kekVersion })!,
    'utf8',
  );
}

export function payloadKeyId(version: number): string {
  return `payload-v${version}`;
}

function hide<T extends object>(obj: T, field: string, value: unknown): T {
  Object.defineProperty(obj, field, { value, enumerable: false, writable: false });
  return obj;
}

export interface NewKey {
  keyId: string;
  secret: Buffer;
  publicJwk: JWK | null;
}

export async function newKey(purpose: KeyPurpose, version: number): Promise<NewKey> {
  if (purpose === 'payload') return { keyId: payloadKeyId(version), secret: randomBytes(32), publicJwk: null };
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x } as JWK, 'sha256');
  const secret = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { keyId: kid, secret, publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' } };
}

export function toPayloadKey(v: { row: PurposeRow; secret: Buffer }): PayloadKey {
  return hide({ keyId: v.row.key_id, version: v.row.version } as PayloadKey, 'key', v.secret);
}

const signingKeys = new WeakMap<Buffer, KeyObject>();

export function toSigningKey(v: { row: PurposeRow; secret: Buffer }): AuditSigningKey {
  let privateKey = signingKeys.get(v.secret);
  if (!privateKey) {
    privateKey = createPrivateKey({ key: v.secret, format: 'der', type: 'pkcs8' });
    signingKeys.set(v.secret, privateKey);
  }
  return hide({ kid: v.row.key_id, publicJwk: v.row.public_jwk! } as AuditSigningKey, 'privateKey', privateKey);
}
