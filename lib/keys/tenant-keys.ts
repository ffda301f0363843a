/**
 * A tenant's data keys over their life: a new primary version (rotation), one superseded version
 * destroyed once nothing needs it, a sweep of unused decrypt-only versions, and crypto-shredding of
 * every version. Each is one transaction under the tenant row's lock with its audit events; a refused
 * operation leaves a failure event (best effort) and throws. The caller drops its cached keys after.
 */
import { randomBytes } from 'node:crypto';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import { assertNoLegalHold } from '../incidents/holds.js';
import { activeIntegrationIds } from '../integrations/repository.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { lockTenant } from '../store/tenants.js';
import { adminEvent, assertAudit, assertTenantId, auditAdminFailure } from './admin-audit.js';
import {
  dataKeyVersionSummary,
  demoteDataKey,
  destroyAllDataKeys,
  destroyDataKeyVersions,
  insertPrimaryDataKey,
  lockDataKeyStatus,
  lockUnusedDecryptOnlyVersions,
} from './data-key-repository.js';
import type { WrappedKey } from './kek-provider.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import { dataKeyWrapAad } from './keyring.js';
import { destroyTenantPurposeKeys, pseudonymKeyStored } from './purpose-key-repository.js';
import { recordGroupsUnderKeyVersion, versionsHeldByQueuedWrites } from './record-key-repository.js';

const DEK_BYTES = 32;

/** New primary DEK version for the tenant; the old primary becomes decrypt-only (dual read). */
export async function rotateTenantDataKey(
  deps: { pool: Pool; kek: KeyHierarchy },
  tenantId: string,
  ctx: AuditContext,
): Promise<{ keyVersion: number; previous: number | null }> {
  assertTenantId(tenantId);
  assertAudit(ctx);
  const { pool, kek } = deps;
  try {
    return await withTransaction(pool, async (client) => {
      await lockTenant(client, tenantId);
      const summary = await dataKeyVersionSummary(client, tenantId);
      const previous = summary?.primary ?? null;
      const keyVersion = (summary?.max ?? 0) + 1;
      const raw = randomBytes(DEK_BYTES);
      let wrapped: WrappedKey;
      try {
        wrapped = await kek.wrapWithPrimary(raw, (kv) => dataKeyWrapAad(tenantId, keyVersion, kek.id, kv));
      } finally {
        raw.fill(0);
      }
      if (previous !== null) await demoteDataKey(client, tenantId, previous);
      await insertPrimaryDataKey(client, tenantId, keyVersion, wrapped);
      const details = {
        keyVersion,
        previousKeyVersion: previous,
        kekId: wrapped.kekId,
        kekVersion: wrapped.kekVersion,
      };
      await appendAuditEvents(client, [{ ...adminEvent(ctx, 'key.dek.rotated', details), tenantId }]);
      return { keyVersion, previous };
    });
  } catch (err) {
    await auditAdminFailure(pool, 'key.dek.rotated', ctx, {}, err, tenantId);
    throw err;
  }
}

/**
 * Crypto-shredding: every DEK version of the tenant, and its pseudonym key, loses its wrapped bytes
 * and becomes destroyed, audited in the same transaction. The tenant's records can never be decrypted
 * again; other tenants are untouched. Idempotent. Refused (and the refusal audited) while an
 * incident's legal hold covers the tenant.
 */
export interface ShredOptions {
  /**
   * Refuse while any integration of the tenant is active: a sync would otherwise store new records under
   * a fresh data key right after the shredding (what `ehrctl tenants shred` asks for).
   */
  requireRevoked?: boolean;
  /** Why (recorded in the audit event; no PHI). */
  reason?: string;
}

export async function shredTenantKeys(
  pool: Pool,
  tenantId: string,
  ctx: AuditContext,
  opts: ShredOptions = {},
): Promise<{ destroyed: number[] }> {
  assertTenantId(tenantId);
  assertAudit(ctx);
  try {
    return await withTransaction(pool, async (client) => {
      await lockTenant(client, tenantId);
      // Evidence first: an incident's legal hold keeps the tenant's records readable.
      await assertNoLegalHold(client, `crypto-shredding tenant ${tenantId}`, tenantId);
      if (opts.requireRevoked) {
        const active = await activeIntegrationIds(client, { tenantId });
        if (active.length > 0) {
          const which = active.join(', ');
          throw new ConflictError('tenant', tenantId, `has active integrations (${which}): revoke it first`);
        }
      }
      const destroyed = (await destroyAllDataKeys(client, tenantId)).sort((a, b) => a - b);
      // The pseudonym key goes too: the tenant's pseudonyms become unlinkable to patients.
      const purposes = await destroyTenantPurposeKeys(client, tenantId);
      const events = [
        {
          ...adminEvent(ctx, 'key.dek.destroyed', {
            keyVersions: destroyed,
            count: destroyed.length,
            ...(opts.reason ? { reason: opts.reason } : {}),
          }),
          tenantId,
        },
      ];
      for (const p of purposes)
        events.push({
          ...adminEvent(ctx, 'key.pseudonym.destroyed', { purpose: p.purpose, version: p.version }),
          tenantId,
        });
      await appendAuditEvents(client, events);
      return { destroyed };
    });
  } catch (err) {
    await auditAdminFailure(pool, 'key.dek.destroyed', ctx, {}, err, tenantId);
    throw err;
  }
}

