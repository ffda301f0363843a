/**
 * The tenant's pseudonym key (purpose 'pseudonym' in `tenant_purpose_keys`): the HMAC key of patient
 * pseudonyms. Its material is HKDF-SHA256(DEK v1, 'ehr-connectors/pseudonym/v1') — exactly what the
 * keyring derived on every use before the key was stored — so pseudonyms never change; it is stored
 * wrapped by the KEK once, the first time it is needed, so DEK v1 can later be destroyed like any
 * superseded DEK (docs/decisions.md "Pseudonym purpose key").
 *
 * The wrap AAD names the purpose family ('ehr-connectors/tenant-purpose-key/v1') as well as tenant,
 * key purpose and version, while a DEK's AAD names 'ehr-connectors/dek/v1': one can never be unwrapped
 * as the other, even when its bytes are copied into the other table.
 */
import { hkdfSync } from 'node:crypto';
import canonicalize from 'canonicalize';
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { ConflictError } from '../errors/index.js';
import { withTransaction } from '../store/pool.js';
import type { Pool, Queryable } from '../store/pool.js';
import type { KekProvider, WrappedKey } from './kek-provider.js';
import { insertPseudonymKey, readPseudonymKeyRow as readRow } from './purpose-key-repository.js';
import type { PseudonymKeyRow } from './purpose-key-repository.js';
import type { TenantKeyPurpose } from './purpose-keys.js';

export type { PseudonymKeyRow, TenantKeyPurpose };

/** The info string the pseudonym key has always been derived with (changing it changes every pseudonym). */
export const PSEUDONYM_INFO = 'ehr-connectors/pseudonym/v1';
export const PSEUDONYM_KEY_VERSION = 1;

/** The AAD a per-tenant purpose key is wrapped under: tenant, purpose, version and the wrapping KEK id/version. */
export function tenantPurposeKeyWrapAad(
  tenantId: string,
  keyPurpose: TenantKeyPurpose,
  version: number,
  kekId: string,
  kekVersion: number,
): Buffer {
  return Buffer.from(
    canonicalize({
      purpose: 'ehr-connectors/tenant-purpose-key/v1',
      keyPurpose,
      tenantId,
      version,
      kekId,
      kekVersion,
    })!,
    'utf8',
  );
}

export function pseudonymKeyWrapAad(tenantId: string, kekId: string, kekVersion: number): Buffer {
  return tenantPurposeKeyWrapAad(tenantId, 'pseudonym', PSEUDONYM_KEY_VERSION, kekId, kekVersion);
}

/** HKDF-SHA256(DEK v1, info PSEUDONYM_INFO), 32 bytes. */
export function derivePseudonymKey(dekV1: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dekV1, Buffer.alloc(0), PSEUDONYM_INFO, 32));
}

export async function readPseudonymKeyRow(db: Queryable, tenantId: string): Promise<PseudonymKeyRow | undefined> {
  return readRow(db, tenantId, PSEUDONYM_KEY_VERSION);
}

/**
 * Wraps `material` under the KEK's primary and inserts it (ON CONFLICT DO NOTHING), audited as
 * key.pseudonym.created in the same transaction. Returns false when another process stored it first:
 * the caller then reads the stored row (same material, by derivation) instead of using its own.
 */
export async function storePseudonymKey(
  pool: Pool,
  kek: KekProvider,
  tenantId: string,
  material: Buffer,
  audit: AuditContext,
): Promise<boolean> {
  const kekId = kek.id;
  const kekVersion = kek.primaryVersion();
  const wrapped: WrappedKey = await kek.wrap(material, pseudonymKeyWrapAad(tenantId, kekId, kekVersion));
  if (wrapped.kekId !== kekId || wrapped.kekVersion !== kekVersion) {
    throw new ConflictError('key-encryption key', kekId, 'changed its primary version during a wrap; retry');
  }
  return withTransaction(pool, async (client) => {
    if (!(await insertPseudonymKey(client, tenantId, PSEUDONYM_KEY_VERSION, wrapped))) return false;
    await appendAuditEvents(client, [
      {
        actor: audit.actor,
        action: 'key.pseudonym.created',
        outcome: 'success',
        tenantId,
        correlationId: audit.correlationId,
        details: {
          purpose: 'pseudonym',
          version: PSEUDONYM_KEY_VERSION,
          derivation: 'hkdf-dek-v1',
          kekId: wrapped.kekId,
          kekVersion: wrapped.kekVersion,
        },
      },
    ]);
    return true;
  });
}
