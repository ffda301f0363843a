/**
 * Rollback paths of the rotation workflow for key metadata that KeyAdmin and the signing-key steps
 * only move forward. Each is one transaction with its audit event and is idempotent.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { listSigningKeys, mirrorCurrentKey, setSigningKeyState } from './signing-key-repository.js';

/**
 * KEK rotation rollback: `previous` becomes the primary again and `rotated` active (decrypt-only), so
 * keys already rewrapped under `rotated` stay readable (dual read) while new wraps use `previous`.
 * Refused once the floor has risen above `previous`.
 */
export async function restorePreviousKekPrimary(pool: Pool, kekId: string, previous: number, rotated: number, ctx: AuditContext): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const lock = await client.query<{ min_decryption_version: number }>('SELECT min_decryption_version FROM kek_keys WHERE kek_id = $1 FOR UPDATE', [kekId]);
    const floor = lock.rows[0]?.min_decryption_version;
    if (floor === undefined) throw new NotFoundError('key-encryption key', kekId);
    if (previous < floor) throw new ConflictError(`KEK ${kekId} version`, String(previous), `is below the decryption floor ${floor}`);
    const { rows } = await client.query<{ version: number; state: string }>('SELECT version, state FROM kek_versions WHERE kek_id = $1 AND version IN ($2, $3) FOR UPDATE', [
      kekId,
      previous,
      rotated,
    ]);
    const prev = rows.find((r) => r.version === previous);
    if (prev?.state === 'primary') return { changed: false };
    if (prev?.state !== 'active') throw new ConflictError(`KEK ${kekId} version`, String(previous), `is ${prev?.state ?? 'unknown'}; only an active version can become primary again`);
    await client.query(`UPDATE kek_versions SET state = 'active', updated_at = now() WHERE kek_id = $1 AND version = $2 AND state = 'primary'`, [kekId, rotated]);
    await client.query(`UPDATE kek_versions SET state = 'primary', updated_at = now() WHERE kek_id = $1 AND version = $2`, [kekId, previous]);
    await appendAuditEvents(client, [
      { ...ctx, action: 'key.kek.rotation_rolled_back', outcome: 'success', details: { kekId, primaryKekVersion: previous, activeKekVersion: rotated } },
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
export async function restorePreviousSigningKey(pool: Pool, integrationId: string, previousKid: string, newKid: string, ctx: AuditContext): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const row = await client.query<{ tenant_id: string }>('SELECT tenant_id FROM integrations WHERE id = $1 FOR UPDATE', [integrationId]);
    const tenantId = row.rows[0]?.tenant_id;
    if (!tenantId) throw new NotFoundError('integration', integrationId);
    const keys = await listSigningKeys(client, integrationId);
    const previous = keys.find((k) => k.kid === previousKid);
    const rotated = keys.find((k) => k.kid === newKid);
    if (!previous || previous.state === 'retired') throw new ConflictError('signing key', previousKid, 'is no longer published and cannot sign again');
    if (previous.state === 'current' && (!rotated || rotated.state === 'retired')) return { changed: false };
    if (rotated && rotated.state !== 'retired') await setSigningKeyState(client, integrationId, newKid, rotated.state === 'current' ? 'previous' : 'retired');
    if (previous.state !== 'current') {
      await setSigningKeyState(client, integrationId, previousKid, 'current');
      await mirrorCurrentKey(client, previous);
    }
    await appendAuditEvents(client, [
      { ...ctx, action: 'signing_key.rotation_rolled_back', outcome: 'success', tenantId, integrationId, details: { kid: previousKid, replacedKid: newKid, replacedKidState: rotated?.state === 'current' ? 'previous' : 'retired' } },
    ]);
    return { changed: true };
  });
}
