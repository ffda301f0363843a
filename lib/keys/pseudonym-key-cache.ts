/**
 * The tenant keyring's pseudonym keys (lib/keys/pseudonym-keys.ts): the stored key, unwrapped and
 * cached like the DEKs; on first use derived from DEK v1, stored wrapped, and then used as stored.
 * Every unwrap (a cache miss) returns the key only after its audit event is written (fail closed).
 */
import type { AuditContext } from '../audit/chain.js';
import type { DataKey } from '../crypto/envelope.js';
import { DecryptionError } from '../errors/index.js';
import type { Pool } from '../store/pool.js';
import type { KekProvider } from './kek-provider.js';
import { derivePseudonymKey, pseudonymKeyWrapAad, readPseudonymKeyRow, storePseudonymKey } from './pseudonym-keys.js';
import type { PseudonymKeyRow } from './pseudonym-keys.js';
import { auditUnwrapFailure, auditUnwrapped } from './unwrap-audit.js';

export interface PseudonymKeyCacheOptions {
  pool: Pool;
  kek: KekProvider;
  ttlMs: number;
  /** The tenant's DEK v1 (created first for a new tenant): what a pseudonym key not yet stored derives from. */
  dataKeyV1(tenantId: string, audit: AuditContext): Promise<DataKey>;
}

export class PseudonymKeyCache {
  readonly #opts: PseudonymKeyCacheOptions;
  readonly #keys = new Map<string, { value: Buffer; expiresAt: number }>();
  readonly #inflight = new Map<string, Promise<Buffer>>();

  constructor(opts: PseudonymKeyCacheOptions) {
    this.#opts = opts;
  }

  /** The tenant's pseudonym key: cached, stored, or derived and stored now. */
  async key(tenantId: string, audit: AuditContext): Promise<Buffer> {
    const cached = this.#keys.get(tenantId);
    if (cached && cached.expiresAt > Date.now()) return cached.value;
    if (cached) this.#keys.delete(tenantId);
    let pending = this.#inflight.get(tenantId);
    if (!pending) {
      pending = this.#load(tenantId, audit).finally(() => this.#inflight.delete(tenantId));
      this.#inflight.set(tenantId, pending);
    }
    return pending;
  }

  /**
   * Makes sure the tenant's pseudonym key is stored (reads the database, not the cache): DEK v1 may
   * be destroyed only after this. Idempotent and safe under concurrent callers.
   */
  async ensureStored(tenantId: string, audit: AuditContext): Promise<void> {
    const row = await readPseudonymKeyRow(this.#opts.pool, tenantId);
    if (row?.status === 'active') return;
    if (row) throw new DecryptionError('pseudonym key has been destroyed');
    this.#keys.delete(tenantId);
    await this.key(tenantId, audit);
  }

  forget(tenantId?: string): void {
    if (tenantId === undefined) this.#keys.clear();
    else this.#keys.delete(tenantId);
  }

  /** Stored key if any; otherwise derive from DEK v1, store, and use what is stored. */
  async #load(tenantId: string, audit: AuditContext): Promise<Buffer> {
    const { pool, kek } = this.#opts;
    let row = await readPseudonymKeyRow(pool, tenantId);
    if (!row) {
      const material = derivePseudonymKey((await this.#opts.dataKeyV1(tenantId, audit)).key);
      let stored: boolean;
      try {
        stored = await storePseudonymKey(pool, kek, tenantId, material, audit);
      } catch (err) {
        material.fill(0);
        await auditUnwrapFailure(
          this.#opts.pool,
          { action: 'key.pseudonym.created', tenantId, audit, details: { purpose: 'pseudonym' } },
          err,
        );
        throw err;
      }
      if (stored) return this.#remember(tenantId, material);
      material.fill(0);
      row = await readPseudonymKeyRow(pool, tenantId);
      if (!row) throw new DecryptionError('pseudonym key vanished while being stored');
    }
    return this.#remember(tenantId, await this.#unwrap(tenantId, row, audit));
  }

  /** Unwraps a stored pseudonym key; returns it only after its audit event is written (fail closed). */
  async #unwrap(tenantId: string, row: PseudonymKeyRow, audit: AuditContext): Promise<Buffer> {
    if (row.status === 'destroyed' || row.wrapped_key === null) {
      throw new DecryptionError('pseudonym key has been destroyed');
    }
    const details = { purpose: 'pseudonym', kekId: row.kek_id, kekVersion: row.kek_version };
    let raw: Buffer;
    try {
      raw = await this.#opts.kek.unwrap(
        { kekId: row.kek_id, kekVersion: row.kek_version, wrapped: row.wrapped_key },
        pseudonymKeyWrapAad(tenantId, row.kek_id, row.kek_version),
      );
    } catch (err) {
      await auditUnwrapFailure(this.#opts.pool, { action: 'key.pseudonym.unwrapped', tenantId, audit, details }, err);
      throw err;
    }
    await auditUnwrapped(this.#opts.pool, { action: 'key.pseudonym.unwrapped', tenantId, audit, details }, raw);
    return raw;
  }

  #remember(tenantId: string, key: Buffer): Buffer {
    this.#keys.set(tenantId, { value: key, expiresAt: Date.now() + this.#opts.ttlMs });
    return key;
  }
}
