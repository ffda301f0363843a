/**
 * Keys by purpose, beside the tenant data keys: the Temporal payload codec's keys and the audit
 * checkpoint signing key. Both live in the key hierarchy (wrapped by the KEK, versioned, audited);
 * these interfaces are what their users (payload codec, codec server, audit checkpoints) depend on.
 */
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

export type KeyPurpose = 'payload' | 'audit-signing';

/** Per-tenant purposes (`tenant_purpose_keys`): the pseudonym key (lib/keys/pseudonym-keys.ts). */
export type TenantKeyPurpose = 'pseudonym';

export interface PayloadKey {
  /** Stable id carried in payload metadata, e.g. `payload-v3`. */
  keyId: string;
  version: number;
  /** 32 bytes for AES-256-GCM. */
  key: Buffer;
}

/** Dual-read/single-write: encrypt with `primary()`, decrypt with whatever key id a payload names. */
export interface PayloadKeySource {
  primary(): Promise<PayloadKey>;
  /** Throws DecryptionError for an unknown, destroyed or below-floor key. */
  byId(keyId: string): Promise<PayloadKey>;
}

export interface AuditSigningKey {
  kid: string;
  /** Ed25519 private key. */
  privateKey: KeyObject;
  publicJwk: JWK;
}

export interface AuditSigningKeySource {
  current(): Promise<AuditSigningKey>;
  /** Every public key that ever signed a checkpoint (retired ones too), for verification. */
  verificationKeys(): Promise<Array<{ kid: string; publicJwk: JWK }>>;
}
