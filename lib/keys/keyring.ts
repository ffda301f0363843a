/**
 * Per-tenant data keys (DEKs), stored in `data_keys` only wrapped by a KEK that lives outside the
 * database (DESIGN §4 invariants 3, 4, 10). Unwrapped keys are cached in memory for `cacheTtlMs`.
 * Every key operation is audited: creation commits in the same transaction as its audit event, and an
 * unwrap (a cache miss) returns the key only after its audit event is written (fail closed).
 *
 * Pseudonyms (for audit rows and indexes) are keyed by the tenant's pseudonym key, a purpose key of
 * its own (lib/keys/pseudonym-keys.ts, cached by lib/keys/pseudonym-key-cache.ts): derived from DEK v1
 * once, then stored wrapped, so they stay stable across DEK rotation and DEK v1 can be destroyed like
 * any superseded version.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { ID_PATTERN } from '../domain.js';
import { ConflictError, DecryptionError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool } from '../store/pool.js';
import type { DataKey, DataKeyLookup } from '../crypto/envelope.js';
import type { KekProvider } from './kek-provider.js';
import { insertFirstDataKey, primaryDataKeyVersion, readDataKey, tenantHasDataKey } from './data-key-repository.js';
import { PseudonymKeyCache } from './pseudonym-key-cache.js';
import { auditUnwrapFailure, auditUnwrapped } from './unwrap-audit.js';

/** Patient ids whose pseudonyms a key remembers (about 10 MB at most). */
const PSEUDONYM_MEMO_ENTRIES = 50_000;

export type { AuditContext };

export interface TenantKeyringOptions {
  pool: Pool;
  kek: KekProvider;
  /** How long an unwrapped key stays in memory; default 5 minutes. */
  cacheTtlMs?: number;
}

interface Cached<T> {
  value: T;
  expiresAt: number;
}

const DEK_BYTES = 32;
const SYSTEM_ACTOR = 'system:keyring';

/** The AAD a DEK is wrapped under: tenant, DEK version and the KEK id/version that wrap it. */
export function dataKeyWrapAad(tenantId: string, keyVersion: number, kekId: string, kekVersion: number): Buffer {
  return Buffer.from(
    canonicalize({ purpose: 'ehr-connectors/dek/v1', tenantId, keyVersion, kekId, kekVersion })!,
    'utf8',
  );
}

/** A DataKey whose key bytes are not enumerable, so a stray JSON.stringify or log call skips them. */
function makeDataKey(tenantId: string, version: number, key: Buffer): DataKey {
  const dek = { tenantId, version } as DataKey;
  Object.defineProperty(dek, 'key', { value: key, enumerable: false, writable: false });
  return dek;
}

function assertTenantId(tenantId: string): void {
  if (typeof tenantId !== 'string' || !ID_PATTERN.test(tenantId))
    throw new InvalidArgumentError('tenantId', 'is not a valid tenant id');
}

export class TenantKeyring {
  readonly #pool: Pool;
  readonly #kek: KekProvider;
  readonly #ttlMs: number;
  readonly #keys = new Map<string, Cached<DataKey>>();
  readonly #primary = new Map<string, Cached<number>>();
  readonly #pseudonyms: PseudonymKeyCache;
  readonly #pseudonymMemo = new WeakMap<Buffer, Map<string, string>>();
  readonly #inflight = new Map<string, Promise<DataKey>>();

