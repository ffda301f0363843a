/**
 * Key administration as a library (DESIGN §4 invariant 4): KEK rotation, rewrap, decryption floor,
 * gated and delayed destruction, and — through lib/keys/tenant-keys.ts — tenant DEK rotation and
 * crypto-shredding. Every operation writes its audit event (actor, correlation id) in the same
 * transaction as the metadata change; a refused operation leaves a failure event (best effort) and
 * throws. The statements are in lib/keys/kek-repository.ts; the rewrap is lib/keys/kek-rewrap.ts.
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
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { adminEvent as event, assertAudit, assertKekVersion, auditAdminFailure } from './admin-audit.js';
import {
  countWrappedKeys,
  demoteKekVersion,
  insertKekVersion,
  kekVersionSummary,
  lockKek,
  lockKekVersion,
  lockKekVersionForDestroy,
  markKekVersionDestroyed,
  primaryKekVersion,
  scheduleKekVersionDestroy,
  setKekFloor,
  setKekVersionState,
} from './kek-repository.js';
import type { KekVersionState } from './kek-repository.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import { rewrapBatch } from './kek-rewrap.js';
import type { RewrapResult } from './kek-rewrap.js';
import { rotateTenantDataKey, shredTenantKeys } from './tenant-keys.js';

export interface KeyAdminOptions {
  pool: Pool;
  kek: KeyHierarchy;
  /** Waiting period between scheduleKekDestroy and destroyKek (config EHR_KEY_DESTROY_DELAY_SECONDS). */
  destroyDelaySeconds: number;
  /** Caches to drop after a change commits (this process only; other processes expire by TTL). */
  forget?: { tenant?(tenantId: string): void; purposeKeys?(): void };
}