/**
 * DEK v1 is the source of the tenant's pseudonym key: it may go only once that key is stored
 * (TenantKeyring.ensurePseudonymKey), or every pseudonym would become unreproducible.
 */
async function assertPseudonymKeyStored(client: PoolClient, tenantId: string): Promise<void> {
  if (!(await pseudonymKeyStored(client, tenantId))) {
    throw new ConflictError(
      'data key of tenant',
      tenantId,
      'version 1 derives the pseudonym key, which is not stored yet',
    );
  }
}

/**
 * Refuses (ConflictError) while any record's ciphertext header names `keyVersion`, saying how many
 * and where (integration and resource type; resource ids can point at a patient, so none).
 */
async function assertNoRecordNeeds(client: PoolClient, tenantId: string, keyVersion: number): Promise<void> {
  const rows = await recordGroupsUnderKeyVersion(client, tenantId, keyVersion);
  if (rows.length === 0) return;
  const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
  const where = rows.slice(0, 5).map((r) => `${r.n} ${r.resource_type} of integration ${r.integration_id}`);
  if (rows.length > 5) where.push(`${rows.length - 5} more groups`);
  throw new ConflictError(
    'data key of tenant',
    tenantId,
    `version ${keyVersion} cannot be destroyed: the ciphertext headers of ${total} records still name it ` +
      `(${where.join(', ')}); re-encrypt them first`,
  );
}

/**
 * Destroys one superseded DEK version once no record's ciphertext header names it (checked in the same
 * transaction, under the key row's lock); version 1 only once the pseudonym key is stored. A version
 * that vendor writes queued during an incident still need is kept (re-encryption does not move them;
 * decrypt-only, a later rotation's sweep destroys it). Idempotent. A refusal is audited (best effort)
 * and thrown.
 */
export async function destroyTenantKeyVersion(
  pool: Pool,
  tenantId: string,
  keyVersion: number,
  ctx: AuditContext,
): Promise<{ changed: boolean; keptFor?: string }> {
  try {
    return await withTransaction(pool, async (client) => {
      await lockTenant(client, tenantId);
      if (keyVersion === 1) await assertPseudonymKeyStored(client, tenantId);
      const status = await lockDataKeyStatus(client, tenantId, keyVersion);
      if (!status) throw new NotFoundError(`data key of tenant ${tenantId}`, String(keyVersion));
      if (status === 'destroyed') return { changed: false };
      if (status === 'primary')
        throw new ConflictError('data key of tenant', tenantId, `version ${keyVersion} is the primary`);
      await assertNoRecordNeeds(client, tenantId, keyVersion);
      if ((await versionsHeldByQueuedWrites(client, tenantId)).has(keyVersion))
        return { changed: false, keptFor: 'queued vendor writes' };
      await destroyDataKeyVersions(client, tenantId, [keyVersion]);
      const details = { keyVersions: [keyVersion], count: 1 };
      await appendAuditEvents(client, [{ ...ctx, action: 'key.dek.destroyed', outcome: 'success', tenantId, details }]);
      return { changed: true };
    });
  } catch (err) {
    await auditAdminFailure(pool, 'key.dek.destroyed', ctx, { keyVersions: [keyVersion] }, err, tenantId);
    throw err;
  }
}

/**
 * Destroys every other superseded (decrypt-only) DEK version of the tenant that no record's ciphertext
 * header names: DEK v1 that rotations before the pseudonym key existed kept, and versions left
 * decrypt-only by a rolled-back rotation. Versions still holding records or queued vendor writes are
 * left alone. Returns the versions destroyed.
 */
export async function destroyUnusedKeyVersions(
  pool: Pool,
  tenantId: string,
  ctx: AuditContext,
): Promise<{ destroyed: number[] }> {
  return withTransaction(pool, async (client) => {
    await lockTenant(client, tenantId);
    const unused = await lockUnusedDecryptOnlyVersions(client, tenantId);
    const held = await versionsHeldByQueuedWrites(client, tenantId);
    const versions = unused.filter((v) => !held.has(v));
    if (versions.length === 0) return { destroyed: [] };
    if (versions.includes(1)) await assertPseudonymKeyStored(client, tenantId);
    await destroyDataKeyVersions(client, tenantId, versions);
    const details = { keyVersions: versions, count: versions.length };
    await appendAuditEvents(client, [{ ...ctx, action: 'key.dek.destroyed', outcome: 'success', tenantId, details }]);
    return { destroyed: versions };
  });
}