  constructor(opts: TenantKeyringOptions) {
    this.#pool = opts.pool;
    this.#kek = opts.kek;
    this.#ttlMs = opts.cacheTtlMs ?? 5 * 60_000;
    if (!Number.isFinite(this.#ttlMs) || this.#ttlMs < 0) throw new InvalidArgumentError('cacheTtlMs', 'must be >= 0');
    this.#pseudonyms = new PseudonymKeyCache({
      pool: this.#pool,
      kek: this.#kek,
      ttlMs: this.#ttlMs,
      dataKeyV1: async (tenantId, audit) => {
        if (!(await tenantHasDataKey(this.#pool, tenantId))) await this.primaryDataKey(tenantId, audit);
        return this.dataKey(tenantId, 1, audit);
      },
    });
  }

  /** A lookup for decryptRecord. */
  readonly lookup: DataKeyLookup = (tenantId, keyVersion) => this.dataKey(tenantId, keyVersion);

  /** The tenant's primary DEK; creates DEK v1 (audited, same transaction) when the tenant has none. */
  async primaryDataKey(tenantId: string, audit: AuditContext): Promise<DataKey> {
    assertTenantId(tenantId);
    const version = this.#fresh(this.#primary, tenantId);
    if (version !== undefined) {
      const cached = this.#fresh(this.#keys, cacheKey(tenantId, version));
      if (cached) return cached;
    }
    let primaryVersion = await primaryDataKeyVersion(this.#pool, tenantId);
    if (primaryVersion === undefined) {
      const created = await this.#createFirstKey(tenantId, audit);
      if (created) return created;
      primaryVersion = await primaryDataKeyVersion(this.#pool, tenantId);
      if (primaryVersion === undefined) throw new NotFoundError('primary data key of tenant', tenantId);
    }
    const dek = await this.dataKey(tenantId, primaryVersion, audit);
    this.#primary.set(tenantId, { value: primaryVersion, expiresAt: Date.now() + this.#ttlMs });
    return dek;
  }

  /** A DEK version of the tenant (primary or decrypt-only); DecryptionError when missing or destroyed. */
  async dataKey(tenantId: string, version: number, audit?: AuditContext): Promise<DataKey> {
    assertTenantId(tenantId);
    if (!Number.isInteger(version) || version < 1) throw new DecryptionError('data key version is invalid');
    const key = cacheKey(tenantId, version);
    const cached = this.#fresh(this.#keys, key);
    if (cached) return cached;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#loadKey(tenantId, version, audit ?? systemAudit()).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  /**
   * `psn_` + 22 base64url chars of HMAC-SHA256(pseudonym key, value); the pseudonym key is
   * HKDF-SHA256(DEK v1, info 'ehr-connectors/pseudonym/v1'), stored wrapped on first use.
   * Stable per tenant, different across tenants. Callers normalise `value` (e.g. `system|identifier`).
   */
  async pseudonymise(tenantId: string, value: string, audit?: AuditContext): Promise<string> {
    assertTenantId(tenantId);
    if (typeof value !== 'string' || value.length === 0)
      throw new InvalidArgumentError('value', 'must be a non-empty string');
    return (await this.pseudonymiser(tenantId, audit))(value);
  }

  /** pseudonymise() with the tenant's pseudonym key looked up once, for a batch of values. */
  async pseudonymiser(tenantId: string, audit?: AuditContext): Promise<(value: string) => string> {
    assertTenantId(tenantId);
    const pk = await this.#pseudonyms.key(tenantId, audit ?? systemAudit());
    // Remembered per key (a new key object, after forget(), starts afresh): a bulk file names the same patients
    // over and over, and one HMAC each was a tenth of the file's CPU. Bounded; cleared whole when full.
    let memo = this.#pseudonymMemo.get(pk);
    if (!memo) this.#pseudonymMemo.set(pk, (memo = new Map()));
    const remembered = memo;
    return (value) => {
      if (typeof value !== 'string' || value.length === 0)
        throw new InvalidArgumentError('value', 'must be a non-empty string');
      const known = remembered.get(value);
      if (known !== undefined) return known;
      const mac = createHmac('sha256', pk).update(value, 'utf8').digest('base64url');
      const pseudonym = `psn_${mac.slice(0, 22)}`;
      if (remembered.size >= PSEUDONYM_MEMO_ENTRIES) remembered.clear();
      remembered.set(value, pseudonym);
      return pseudonym;
    };
  }

  /**
   * Makes sure the tenant's pseudonym key is stored (reads the database, not the cache): DEK v1 may
   * be destroyed only after this. Idempotent and safe under concurrent callers.
   */
  async ensurePseudonymKey(tenantId: string, audit: AuditContext): Promise<void> {
    assertTenantId(tenantId);
    await this.#pseudonyms.ensureStored(tenantId, audit);
  }

  /** Drops cached keys (one tenant, or all) — e.g. after revocation or rotation commits. */
  forget(tenantId?: string): void {
    if (tenantId === undefined) {
      this.#keys.clear();
      this.#primary.clear();
      this.#pseudonyms.forget();
      return;
    }
    for (const k of [...this.#keys.keys()]) if (k.startsWith(`${tenantId}\0`)) this.#keys.delete(k);
    this.#primary.delete(tenantId);
    this.#pseudonyms.forget(tenantId);
  }

  #fresh<T>(map: Map<string, Cached<T>>, key: string): T | undefined {
    const entry = map.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      map.delete(key);
      return undefined;
    }
    return entry.value;
  }

  #remember(dek: DataKey): void {
    this.#keys.set(cacheKey(dek.tenantId, dek.version), { value: dek, expiresAt: Date.now() + this.#ttlMs });
  }

  /** Returns the new key when this call created it, undefined when another caller won the race. */
  async #createFirstKey(tenantId: string, audit: AuditContext): Promise<DataKey | undefined> {
    const kekId = this.#kek.id;
    const kekVersion = this.#kek.primaryVersion();
    const raw = randomBytes(DEK_BYTES);
    try {
      const wrapped = await this.#kek.wrap(raw, dataKeyWrapAad(tenantId, 1, kekId, kekVersion));
      if (wrapped.kekId !== kekId || wrapped.kekVersion !== kekVersion) {
        throw new ConflictError('key-encryption key', kekId, 'changed its primary version during a wrap; retry');
      }
      const inserted = await withTransaction(this.#pool, async (client) => {
        if (!(await insertFirstDataKey(client, tenantId, wrapped))) return false;
        await appendAuditEvents(client, [
          {
            actor: audit.actor,
            action: 'key.dek.created',
            outcome: 'success',
            tenantId,
            correlationId: audit.correlationId,
            details: { keyVersion: 1, kekId: wrapped.kekId, kekVersion: wrapped.kekVersion },
          },
        ]);
        return true;
      });
      if (!inserted) {
        raw.fill(0);
        return undefined;
      }
      const dek = makeDataKey(tenantId, 1, raw);
      this.#remember(dek);
      this.#primary.set(tenantId, { value: 1, expiresAt: Date.now() + this.#ttlMs });
      return dek;
    } catch (err) {
      raw.fill(0);
      const failure = isForeignKeyViolation(err) ? new NotFoundError('tenant', tenantId) : err;
      await auditUnwrapFailure(
        this.#pool,
        { action: 'key.dek.created', tenantId, audit, details: { keyVersion: 1, kekId, kekVersion } },
        failure,
      );
      throw failure;
    }
  }

  async #loadKey(tenantId: string, version: number, audit: AuditContext): Promise<DataKey> {
    const row = await readDataKey(this.#pool, tenantId, version);
    if (!row) throw new DecryptionError('data key version does not exist for this tenant');
    if (row.status === 'destroyed' || row.wrapped_key === null)
      throw new DecryptionError('data key version has been destroyed');
    const details = { keyVersion: version, kekId: row.kek_id, kekVersion: row.kek_version };
    let raw: Buffer;
    try {
      raw = await this.#kek.unwrap(
        { kekId: row.kek_id, kekVersion: row.kek_version, wrapped: row.wrapped_key },
        dataKeyWrapAad(tenantId, version, row.kek_id, row.kek_version),
      );
    } catch (err) {
      await auditUnwrapFailure(this.#pool, { action: 'key.dek.unwrapped', tenantId, audit, details }, err);
      throw err;
    }
    await auditUnwrapped(this.#pool, { action: 'key.dek.unwrapped', tenantId, audit, details }, raw);
    const dek = makeDataKey(tenantId, version, raw);
    this.#remember(dek);
    return dek;
  }
}

function cacheKey(tenantId: string, version: number): string {
  return `${tenantId}\0${version}`;
}

function systemAudit(): AuditContext {
  return { actor: SYSTEM_ACTOR, correlationId: `keyring:${randomUUID()}` };
}

function isForeignKeyViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23503';
}
