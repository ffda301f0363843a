/**
 * The managed key-encryption key (DESIGN §4 invariant 4): a KekProvider whose version states live in
 * `kek_versions`/`kek_keys` (like a Vault Transit key or a Tink keyset) while the key material stays
 * in the backend (files for `local`, KMS keys for `aws-kms`).
 *
 * - wrap uses the primary version from the metadata (refreshed every `refreshMs`, and at once after
 *   an operation through KeyAdmin in this process);
 * - unwrap reads the version's state and the floor on every call (unwraps are rare: keys are cached
 *   unwrapped by their users) and refuses with DecryptionError a version that is below the floor,
 *   disabled, scheduled for destruction, destroyed or unknown.
 *
 * The operations that change states are in KeyAdmin (lib/keys/key-admin.ts); the SQL is in
 * lib/keys/kek-repository.ts.
 */
import { randomUUID } from 'node:crypto';
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { ConfigError, DecryptionError, InvalidArgumentError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool, Queryable } from '../store/pool.js';
import type { KekBackend, KekProvider, WrappedKey } from './kek-provider.js';
import type { KekVersionState } from './kek-repository.js';
import {
  ensureKekRow,
  hasKekVersions,
  insertKekVersion,
  listKekVersions,
  lockKekRegistration,
  readKekVersionWithFloor,
  readKekVersionsWithFloor,
} from './kek-repository.js';

export type { KekVersionState };

export interface KekVersionInfo {
  kekId: string;
  version: number;
  state: KekVersionState;
  providerRef: string;
  destroyAfter: Date | null;
}

export interface KeyHierarchyOptions {
  pool: Pool;
  backend: KekBackend;
  /** Who registers the backend's versions when the metadata is empty (audited). */
  audit?: AuditContext;
  /** How often the primary version is re-read for wraps; default 30 s. */
  refreshMs?: number;
}

/** States whose version may still unwrap. */
const READABLE: ReadonlySet<KekVersionState> = new Set(['primary', 'active']);

export class KeyHierarchy implements KekProvider {
  readonly #pool: Pool;
  readonly #backend: KekBackend;
  readonly #refreshMs: number;
  #primary = 0;
  #floor = 1;
  #refreshedAt = 0;
  #refreshing: Promise<void> | undefined;

