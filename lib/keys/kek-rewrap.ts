/**
 * A KEK rewrap batch (KeyAdmin.rewrapDataKeys): up to `batchSize` keys wrapped under a non-primary
 * version of the KEK — tenant DEKs, then purpose keys, then per-tenant purpose keys, then export job keys
 * (lib/keys/rewrap-stages.ts) — moved to the primary version in one transaction, each audited. Rows are
 * locked SKIP LOCKED, so concurrent rewraps share the work. Plaintext keys exist only inside this
 * process during the rewrap (or not at all when the backend can re-encrypt, e.g. KMS ReEncrypt) and
 * are zeroed after use.
 */
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { InvalidArgumentError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { adminEvent as event, assertAudit, auditAdminFailure } from './admin-audit.js';
import type { WrappedKey } from './kek-provider.js';
import { countWrappedKeys } from './kek-repository.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import { lockStaleWrappedKeys, storeRewrappedKey } from './rewrap-repository.js';
import { dataKeyStage, exportJobKeyStage, purposeKeyStage, tenantPurposeKeyStage } from './rewrap-stages.js';
import type { RewrapStage, WrappedRow } from './rewrap-stages.js';

export interface RewrapResult {
  /** Tenant DEKs moved to the primary KEK version in this call. */
  dataKeys: number;
  /** Payload and audit-signing keys moved in this call. */
  purposeKeys: number;
  /** Per-tenant purpose keys (pseudonym keys, `tenant_purpose_keys`) moved in this call. */
  tenantPurposeKeys: number;
  /** Export job keys (`export_jobs`, not yet destroyed) moved in this call. */
  exportJobKeys: number;
  /** Keys still wrapped under a non-primary version of this KEK. */
  remaining: number;
}

export async function rewrapBatch(
  deps: { pool: Pool; kek: KeyHierarchy },
  batchSize: number,
  ctx: AuditContext,
): Promise<RewrapResult> {
  const { pool, kek } = deps;
  assertAudit(ctx);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new InvalidArgumentError('batchSize', 'must be an integer in 1..10000');
  }
  await kek.refresh();
  const kekId = kek.id;
  try {
    const moved = await withTransaction(pool, async (client) => {
      const primary = kek.primaryVersion();
      const events: AuditEvent[] = [];
      const stage = <R extends WrappedRow>(s: RewrapStage<R>, limit: number) =>
        rewrapStage(kek, client, s, primary, limit, ctx, events);
      const dataKeys = await stage(dataKeyStage, batchSize);
      const purposeKeys = await stage(purposeKeyStage, batchSize - dataKeys);
      const tenantPurposeKeys = await stage(tenantPurposeKeyStage, batchSize - dataKeys - purposeKeys);
      const exportJobKeys = await stage(exportJobKeyStage, batchSize - dataKeys - purposeKeys - tenantPurposeKeys);
      if (events.length > 0) await appendAuditEvents(client, events);
      return { dataKeys, purposeKeys, tenantPurposeKeys, exportJobKeys };
    });
    const remaining = await countWrappedKeys(pool, kekId, { notVersion: kek.primaryVersion() });
    return { ...moved, remaining };
  } catch (err) {
    await auditAdminFailure(pool, 'key.dek.rewrapped', ctx, { kekId }, err);
    throw err;
  }
}

async function rewrapOne(
  kek: KeyHierarchy,
  w: WrappedKey,
  oldAad: Buffer,
  toVersion: number,
  newAad: Buffer,
): Promise<WrappedKey> {
  const backend = kek.backend;
  if (backend.rewrap) {
    await kek.assertReadable(w);
    return backend.rewrap(w, oldAad, toVersion, newAad);
  }
  const raw = await kek.unwrap(w, oldAad);
  try {
    return await backend.wrapWith(toVersion, raw, newAad);
  } finally {
    raw.fill(0);
  }
}

/** One stage of a batch: up to `limit` keys of one kind moved to the primary version, each audited. */
async function rewrapStage<R extends WrappedRow>(
  kek: KeyHierarchy,
  client: PoolClient,
  stage: RewrapStage<R>,
  primary: number,
  limit: number,
  ctx: AuditContext,
  events: AuditEvent[],
): Promise<number> {
  if (limit <= 0) return 0;
  const kekId = kek.id;
  const rows = await lockStaleWrappedKeys<R>(client, stage.table, kekId, primary, limit);
  for (const r of rows) {
    const wrapped = { kekId, kekVersion: r.kek_version, wrapped: r.wrapped_key };
    const moved = await rewrapOne(
      kek,
      wrapped,
      stage.aad(r, kekId, r.kek_version),
      primary,
      stage.aad(r, kekId, primary),
    );
    await storeRewrappedKey(client, stage.table, stage.keyOf(r), moved.kekVersion, moved.wrapped);
    const { action, details, tenantId } = stage.audit(r, kekId, primary);
    events.push({ ...event(ctx, action, details), ...(tenantId !== undefined ? { tenantId } : {}) });
  }
  return rows.length;
}
