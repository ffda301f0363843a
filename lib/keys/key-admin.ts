/**
 * Key administration as a library (DESIGN §4 invariant 4): KEK rotation, rewrap, decryption floor,
 * gated and delayed destruction, tenant DEK rotation and crypto-shredding. Every operation writes its
 * audit event (actor, correlation id) in the same transaction as the metadata change; a refused
 * operation leaves a failure event (best effort) and throws.
 *
 * Concurrency: each operation locks one row first (kek_keys for KEK operations, tenants for a
 * tenant's DEKs, an advisory lock per purpose), so concurrent admins serialise; the partial unique
 * indexes (one primary per KEK / tenant / purpose) are the last line of defence.
 *
 * Plaintext keys exist only inside this process during rewrap (or not at all when the backend can
 * re-encrypt, e.g. KMS ReEncrypt) and are zeroed after use.
 *
 * Crypto-shredding note: PostgreSQL keeps old row versions until VACUUM, and WAL/backups keep copies of
 * wrapped DEKs. Those copies are useless without the KEK version that wrapped them: rotate the KEK,
 * rewrap, raise the floor and destroy the old KEK version to shred them too.
 */
import { randomBytes } from 'node:crypto';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { ID_PATTERN } from '../domain.js';
import { ConflictError, EhrError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { assertNoLegalHold } from '../incidents/holds.js';
import { withTransaction } from '../store/pool.js';
import type { Pool, PoolClient } from '../store/pool.js';
import type { WrappedKey } from './kek-provider.js';
import type { KeyHierarchy, KekVersionState } from './key-hierarchy.js';
import { dataKeyWrapAad } from './keyring.js';
import { dataKeyStage, purposeKeyStage, tenantPurposeKeyStage } from './rewrap-stages.js';
import type { RewrapStage, WrappedRow } from './rewrap-stages.js';
import type { TenantKeyPurpose } from './pseudonym-keys.js';

export interface KeyAdminOptions {
  pool: Pool;
  kek: KeyHierarchy;
  /** Waiting period between scheduleKekDestroy and destroyKek (config EHR_KEY_DESTROY_DELAY_SECONDS). */
  destroyDelaySeconds: number;
  /** Caches to drop after a change commits (this process only; other processes expire by TTL). */
  forget?: { tenant?(tenantId: string): void; purposeKeys?(): void };
}

export interface RewrapResult {
  /** Tenant DEKs moved to the primary KEK version in this call. */
  dataKeys: number;
  /** Payload and audit-signing keys moved in this call. */
  purposeKeys: number;
  /** Per-tenant purpose keys (pseudonym keys, `tenant_purpose_keys`) moved in this call. */
  tenantPurposeKeys: number;
  /** Keys still wrapped under a non-primary version of this KEK. */
  remaining: number;
}

const DEK_BYTES = 32;

function assertVersion(v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new InvalidArgumentError('kekVersion', 'must be a positive integer');
}

function assertTenantId(tenantId: string): void {
  if (typeof tenantId !== 'string' || !ID_PATTERN.test(tenantId)) throw new InvalidArgumentError('tenantId', 'is not a valid tenant id');
}

function assertAudit(ctx: AuditContext): void {
  if (!ctx || typeof ctx.actor !== 'string' || ctx.actor === '' || typeof ctx.correlationId !== 'string' || ctx.correlationId === '') {
    throw new InvalidArgumentError('audit context', 'needs an actor and a correlation id');
  }
}

export class KeyAdmin {
  readonly #pool: Pool;
  readonly #kek: KeyHierarchy;
  readonly #delay: number;
  readonly #forget: KeyAdminOptions['forget'];

  constructor(opts: KeyAdminOptions) {
    this.#pool = opts.pool;
    this.#kek = opts.kek;
    this.#delay = opts.destroyDelaySeconds;
    this.#forget = opts.forget;
    if (!Number.isInteger(this.#delay) || this.#delay < 0) throw new InvalidArgumentError('destroyDelaySeconds', 'must be a non-negative integer');
  }

  get kekId(): string {
    return this.#kek.id;
  }

  // ---- KEK versions -------------------------------------------------------------------------

  /**
   * Creates the next KEK version and makes it the primary; the old primary becomes active
   * (decrypt-only). `providerRef` adopts an existing backend key (aws-kms: a KMS key id/ARN made by
   * an operator) instead of creating one.
   */
  async rotateKek(ctx: AuditContext, opts: { providerRef?: string } = {}): Promise<{ version: number; previous: number }> {
    return this.#kekOp('key.kek.rotated', ctx, {}, async (client, kekId) => {
      const { rows } = await client.query<{ max: number; primary: number | null }>(
        `SELECT max(version) AS max, max(version) FILTER (WHERE state = 'primary') AS primary FROM kek_versions WHERE kek_id = $1`,
        [kekId],
      );
      const previous = rows[0]?.primary ?? null;
      if (previous === null) throw new ConflictError('key-encryption key', kekId, 'has no primary version');
      const version = (rows[0]?.max ?? 0) + 1;
      const { ref } = await this.#kek.backend.createVersion(version, opts.providerRef);
      await client.query(`UPDATE kek_versions SET state = 'active', updated_at = now() WHERE kek_id = $1 AND version = $2`, [kekId, previous]);
      await client.query(`INSERT INTO kek_versions (kek_id, version, state, provider_ref) VALUES ($1, $2, 'primary', $3)`, [kekId, version, ref]);
      const details = { kekId, kekVersion: version, previousKekVersion: previous };
      return { result: { version, previous }, events: [event(ctx, 'key.kek.created', { kekId, kekVersion: version, state: 'primary' }), event(ctx, 'key.kek.rotated', details)] };
    });
  }

  /**
   * Rewraps up to `batchSize` keys (tenant DEKs, then purpose keys, then tenant purpose keys) that are wrapped under a
   * non-primary version of this KEK. Rows are locked (SKIP LOCKED), so concurrent rewraps share work.
   */
  async rewrapDataKeys(batchSize: number, ctx: AuditContext): Promise<RewrapResult> {
    assertAudit(ctx);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new InvalidArgumentError('batchSize', 'must be an integer in 1..10000');
    await this.#kek.refresh();
    const kekId = this.#kek.id;
    try {
      const moved = await withTransaction(this.#pool, async (client) => {
        const primary = this.#kek.primaryVersion();
        const events: AuditEvent[] = [];
        const dataKeys = await this.#rewrapStage(client, dataKeyStage, primary, batchSize, ctx, events);
        const purposeKeys = await this.#rewrapStage(client, purposeKeyStage, primary, batchSize - dataKeys, ctx, events);
        const tenantPurposeKeys = await this.#rewrapStage(client, tenantPurposeKeyStage, primary, batchSize - dataKeys - purposeKeys, ctx, events);
        if (events.length > 0) await appendAuditEvents(client, events);
        return { dataKeys, purposeKeys, tenantPurposeKeys };
      });
      const remaining = await this.#countWrapped(this.#pool, { notVersion: this.#kek.primaryVersion() });
      return { ...moved, remaining };
    } catch (err) {
      await this.#auditFailure('key.dek.rewrapped', ctx, { kekId }, err);
      throw err;
    }
  }

  /** Raises the decryption floor: versions below it are refused. Refused while any key is still wrapped below it. */
  async raiseKekFloor(version: number, ctx: AuditContext): Promise<void> {
    assertVersion(version);
    await this.#kekOp('key.kek.floor_raised', ctx, { kekVersion: version }, async (client, kekId, floor) => {
      if (version < floor) throw new ConflictError('decryption floor of KEK', kekId, `is ${floor}; it can only be raised`);
      const primary = await client.query<{ version: number }>(`SELECT version FROM kek_versions WHERE kek_id = $1 AND state = 'primary'`, [kekId]);
      if (version > (primary.rows[0]?.version ?? 0)) throw new ConflictError('decryption floor of KEK', kekId, 'cannot rise above the primary version');
      const below = await this.#countWrapped(client, { below: version });
      if (below > 0) throw new ConflictError('decryption floor of KEK', kekId, `cannot rise to ${version}: ${below} keys are still wrapped below it (run rewrapDataKeys)`);
      await client.query('UPDATE kek_keys SET min_decryption_version = $2, updated_at = now() WHERE kek_id = $1', [kekId, version]);
      return { result: undefined, events: [event(ctx, 'key.kek.floor_raised', { kekId, fromVersion: floor, toVersion: version })] };
    });
  }

  /** Active → disabled: refuses unwraps under that version (reversible with enableKekVersion). */
  async disableKekVersion(version: number, ctx: AuditContext): Promise<void> {
    await this.#transition(version, ctx, 'key.kek.disabled', ['active'], 'disabled');
  }

  /** Disabled → active. */
  async enableKekVersion(version: number, ctx: AuditContext): Promise<void> {
    await this.#transition(version, ctx, 'key.kek.enabled', ['disabled'], 'active');
  }

  /**
   * Schedules destruction after the waiting period. Only a version below the decryption floor (so
   * nothing can still be wrapped under it) may be scheduled.
   */
  async scheduleKekDestroy(version: number, ctx: AuditContext): Promise<{ destroyAfter: Date }> {
    assertVersion(version);
    return this.#kekOp('key.kek.destroy_scheduled', ctx, { kekVersion: version }, async (client, kekId, floor) => {
      const row = await this.#versionRow(client, kekId, version);
      if (row.state !== 'active' && row.state !== 'disabled') throw new ConflictError(`KEK ${kekId} version`, String(version), `is ${row.state}; only active or disabled versions can be scheduled`);
      if (version >= floor) throw new ConflictError(`KEK ${kekId} version`, String(version), `is not below the decryption floor ${floor}; raise the floor first`);
      const { rows } = await client.query<{ destroy_after: Date }>(
        `UPDATE kek_versions SET state = 'destroy_scheduled', destroy_after = now() + make_interval(secs => $3), updated_at = now()
          WHERE kek_id = $1 AND version = $2 RETURNING destroy_after`,
        [kekId, version, this.#delay],
      );
      const destroyAfter = rows[0]!.destroy_after;
      return {
        result: { destroyAfter },
        events: [event(ctx, 'key.kek.destroy_scheduled', { kekId, kekVersion: version, destroyAfter: destroyAfter.toISOString(), delaySeconds: this.#delay })],
      };
    });
  }

  /** destroy_scheduled → disabled. */
  async cancelKekDestroy(version: number, ctx: AuditContext): Promise<void> {
    await this.#transition(version, ctx, 'key.kek.destroy_cancelled', ['destroy_scheduled'], 'disabled');
  }

  /** Destroys the version's material (local: overwrite + delete the file). Refused before destroy_after. */
  async destroyKek(version: number, ctx: AuditContext): Promise<void> {
    assertVersion(version);
    await this.#kekOp('key.kek.destroyed', ctx, { kekVersion: version }, async (client, kekId) => {
      const { rows } = await client.query<{ state: KekVersionState; destroy_after: Date | null; due: boolean }>(
        `SELECT state, destroy_after, destroy_after <= now() AS due FROM kek_versions WHERE kek_id = $1 AND version = $2 FOR UPDATE`,
        [kekId, version],
      );
      const row = rows[0];
      if (!row) throw new NotFoundError(`KEK ${kekId} version`, String(version));
      if (row.state !== 'destroy_scheduled' || !row.destroy_after) throw new ConflictError(`KEK ${kekId} version`, String(version), `is ${row.state}; schedule its destruction first`);
      if (!row.due) throw new ConflictError(`KEK ${kekId} version`, String(version), `may not be destroyed before ${row.destroy_after.toISOString()}`);
      const still = await this.#countWrapped(client, { exactly: version });
      if (still > 0) throw new ConflictError(`KEK ${kekId} version`, String(version), `still wraps ${still} keys`);
      await this.#kek.backend.destroyVersion(version);
      await client.query(`UPDATE kek_versions SET state = 'destroyed', destroyed_at = now(), updated_at = now() WHERE kek_id = $1 AND version = $2`, [kekId, version]);
      return { result: undefined, events: [event(ctx, 'key.kek.destroyed', { kekId, kekVersion: version })] };
    });
  }

  // ---- tenant data keys ---------------------------------------------------------------------

  /** New primary DEK version for the tenant; the old primary becomes decrypt-only (dual read). */
  async rotateTenantKey(tenantId: string, ctx: AuditContext): Promise<{ keyVersion: number; previous: number | null }> {
    assertTenantId(tenantId);
    assertAudit(ctx);
    try {
      const out = await withTransaction(this.#pool, async (client) => {
        await this.#lockTenant(client, tenantId);
        const { rows } = await client.query<{ max: number | null; primary: number | null }>(
          `SELECT max(key_version) AS max, max(key_version) FILTER (WHERE status = 'primary') AS primary FROM data_keys WHERE tenant_id = $1`,
          [tenantId],
        );
        const previous = rows[0]?.primary ?? null;
        const keyVersion = (rows[0]?.max ?? 0) + 1;
        const raw = randomBytes(DEK_BYTES);
        let wrapped: WrappedKey;
        try {
          wrapped = await this.#kek.wrapWithPrimary(raw, (kv) => dataKeyWrapAad(tenantId, keyVersion, this.#kek.id, kv));
        } finally {
          raw.fill(0);
        }
        if (previous !== null) {
          await client.query(`UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = $1 AND key_version = $2`, [tenantId, previous]);
        }
        await client.query(
          `INSERT INTO data_keys (tenant_id, key_version, kek_id, kek_version, wrapped_key, status) VALUES ($1, $2, $3, $4, $5, 'primary')`,
          [tenantId, keyVersion, wrapped.kekId, wrapped.kekVersion, wrapped.wrapped],
        );
        await appendAuditEvents(client, [
          { ...event(ctx, 'key.dek.rotated', { keyVersion, previousKeyVersion: previous, kekId: wrapped.kekId, kekVersion: wrapped.kekVersion }), tenantId },
        ]);
        return { keyVersion, previous };
      });
      this.#forget?.tenant?.(tenantId);
      return out;
    } catch (err) {
      await this.#auditFailure('key.dek.rotated', ctx, {}, err, tenantId);
      throw err;
    }
  }

  /**
   * Crypto-shredding: every DEK version of the tenant, and its pseudonym key, loses its wrapped bytes
   * and becomes destroyed, audited in the same transaction. The tenant's records can never be decrypted again; other
   * tenants are untouched. Idempotent. Refused (and the refusal audited) while an incident's legal hold covers the tenant.
   */
  async destroyTenantKeys(tenantId: string, ctx: AuditContext): Promise<{ destroyed: number[] }> {
    assertTenantId(tenantId);
    assertAudit(ctx);
    try {
      const out = await withTransaction(this.#pool, async (client) => {
        await this.#lockTenant(client, tenantId);
        // Evidence first: an incident's legal hold keeps the tenant's records readable.
        await assertNoLegalHold(client, `crypto-shredding tenant ${tenantId}`, tenantId);
        const { rows } = await client.query<{ key_version: number }>(
          `UPDATE data_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now()
            WHERE tenant_id = $1 AND status <> 'destroyed' RETURNING key_version`,
          [tenantId],
        );
        const destroyed = rows.map((r) => r.key_version).sort((a, b) => a - b);
        // The pseudonym key goes too: the tenant's pseudonyms become unlinkable to patients.
        const purposes = await client.query<{ purpose: TenantKeyPurpose; version: number }>(
          `UPDATE tenant_purpose_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now()
            WHERE tenant_id = $1 AND status <> 'destroyed' RETURNING purpose, version`,
          [tenantId],
        );
        const events = [{ ...event(ctx, 'key.dek.destroyed', { keyVersions: destroyed, count: destroyed.length }), tenantId }];
        for (const p of purposes.rows) events.push({ ...event(ctx, 'key.pseudonym.destroyed', { purpose: p.purpose, version: p.version }), tenantId });
        await appendAuditEvents(client, events);
        return { destroyed };
      });
      this.#forget?.tenant?.(tenantId);
      return out;
    } catch (err) {
      await this.#auditFailure('key.dek.destroyed', ctx, {}, err, tenantId);
      throw err;
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  async #rewrapOne(w: WrappedKey, oldAad: Buffer, toVersion: number, newAad: Buffer): Promise<WrappedKey> {
    const backend = this.#kek.backend;
    if (backend.rewrap) {
      await this.#kek.assertReadable(w);
      return backend.rewrap(w, oldAad, toVersion, newAad);
    }
    const raw = await this.#kek.unwrap(w, oldAad);
    try {
      return await backend.wrapWith(toVersion, raw, newAad);
    } finally {
      raw.fill(0);
    }
  }

  /** One stage of rewrapDataKeys: up to `limit` keys of one kind moved to the primary version, each audited. */
  async #rewrapStage<R extends WrappedRow>(client: PoolClient, stage: RewrapStage<R>, primary: number, limit: number, ctx: AuditContext, events: AuditEvent[]): Promise<number> {
    if (limit <= 0) return 0;
    const kekId = this.#kek.id;
    const { rows } = await client.query<R>(stage.select, [kekId, primary, limit]);
    for (const r of rows) {
      const moved = await this.#rewrapOne({ kekId, kekVersion: r.kek_version, wrapped: r.wrapped_key }, stage.aad(r, kekId, r.kek_version), primary, stage.aad(r, kekId, primary));
      await client.query(stage.update, [...stage.keyOf(r), moved.kekVersion, moved.wrapped]);
      const { action, details, tenantId } = stage.audit(r, kekId, primary);
      events.push({ ...event(ctx, action, details), ...(tenantId !== undefined ? { tenantId } : {}) });
    }
    return rows.length;
  }

  async #countWrapped(q: Pick<PoolClient, 'query'>, where: { below?: number; exactly?: number; notVersion?: number }): Promise<number> {
    const [op, v] = where.below !== undefined ? ['<', where.below] : where.exactly !== undefined ? ['=', where.exactly] : ['<>', where.notVersion!];
    const { rows } = await q.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM data_keys WHERE kek_id = $1 AND kek_version ${op} $2 AND wrapped_key IS NOT NULL)
            + (SELECT count(*) FROM purpose_keys WHERE kek_id = $1 AND kek_version ${op} $2 AND wrapped_key IS NOT NULL)
            + (SELECT count(*) FROM tenant_purpose_keys WHERE kek_id = $1 AND kek_version ${op} $2 AND wrapped_key IS NOT NULL) AS n`,
      [this.#kek.id, v],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async #versionRow(client: PoolClient, kekId: string, version: number): Promise<{ state: KekVersionState }> {
    const { rows } = await client.query<{ state: KekVersionState }>(`SELECT state FROM kek_versions WHERE kek_id = $1 AND version = $2 FOR UPDATE`, [kekId, version]);
    if (!rows[0]) throw new NotFoundError(`KEK ${kekId} version`, String(version));
    return rows[0];
  }

  async #transition(version: number, ctx: AuditContext, action: string, from: KekVersionState[], to: KekVersionState): Promise<void> {
    assertVersion(version);
    await this.#kekOp(action, ctx, { kekVersion: version }, async (client, kekId, floor) => {
      const row = await this.#versionRow(client, kekId, version);
      if (!from.includes(row.state)) throw new ConflictError(`KEK ${kekId} version`, String(version), `is ${row.state}; expected ${from.join(' or ')}`);
      if (to === 'active' && version < floor) throw new ConflictError(`KEK ${kekId} version`, String(version), `is below the decryption floor ${floor}`);
      await client.query(`UPDATE kek_versions SET state = $3, destroy_after = NULL, updated_at = now() WHERE kek_id = $1 AND version = $2`, [kekId, version, to]);
      return { result: undefined, events: [event(ctx, action, { kekId, kekVersion: version, fromState: row.state, toState: to })] };
    });
  }

  /** Runs a KEK metadata change under the kek_keys row lock, with its audit events in the same transaction. */
  async #kekOp<T>(
    action: string,
    ctx: AuditContext,
    failureDetails: Record<string, unknown>,
    fn: (client: PoolClient, kekId: string, floor: number) => Promise<{ result: T; events: AuditEvent[] }>,
  ): Promise<T> {
    assertAudit(ctx);
    const kekId = this.#kek.id;
    try {
      const result = await withTransaction(this.#pool, async (client) => {
        const lock = await client.query<{ min_decryption_version: number }>('SELECT min_decryption_version FROM kek_keys WHERE kek_id = $1 FOR UPDATE', [kekId]);
        if (!lock.rows[0]) throw new NotFoundError('key-encryption key', kekId);
        const { result, events } = await fn(client, kekId, lock.rows[0].min_decryption_version);
        await appendAuditEvents(client, events);
        return result;
      });
      await this.#kek.refresh();
      this.#forget?.purposeKeys?.();
      return result;
    } catch (err) {
      await this.#auditFailure(action, ctx, { kekId, ...failureDetails }, err);
      throw err;
    }
  }

  async #lockTenant(client: PoolClient, tenantId: string): Promise<void> {
    const t = await client.query('SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]);
    if (t.rowCount === 0) throw new NotFoundError('tenant', tenantId);
  }

  /** Best effort: the original error is what the caller sees. */
  async #auditFailure(action: string, ctx: AuditContext, details: Record<string, unknown>, err: unknown, tenantId?: string): Promise<void> {
    if (!ctx?.actor || !ctx?.correlationId) return;
    const errorCode = err instanceof EhrError ? err.code : 'UNCLASSIFIED';
    await recordAuditEvent(this.#pool, { ...event(ctx, action, { ...details, errorCode }), outcome: 'failure', tenantId: tenantId ?? null }).catch(() => undefined);
  }
}

function event(ctx: AuditContext, action: string, details: Record<string, unknown>): AuditEvent {
  return { actor: ctx.actor, action, outcome: 'success', correlationId: ctx.correlationId, details };
}