  private constructor(opts: KeyHierarchyOptions) {
    this.#pool = opts.pool;
    this.#backend = opts.backend;
    this.#refreshMs = opts.refreshMs ?? 30_000;
    if (!Number.isFinite(this.#refreshMs) || this.#refreshMs < 0)
      throw new InvalidArgumentError('refreshMs', 'must be >= 0');
  }

  /**
   * Opens the hierarchy over `backend`. When no metadata exists for the backend's KEK id, registers
   * its versions (highest = primary, others active), audited as key.kek.created in the same
   * transaction. Afterwards metadata wins: backend material without a metadata row is ignored.
   */
  static async open(opts: KeyHierarchyOptions): Promise<KeyHierarchy> {
    const h = new KeyHierarchy(opts);
    const audit = opts.audit ?? { actor: 'system:key-hierarchy', correlationId: `key-hierarchy:${randomUUID()}` };
    const kekId = opts.backend.id;
    await withTransaction(opts.pool, async (client) => {
      await lockKekRegistration(client, kekId);
      await ensureKekRow(client, kekId);
      if (await hasKekVersions(client, kekId)) return;
      const initial = [...(await opts.backend.initialVersions())].sort((a, b) => a.version - b.version);
      if (initial.length === 0) throw new ConfigError('EHR_KEK_PROVIDER', `KEK ${kekId} has no versions to register`);
      const primary = initial[initial.length - 1]!.version;
      for (const v of initial) {
        await insertKekVersion(client, kekId, v.version, v.version === primary ? 'primary' : 'active', v.ref);
      }
      await appendAuditEvents(
        client,
        initial.map((v) => ({
          actor: audit.actor,
          action: 'key.kek.created',
          outcome: 'success' as const,
          correlationId: audit.correlationId,
          details: {
            kekId,
            kekVersion: v.version,
            state: v.version === primary ? 'primary' : 'active',
            registered: true,
          },
        })),
      );
    });
    await h.refresh();
    return h;
  }

  get id(): string {
    return this.#backend.id;
  }

  /** The backend (for KeyAdmin). */
  get backend(): KekBackend {
    return this.#backend;
  }

  primaryVersion(): number {
    this.#refreshIfStale();
    return this.#primary;
  }

  /** The decryption floor as last read. */
  minDecryptionVersion(): number {
    return this.#floor;
  }

  /** Re-reads the primary and floor, and makes every readable version's material known to the backend. */
  async refresh(): Promise<void> {
    const rows = await readKekVersionsWithFloor(this.#pool, this.id);
    const primary = rows.find((r) => r.state === 'primary');
    if (!primary) throw new ConfigError('EHR_KEK_PROVIDER', `KEK ${this.id} has no primary version in kek_versions`);
    for (const r of rows) {
      if (READABLE.has(r.state) && !this.#backend.hasVersion(r.version)) {
        await this.#backend.adoptVersion(r.version, r.provider_ref).catch(() => undefined);
      }
    }
    if (!this.#backend.hasVersion(primary.version))
      await this.#backend.adoptVersion(primary.version, primary.provider_ref);
    this.#primary = primary.version;
    this.#floor = primary.floor;
    this.#refreshedAt = Date.now();
  }

  /** Every version with its state, ascending. */
  async versions(q: Queryable = this.#pool): Promise<KekVersionInfo[]> {
    const rows = await listKekVersions(q, this.id);
    return rows.map((r) => ({
      kekId: this.id,
      version: r.version,
      state: r.state,
      providerRef: r.provider_ref,
      destroyAfter: r.destroy_after,
    }));
  }

  /** Wraps with the primary version (read synchronously, so primaryVersion() then wrap() agree). */
  async wrap(dek: Buffer, aad: Buffer): Promise<WrappedKey> {
    const version = this.#primary;
    this.#refreshIfStale();
    return this.#backend.wrapWith(version, dek, aad);
  }

  /** Wraps with the primary version as the metadata says right now (KeyAdmin's rewrap). */
  async wrapWithPrimary(dek: Buffer, aad: (kekVersion: number) => Buffer): Promise<WrappedKey> {
    await this.refresh();
    const version = this.#primary;
    return this.#backend.wrapWith(version, dek, aad(version));
  }

  async unwrap(w: WrappedKey, aad: Buffer): Promise<Buffer> {
    await this.assertReadable(w);
    return this.#backend.unwrap(w, aad);
  }

  /** Refuses (DecryptionError) a wrapped key whose KEK version may not be used for decryption. */
  async assertReadable(w: WrappedKey): Promise<void> {
    if (w.kekId !== this.id) throw new DecryptionError('wrapped key names another key-encryption key');
    const row = await readKekVersionWithFloor(this.#pool, this.id, w.kekVersion);
    if (!row) throw new DecryptionError('key-encryption key version is not registered');
    if (w.kekVersion < row.floor) throw new DecryptionError('key-encryption key version is below the decryption floor');
    if (!READABLE.has(row.state))
      throw new DecryptionError(`key-encryption key version is ${row.state.replace('_', ' ')}`);
    if (!this.#backend.hasVersion(w.kekVersion)) {
      try {
        await this.#backend.adoptVersion(w.kekVersion, row.provider_ref);
      } catch {
        throw new DecryptionError('key-encryption key version is not available');
      }
    }
  }

  toJSON(): { id: string; primaryVersion: number; minDecryptionVersion: number } {
    return { id: this.id, primaryVersion: this.#primary, minDecryptionVersion: this.#floor };
  }

  #refreshIfStale(): void {
    if (this.#refreshing || Date.now() - this.#refreshedAt < this.#refreshMs) return;
    this.#refreshing = this.refresh()
      .catch(() => undefined)
      .finally(() => {
        this.#refreshing = undefined;
      });
  }
}
