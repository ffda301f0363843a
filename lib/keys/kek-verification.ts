/**
 * After a KEK rewrap: unwrap a random sample of the tenant DEKs and pseudonym keys now wrapped under
 * the new version — fresh unwraps from the stored rows, not the keyring's cache — so a broken wrap is
 * found before the old version's floor is raised. Audited as `key.kek.verified`.
 */
import type { AuditContext } from '../audit/chain.js';
import { recordAuditEvent } from '../audit/chain.js';
import type { Pool } from '../store/pool.js';
import { sampleDataKeysWrappedUnder } from './data-key-repository.js';
import type { KeyHierarchy } from './key-hierarchy.js';
import { dataKeyWrapAad } from './keyring.js';
import { pseudonymKeyWrapAad } from './pseudonym-keys.js';
import { samplePseudonymKeysWrappedUnder } from './purpose-key-repository.js';

export async function verifyKekSample(
  deps: { pool: Pool; kek: KeyHierarchy },
  version: number,
  sampleSize: number,
  ctx: AuditContext,
): Promise<{ verified: number }> {
  const { pool, kek } = deps;
  const dataKeys = await sampleDataKeysWrappedUnder(pool, kek.id, version, sampleSize);
  for (const r of dataKeys) {
    const aad = dataKeyWrapAad(r.tenant_id, r.key_version, kek.id, version);
    (await kek.unwrap({ kekId: kek.id, kekVersion: version, wrapped: r.wrapped_key }, aad)).fill(0);
  }
  const pseudonymKeys = await samplePseudonymKeysWrappedUnder(pool, kek.id, version, sampleSize);
  for (const r of pseudonymKeys) {
    const aad = pseudonymKeyWrapAad(r.tenant_id, kek.id, version);
    (await kek.unwrap({ kekId: kek.id, kekVersion: version, wrapped: r.wrapped_key }, aad)).fill(0);
  }
  const sampled = dataKeys.length + pseudonymKeys.length;
  await recordAuditEvent(pool, {
    ...ctx,
    action: 'key.kek.verified',
    outcome: 'success',
    details: { kekId: kek.id, kekVersion: version, sampled, sampledPseudonymKeys: pseudonymKeys.length },
  });
  return { verified: sampled };
}
