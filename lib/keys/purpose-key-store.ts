/**
 * Keys by purpose, stored in `purpose_keys` only wrapped by the KEK (lib/keys/purpose-keys.ts has
 * the interfaces their users depend on):
 * - payload: 32-byte AES-256-GCM keys for the Temporal payload codec, key ids `payload-v<N>`;
 * - audit-signing: Ed25519 key pairs for audit checkpoints, kid = RFC 7638 JWK thumbprint, public JWK
 *   stored in clear, private key (PKCS#8 DER) wrapped.
 * The first key of a purpose is created on first use; rotation makes a new primary and leaves the old
 * ones readable (decrypt-only / verification). Creation, rotation and every unwrap (a cache miss) are
 * audited; unwrapped keys are cached in memory for `cacheTtlMs`, the primary's id for `primaryTtlMs`.
 * The keys themselves (generation, wrap AAD, the objects handed out) are purpose-key-material.ts.
 */
import type { JWK } from 'jose';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { ConflictError, DecryptionError, EhrError, InvalidArgumentError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool } from '../store/pool.js';
import type { KekProvider } from './kek-provider.js';
import type { AuditSigningKeySource, KeyPurpose, PayloadKeySource } from './purpose-keys.js';
import {
  auditSigningPublicKeys,
  demotePurposeKey,
  insertPrimaryPurposeKey,
  lockPurpose,
  maxPurposeKeyVersion,
  primaryPurposeKeyVersion,
  purposeKeyId,
  readPurposeKey,
} from './purpose-key-repository.js';
import type { PurposeKeyRow as PurposeRow } from './purpose-key-repository.js';
import { PAYLOAD_KEY_ID, newKey, purposeKeyWrapAad, toPayloadKey, toSigningKey } from './purpose-key-material.js';

// Callers import these from here, as before the key material got a file of its own.
export { payloadKeyId, purposeKeyWrapAad } from './purpose-key-material.js';

export interface PurposeKeysOptions {
  pool: Pool;
  /** The KEK that wraps these keys (normally the KeyHierarchy). */
  kek: KekProvider;
  /** Who creates the first key of a purpose and whose name unwraps are audited under. */
  audit: AuditContext;
  /** How long an unwrapped key stays in memory; default 5 minutes. */
  cacheTtlMs?: number;
  /** How long the primary's id is trusted before re-reading it (rotation by another process); default 60 s. */
  primaryTtlMs?: number;
}

export interface PurposeKeys {
  payload: PayloadKeySource;
  auditSigning: AuditSigningKeySource;
  /** New primary payload key; older ones stay readable by id. */
  rotatePayloadKey(ctx: AuditContext): Promise<{ keyId: string; version: number }>;
  /** New primary signing key; older public keys stay in verificationKeys(). */
  rotateAuditSigningKey(ctx: AuditContext): Promise<{ kid: string; version: number }>;
  /** Drops cached keys (e.g. after a KEK operation). */
  forget(): void;
}

interface Cached<T> {
  value: T;
  expiresAt: number;
}

const AUDIT_ACTION: Record<KeyPurpose, string> = { payload: 'key.payload', 'audit-signing': 'key.audit_signing' };

class PurposeKeyStore {
  readonly #pool: Pool;
  readonly #kek: KekProvider;
  readonly #audit: AuditContext;
  readonly #ttl: number;
  readonly #primaryTtl: number;
  readonly #byVersion = new Map<string, Cached<{ row: PurposeRow; secret: Buffer }>>();
  readonly #primary = new Map<KeyPurpose, Cached<number>>();
  readonly #inflight = new Map<string, Promise<{ row: PurposeRow; secret: Buffer }>>();

  constructor(opts: PurposeKeysOptions) {
    this.#pool = opts.pool;
    this.#kek = opts.kek;
    this.#audit = opts.audit;
    this.#ttl = opts.cacheTtlMs ?? 5 * 60_000;
    this.#primaryTtl = opts.primaryTtlMs ?? 60_000;
    if (!opts.audit?.actor || !opts.audit?.correlationId)
      throw new InvalidArgumentError('audit', 'needs an actor and a correlation id');
  }

  forget(): void {
    this.#byVersion.clear();
    this.#primary.clear();
  }