export type { RewrapResult };

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
    if (!Number.isInteger(this.#delay) || this.#delay < 0)
      throw new InvalidArgumentError('destroyDelaySeconds', 'must be a non-negative integer');
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
  async rotateKek(
    ctx: AuditContext,
    opts: { providerRef?: string } = {},
  ): Promise<{ version: number; previous: number }> {
    return this.#kekOp('key.kek.rotated', ctx, {}, async (client, kekId) => {
      const summary = await kekVersionSummary(client, kekId);
      const previous = summary?.primary ?? null;
      if (previous === null) throw new ConflictError('key-encryption key', kekId, 'has no primary version');
      const version = (summary?.max ?? 0) + 1;
      const { ref } = await this.#kek.backend.createVersion(version, opts.providerRef);
      await demoteKekVersion(client, kekId, previous);
      await insertKekVersion(client, kekId, version, 'primary', ref);
      const details = { kekId, kekVersion: version, previousKekVersion: previous };
      const created = event(ctx, 'key.kek.created', { kekId, kekVersion: version, state: 'primary' });
      return { result: { version, previous }, events: [created, event(ctx, 'key.kek.rotated', details)] };
    });
  }

  /**
   * Rewraps up to `batchSize` keys (tenant DEKs, then purpose keys, then tenant purpose keys) that are
   * wrapped under a non-primary version of this KEK (lib/keys/kek-rewrap.ts).
   */
  async rewrapDataKeys(batchSize: number, ctx: AuditContext): Promise<RewrapResult> {
    return rewrapBatch({ pool: this.#pool, kek: this.#kek }, batchSize, ctx);
  }

  /** Raises the decryption floor: versions below it are refused. Refused while any key is still wrapped below it. */
  async raiseKekFloor(version: number, ctx: AuditContext): Promise<void> {
    assertKekVersion(version);
    await this.#kekOp('key.kek.floor_raised', ctx, { kekVersion: version }, async (client, kekId, floor) => {
      const refuse = (why: string) => new ConflictError('decryption floor of KEK', kekId, why);
      if (version < floor) throw refuse(`is ${floor}; it can only be raised`);
      if (version > ((await primaryKekVersion(client, kekId)) ?? 0))
        throw refuse('cannot rise above the primary version');
      const below = await countWrappedKeys(client, kekId, { below: version });
      if (below > 0)
        throw refuse(`cannot rise to ${version}: ${below} keys are still wrapped below it (run rewrapDataKeys)`);
      await setKekFloor(client, kekId, version);
      return {
        result: undefined,
        events: [event(ctx, 'key.kek.floor_raised', { kekId, fromVersion: floor, toVersion: version })],
      };
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
    assertKekVersion(version);
    return this.#kekOp('key.kek.destroy_scheduled', ctx, { kekVersion: version }, async (client, kekId, floor) => {
      const refuse = (why: string) => new ConflictError(`KEK ${kekId} version`, String(version), why);
      const state = await this.#versionState(client, kekId, version);
      if (state !== 'active' && state !== 'disabled')
        throw refuse(`is ${state}; only active or disabled versions can be scheduled`);
      if (version >= floor) throw refuse(`is not below the decryption floor ${floor}; raise the floor first`);
      const destroyAfter = await scheduleKekVersionDestroy(client, kekId, version, this.#delay);
      const details = {
        kekId,
        kekVersion: version,
        destroyAfter: destroyAfter.toISOString(),
        delaySeconds: this.#delay,
      };
      return { result: { destroyAfter }, events: [event(ctx, 'key.kek.destroy_scheduled', details)] };
    });
  }

  /** destroy_scheduled → disabled. */
  async cancelKekDestroy(version: number, ctx: AuditContext): Promise<void> {
    await this.#transition(version, ctx, 'key.kek.destroy_cancelled', ['destroy_scheduled'], 'disabled');
  }

  /** Destroys the version's material (local: overwrite + delete the file). Refused before destroy_after. */
  async destroyKek(version: number, ctx: AuditContext): Promise<void> {
    assertKekVersion(version);
    await this.#kekOp('key.kek.destroyed', ctx, { kekVersion: version }, async (client, kekId) => {
      const refuse = (why: string) => new ConflictError(`KEK ${kekId} version`, String(version), why);
      const row = await lockKekVersionForDestroy(client, kekId, version);
      if (!row) throw new NotFoundError(`KEK ${kekId} version`, String(version));
      if (row.state !== 'destroy_scheduled' || !row.destroy_after)
        throw refuse(`is ${row.state}; schedule its destruction first`);
      if (!row.due) throw refuse(`may not be destroyed before ${row.destroy_after.toISOString()}`);
      const still = await countWrappedKeys(client, kekId, { exactly: version });
      if (still > 0) throw refuse(`still wraps ${still} keys`);
      await this.#kek.backend.destroyVersion(version);
      await markKekVersionDestroyed(client, kekId, version);
      return { result: undefined, events: [event(ctx, 'key.kek.destroyed', { kekId, kekVersion: version })] };
    });
  }

  // ---- tenant data keys (lib/keys/tenant-keys.ts) -------------------------------------------

  /** New primary DEK version for the tenant; the old primary becomes decrypt-only (dual read). */
  async rotateTenantKey(tenantId: string, ctx: AuditContext): Promise<{ keyVersion: number; previous: number | null }> {
    const out = await rotateTenantDataKey({ pool: this.#pool, kek: this.#kek }, tenantId, ctx);
    this.#forget?.tenant?.(tenantId);
    return out;
  }

  /**
   * Crypto-shredding: every DEK version of the tenant, and its pseudonym key, is destroyed (audited in
   * the same transaction); refused while an incident's legal hold covers the tenant.
   */
  async destroyTenantKeys(tenantId: string, ctx: AuditContext): Promise<{ destroyed: number[] }> {
    const out = await shredTenantKeys(this.#pool, tenantId, ctx);
    this.#forget?.tenant?.(tenantId);
    return out;
  }

  // ---- internals ----------------------------------------------------------------------------

  async #versionState(client: PoolClient, kekId: string, version: number): Promise<KekVersionState> {
    const state = await lockKekVersion(client, kekId, version);
    if (!state) throw new NotFoundError(`KEK ${kekId} version`, String(version));
    return state;
  }

  async #transition(
    version: number,
    ctx: AuditContext,
    action: string,
    from: KekVersionState[],
    to: KekVersionState,
  ): Promise<void> {
    assertKekVersion(version);
    await this.#kekOp(action, ctx, { kekVersion: version }, async (client, kekId, floor) => {
      const refuse = (why: string) => new ConflictError(`KEK ${kekId} version`, String(version), why);
      const state = await this.#versionState(client, kekId, version);
      if (!from.includes(state)) throw refuse(`is ${state}; expected ${from.join(' or ')}`);
      if (to === 'active' && version < floor) throw refuse(`is below the decryption floor ${floor}`);
      await setKekVersionState(client, kekId, version, to);
      return {
        result: undefined,
        events: [event(ctx, action, { kekId, kekVersion: version, fromState: state, toState: to })],
      };
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
        const floor = await lockKek(client, kekId);
        if (floor === undefined) throw new NotFoundError('key-encryption key', kekId);
        const { result, events } = await fn(client, kekId, floor);
        await appendAuditEvents(client, events);
        return result;
      });
      await this.#kek.refresh();
      this.#forget?.purposeKeys?.();
      return result;
    } catch (err) {
      await auditAdminFailure(this.#pool, action, ctx, { kekId, ...failureDetails }, err);
      throw err;
    }
  }
}
