/**
 * Rollback paths of the rotation workflow for key metadata that KeyAdmin, the tenant key operations
 * and the signing-key steps only move forward. Each is one transaction with its audit event and is
 * idempotent.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { lockTenant } from '../store/tenants.js';
import { readDataKeyStatuses, swapDataKeyPrimaryBack } from './data-key-repository.js';
import { lockKek, lockKekVersionStates, swapKekPrimaryBack } from './kek-repository.js';
import { listSigningKeys, lockKeyOwner, mirrorCurrentKey, setSigningKeyState } from './signing-key-repository.js';

/**
 * KEK rotation rollback: `previous` becomes the primary again and `rotated` active (decrypt-only), so
 * keys already rewrapped under `rotated` stay readable (dual read) while new wraps use `previous`.
 * Refused once the floor has risen above `previous`.
 */
export async function restorePreviousKekPrimary(
  pool: Pool,
  kekId: string,
  previous: number,
  rotated: number,
  ctx: AuditContext,
): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const floor = await lockKek(client, kekId);
    if (floor === undefined) throw new NotFoundError('key-encryption key', kekId);
    if (previous < floor)
      throw new ConflictError(`KEK ${kekId} version`, String(previous), `is below the decryption floor ${floor}`);
    const rows = await lockKekVersionStates(client, kekId, [previous, rotated]);
    const prev = rows.find((r) => r.version === previous);
    if (prev?.state === 'primary') return { changed: false };
    if (prev?.state !== 'active') {
      const state = prev?.state ?? 'unknown';
      throw new ConflictError(
        `KEK ${kekId} version`,
        String(previous),
        `is ${state}; only an active version can become primary again`,
      );
    }
    await swapKekPrimaryBack(client, kekId, previous, rotated);
    const details = { kekId, primaryKekVersion: previous, activeKekVersion: rotated };
    await appendAuditEvents(client, [{ ...ctx, action: 'key.kek.rotation_rolled_back', outcome: 'success', details }]);
    return { changed: true };
  });
}

/**
 * Tenant DEK rotation rollback: `previous` is the primary for writes again and `rotated` becomes
 * decrypt-only, so records already re-encrypted under it stay readable (dual read).
 */
export async function restoreTenantPrimaryKey(
  pool: Pool,
  tenantId: string,
  previous: number,
  rotated: number,
  ctx: AuditContext,
): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    await lockTenant(client, tenantId);
    const rows = await readDataKeyStatuses(client, tenantId, [previous, rotated]);
    const prev = rows.find((r) => r.key_version === previous);
    if (!prev || prev.status === 'destroyed') {
      throw new ConflictError('data key of tenant', tenantId, `version ${previous} cannot become primary again`);
    }
    if (prev.status === 'primary') return { changed: false };
    await swapDataKeyPrimaryBack(client, tenantId, previous, rotated);
    const details = { primaryKeyVersion: previous, decryptOnlyKeyVersion: rotated };
    await appendAuditEvents(client, [
      { ...ctx, action: 'key.dek.rotation_rolled_back', outcome: 'success', tenantId, details },
    ]);
    return { changed: true };
  });
}

/**
 * Signing-key rotation rollback: the key the rotation replaced (`previousKid`, still published as
 * `previous`) signs again. A new key that already signed becomes `previous` — still published, since
 * workers' cached rows may sign with it for a few more seconds; the workflow retires it after that
 * wait. A successor that never signed is retired at once.
 */
export async function restorePreviousSigningKey(
  pool: Pool,
  integrationId: string,
  previousKid: string,
  newKid: string,
  ctx: AuditContext,
): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const tenantId = (await lockKeyOwner(client, integrationId))?.tenantId;
    if (!tenantId) throw new NotFoundError('integration', integrationId);
    const keys = await listSigningKeys(client, integrationId);
    const previous = keys.find((k) => k.kid === previousKid);
    const rotated = keys.find((k) => k.kid === newKid);
    if (!previous || previous.state === 'retired') {
      throw new ConflictError('signing key', previousKid, 'is no longer published and cannot sign again');
    }
    if (previous.state === 'current' && (!rotated || rotated.state === 'retired')) return { changed: false };
    if (rotated && rotated.state !== 'retired') {
      await setSigningKeyState(client, integrationId, newKid, rotated.state === 'current' ? 'previous' : 'retired');
    }
    if (previous.state !== 'current') {
      await setSigningKeyState(client, integrationId, previousKid, 'current');
      await mirrorCurrentKey(client, previous);
    }
    const details = {
      kid: previousKid,
      replacedKid: newKid,
      replacedKidState: rotated?.state === 'current' ? 'previous' : 'retired',
    };
    await appendAuditEvents(client, [
      { ...ctx, action: 'signing_key.rotation_rolled_back', outcome: 'success', tenantId, integrationId, details },
    ]);
    return { changed: true };
  });
}