  async primary(purpose: KeyPurpose): Promise<{ row: PurposeRow; secret: Buffer }> {
    const cached = this.#primary.get(purpose);
    let version = cached && cached.expiresAt > Date.now() ? cached.value : undefined;
    if (version === undefined) {
      version = await primaryPurposeKeyVersion(this.#pool, purpose);
      if (version === undefined) version = await this.#rotate(purpose, this.#audit, true);
      this.#primary.set(purpose, { value: version, expiresAt: Date.now() + this.#primaryTtl });
    }
    return this.byVersion(purpose, version);
  }

  async byVersion(purpose: KeyPurpose, version: number): Promise<{ row: PurposeRow; secret: Buffer }> {
    const k = `${purpose}\0${version}`;
    const hit = this.#byVersion.get(k);
    if (hit && hit.expiresAt > Date.now()) return hit.value;
    let pending = this.#inflight.get(k);
    if (!pending) {
      pending = this.#load(purpose, version).finally(() => this.#inflight.delete(k));
      this.#inflight.set(k, pending);
    }
    return pending;
  }

  async publicKeys(): Promise<Array<{ kid: string; publicJwk: JWK }>> {
    return auditSigningPublicKeys(this.#pool);
  }

  async rotate(purpose: KeyPurpose, ctx: AuditContext): Promise<{ keyId: string; version: number }> {
    if (!ctx?.actor || !ctx?.correlationId)
      throw new InvalidArgumentError('audit context', 'needs an actor and a correlation id');
    const version = await this.#rotate(purpose, ctx, false);
    this.#primary.set(purpose, { value: version, expiresAt: Date.now() + this.#primaryTtl });
    return { keyId: (await purposeKeyId(this.#pool, purpose, version))!, version };
  }

  /**
   * Creates a new primary under a per-purpose advisory lock. `onlyIfNone`: first use (another process may
   * have won).
   */
  async #rotate(purpose: KeyPurpose, ctx: AuditContext, onlyIfNone: boolean): Promise<number> {
    const action = `${AUDIT_ACTION[purpose]}.${onlyIfNone ? 'created' : 'rotated'}`;
    try {
      return await withTransaction(this.#pool, async (client) => {
        await lockPurpose(client, purpose);
        const current = await primaryPurposeKeyVersion(client, purpose);
        if (onlyIfNone && current !== undefined) return current;
        const version = ((await maxPurposeKeyVersion(client, purpose)) ?? 0) + 1;
        const key = await newKey(purpose, version);
        const kekId = this.#kek.id;
        const kekVersion = this.#kek.primaryVersion();
        let wrapped;
        try {
          wrapped = await this.#kek.wrap(key.secret, purposeKeyWrapAad(purpose, version, key.keyId, kekId, kekVersion));
        } finally {
          key.secret.fill(0);
        }
        if (wrapped.kekId !== kekId || wrapped.kekVersion !== kekVersion) {
          throw new ConflictError('key-encryption key', kekId, 'changed its primary version during a wrap; retry');
        }
        if (current !== undefined) await demotePurposeKey(client, purpose, current);
        await insertPrimaryPurposeKey(client, {
          purpose,
          version,
          keyId: key.keyId,
          wrapped,
          publicJwk: key.publicJwk,
        });
        const details: Record<string, unknown> = { purpose, version, keyId: key.keyId, kekId, kekVersion };
        if (current !== undefined) details.previousVersion = current;
        await appendAuditEvents(client, [
          { actor: ctx.actor, action, outcome: 'success', correlationId: ctx.correlationId, details },
        ]);
        return version;
      });
    } catch (err) {
      await this.#auditFailure(action, ctx, { purpose }, err);
      throw err;
    }
  }

  async #load(purpose: KeyPurpose, version: number): Promise<{ row: PurposeRow; secret: Buffer }> {
    const row = await readPurposeKey(this.#pool, purpose, version);
    if (!row) throw new DecryptionError(`${purpose} key version does not exist`);
    if (row.status === 'destroyed' || !row.wrapped_key)
      throw new DecryptionError(`${purpose} key version has been destroyed`);
    const action = `${AUDIT_ACTION[purpose]}.unwrapped`;
    const details = { purpose, version, keyId: row.key_id, kekId: row.kek_id, kekVersion: row.kek_version };
    let secret: Buffer;
    try {
      secret = await this.#kek.unwrap(
        { kekId: row.kek_id, kekVersion: row.kek_version, wrapped: row.wrapped_key },
        purposeKeyWrapAad(purpose, version, row.key_id, row.kek_id, row.kek_version),
      );
    } catch (err) {
      await this.#auditFailure(action, this.#audit, details, err);
      throw err;
    }
    try {
      await recordAuditEvent(this.#pool, {
        actor: this.#audit.actor,
        action,
        outcome: 'success',
        correlationId: this.#audit.correlationId,
        details,
      });
    } catch (err) {
      secret.fill(0);
      throw err;
    }
    const value = { row: { ...row, wrapped_key: null }, secret };
    this.#byVersion.set(`${purpose}\0${version}`, { value, expiresAt: Date.now() + this.#ttl });
    return value;
  }

  async #auditFailure(
    action: string,
    ctx: AuditContext,
    details: Record<string, unknown>,
    err: unknown,
  ): Promise<void> {
    const errorCode = err instanceof EhrError ? err.code : 'UNCLASSIFIED';
    await recordAuditEvent(this.#pool, {
      actor: ctx.actor,
      action,
      outcome: 'failure',
      correlationId: ctx.correlationId,
      details: { ...details, errorCode },
    }).catch(() => undefined);
  }
}

/**
 * The payload and audit-signing key sources over one pool and KEK. API (stable for the payload
 * codec, the codec server and audit checkpoints):
 *   payload.primary(), payload.byId('payload-v<N>'), auditSigning.current(), auditSigning.verificationKeys(),
 *   rotatePayloadKey(ctx), rotateAuditSigningKey(ctx), forget().
 */
export function createPurposeKeys(opts: PurposeKeysOptions): PurposeKeys {
  const store = new PurposeKeyStore(opts);
  const payload: PayloadKeySource = {
    async primary() {
      return toPayloadKey(await store.primary('payload'));
    },
    async byId(keyId: string) {
      const m = typeof keyId === 'string' ? PAYLOAD_KEY_ID.exec(keyId) : null;
      if (!m) throw new DecryptionError('payload key id is not recognised');
      return toPayloadKey(await store.byVersion('payload', Number(m[1])));
    },
  };
  const auditSigning: AuditSigningKeySource = {
    async current() {
      return toSigningKey(await store.primary('audit-signing'));
    },
    async verificationKeys() {
      return store.publicKeys();
    },
  };
  return {
    payload,
    auditSigning,
    rotatePayloadKey: (ctx) => store.rotate('payload', ctx),
    async rotateAuditSigningKey(ctx) {
      const { keyId, version } = await store.rotate('audit-signing', ctx);
      return { kid: keyId, version };
    },
    forget: () => store.forget(),
  };
}
