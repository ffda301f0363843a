/**
 * The signed form of an audit checkpoint: its payload, the compact Ed25519 JWS (`typ`
 * ehr-audit-checkpoint+jws) that signs it, the hash that chains the next checkpoint to it, and its
 * verification against trusted keys by kid. No database here (lib/audit/checkpoint.ts stores them).
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import type { JWK } from 'jose';
import { EhrError } from '../errors/index.js';

export const CHECKPOINT_JWS_TYPE = 'ehr-audit-checkpoint+jws';
export const CHECKPOINT_GENESIS_HASH = '0'.repeat(64);

export interface CheckpointPayload {
  chainId: string;
  checkpointSeq: number;
  /** The chain's size: events 1..eventSeq are covered. */
  eventSeq: number;
  /** Hex of the hash of event eventSeq (the genesis hash for an empty chain). */
  headHash: string;
  /** Hex SHA-256 of the previous checkpoint's compact JWS; zeros for the first. */
  previousCheckpointHash: string;
  createdAt: string;
  kid: string;
}

export interface StoredCheckpoint extends CheckpointPayload {
  jws: string;
  /** Hex SHA-256 of `jws`. */
  checkpointHash: string;
}

/** Raised when the chain or the anchor is not in a state a checkpoint may be signed over. */
export class AuditIntegrityError extends EhrError {
  readonly code = 'AUDIT_INTEGRITY';
  readonly retryable = false;
  constructor(
    readonly reason: string,
    readonly firstBrokenSeq?: number,
  ) {
    super(`audit checkpoint refused: ${reason}`);
  }
}

export function checkpointHashOf(jws: string): string {
  return createHash('sha256').update(jws, 'ascii').digest('hex');
}

/** Only the public members of an Ed25519 JWK (a private `d` never reaches the database or the anchor). */
export function publicEd25519Jwk(jwk: JWK): JWK {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new AuditIntegrityError('the audit signing key is not an Ed25519 key');
  }
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
}

export function publicKeyFromJwk(jwk: JWK): KeyObject {
  return createPublicKey({ key: publicEd25519Jwk(jwk) as JsonWebKey, format: 'jwk' });
}

export async function signCheckpoint(payload: CheckpointPayload, privateKey: KeyObject): Promise<string> {
  const body = canonicalize(payload);
  if (body === undefined) throw new AuditIntegrityError('checkpoint payload cannot be canonicalised');
  return new CompactSign(Buffer.from(body, 'utf8'))
    .setProtectedHeader({ alg: 'EdDSA', kid: payload.kid, typ: CHECKPOINT_JWS_TYPE })
    .sign(privateKey);
}

const HEX64 = /^[0-9a-f]{64}$/;

function isPayload(v: unknown): v is CheckpointPayload {
  const p = v as Partial<CheckpointPayload> | null;
  return (
    !!p &&
    typeof p === 'object' &&
    typeof p.chainId === 'string' &&
    Number.isSafeInteger(p.checkpointSeq) &&
    (p.checkpointSeq ?? 0) > 0 &&
    Number.isSafeInteger(p.eventSeq) &&
    (p.eventSeq ?? -1) >= 0 &&
    typeof p.headHash === 'string' &&
    HEX64.test(p.headHash) &&
    typeof p.previousCheckpointHash === 'string' &&
    HEX64.test(p.previousCheckpointHash) &&
    typeof p.createdAt === 'string' &&
    typeof p.kid === 'string'
  );
}

/** Verifies a checkpoint JWS against trusted keys by kid; the payload, or why it is not trustworthy. */
export async function verifyCheckpointJws(
  jws: string,
  keys: ReadonlyMap<string, KeyObject>,
): Promise<{ payload: CheckpointPayload } | { error: string }> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(jws);
    if (header.alg !== 'EdDSA') return { error: `unexpected JWS alg ${String(header.alg)}` };
    if (header.typ !== CHECKPOINT_JWS_TYPE) return { error: 'not a checkpoint JWS' };
    kid = header.kid;
  } catch {
    return { error: 'malformed JWS' };
  }
  const key = kid === undefined ? undefined : keys.get(kid);
  if (!key) return { error: `signed by unknown key ${kid === undefined ? '(no kid)' : JSON.stringify(kid)}` };
  let payload: unknown;
  try {
    const verified = await compactVerify(jws, key, { algorithms: ['EdDSA'] });
    payload = JSON.parse(Buffer.from(verified.payload).toString('utf8'));
  } catch {
    return { error: 'signature does not verify' };
  }
  if (!isPayload(payload)) return { error: 'payload is not a checkpoint' };
  if (payload.kid !== kid) return { error: 'payload kid differs from the JWS header kid' };
  return { payload };
}
