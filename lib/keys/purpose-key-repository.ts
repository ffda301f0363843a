/**
 * Keys by purpose, stored only wrapped by the KEK: `purpose_keys` (the Temporal payload keys and the
 * audit-signing keys, one row per purpose and version) and `tenant_purpose_keys` (per-tenant keys:
 * the pseudonym key). Every statement the purpose-key store, the keyring, key administration and DEK
 * retirement run on them.
 */
import type { JWK } from 'jose';
import type { PoolClient, Queryable } from '../store/pool.js';
import type { WrappedKey } from './kek-provider.js';
import type { KeyPurpose, TenantKeyPurpose } from './purpose-keys.js';

export interface PurposeKeyRow {
  version: number;
  key_id: string;
  kek_id: string;
  kek_version: number;
  wrapped_key: Buffer | null;
  public_jwk: JWK | null;
  status: 'primary' | 'decrypt_only' | 'destroyed';
}

// ---- purpose_keys ---------------------------------------------------------------------------------

export async function readPurposeKey(
  db: Queryable,
  purpose: KeyPurpose,
  version: number,
): Promise<PurposeKeyRow | undefined> {
  const { rows } = await db.query<PurposeKeyRow>(
    `SELECT version, key_id, kek_id, kek_version, wrapped_key, public_jwk, status FROM purpose_keys
        WHERE purpose = $1 AND version = $2`,
    [purpose, version],
  );
  return rows[0];
}

export async function primaryPurposeKeyVersion(db: Queryable, purpose: KeyPurpose): Promise<number | undefined> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM purpose_keys WHERE purpose = $1 AND status = 'primary'`,
    [purpose],
  );
  return rows[0]?.version;
}

export async function purposeKeyId(db: Queryable, purpose: KeyPurpose, version: number): Promise<string | undefined> {
  const { rows } = await db.query<{ key_id: string }>(
    'SELECT key_id FROM purpose_keys WHERE purpose = $1 AND version = $2',
    [purpose, version],
  );
  return rows[0]?.key_id;
}

/** Every audit-signing public key, oldest first (retired ones too: old checkpoints stay verifiable). */
export async function auditSigningPublicKeys(db: Queryable): Promise<Array<{ kid: string; publicJwk: JWK }>> {
  const { rows } = await db.query<{ key_id: string; public_jwk: JWK }>(
    `SELECT key_id, public_jwk FROM purpose_keys WHERE purpose = 'audit-signing' ORDER BY version`,
  );
  return rows.map((r) => ({ kid: r.key_id, publicJwk: r.public_jwk }));
}

/** Serialises key creation per purpose across processes (transaction-scoped advisory lock). */
export async function lockPurpose(client: PoolClient, purpose: KeyPurpose): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`purpose_keys:${purpose}`]);
}

export async function maxPurposeKeyVersion(client: PoolClient, purpose: KeyPurpose): Promise<number | null> {
  const max = await client.query<{ max: number | null }>(
    'SELECT max(version) AS max FROM purpose_keys WHERE purpose = $1',
    [purpose],
  );
  return max.rows[0]?.max ?? null;
}

/** The old primary after a rotation: decrypt-only (payload keys) or verification-only (signing keys). */
export async function demotePurposeKey(client: PoolClient, purpose: KeyPurpose, version: number): Promise<void> {
  await client.query(`UPDATE purpose_keys SET status = 'decrypt_only' WHERE purpose = $1 AND version = $2`, [
    purpose,
    version,
  ]);
}

export async function insertPrimaryPurposeKey(
  client: PoolClient,
  key: { purpose: KeyPurpose; version: number; keyId: string; wrapped: WrappedKey; publicJwk: JWK | null },
): Promise<void> {
  await client.query(
    `INSERT INTO purpose_keys (purpose, version, key_id, kek_id, kek_version, wrapped_key, public_jwk, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'primary')`,
    [
      key.purpose,
      key.version,
      key.keyId,
      key.wrapped.kekId,
      key.wrapped.kekVersion,
      key.wrapped.wrapped,
      key.publicJwk === null ? null : JSON.stringify(key.publicJwk),
    ],
  );
}

// ---- tenant_purpose_keys (the pseudonym key) ------------------------------------------------------

export interface PseudonymKeyRow {
  kek_id: string;
  kek_version: number;
  wrapped_key: Buffer | null;
  status: 'active' | 'destroyed';
}

export async function readPseudonymKeyRow(
  db: Queryable,
  tenantId: string,
  version: number,
): Promise<PseudonymKeyRow | undefined> {
  const { rows } = await db.query<PseudonymKeyRow>(
    `SELECT kek_id, kek_version, wrapped_key, status FROM tenant_purpose_keys WHERE tenant_id = $1
        AND purpose = 'pseudonym' AND version = $2`,
    [tenantId, version],
  );
  return rows[0];
}

/** The pseudonym key, derived from DEK v1; false when another process stored it first. */
export async function insertPseudonymKey(
  client: PoolClient,
  tenantId: string,
  version: number,
  wrapped: WrappedKey,
): Promise<boolean> {
  const res = await client.query(
    `INSERT INTO tenant_purpose_keys (tenant_id, purpose, version, kek_id, kek_version, wrapped_key, derivation, status)
     VALUES ($1, 'pseudonym', $2, $3, $4, $5, 'hkdf-dek-v1', 'active')
     ON CONFLICT DO NOTHING`,
    [tenantId, version, wrapped.kekId, wrapped.kekVersion, wrapped.wrapped],
  );
  return res.rowCount === 1;
}

/** Whether the tenant's pseudonym key row exists (held FOR SHARE until the caller's transaction ends). */
export async function pseudonymKeyStored(client: PoolClient, tenantId: string): Promise<boolean> {
  const { rows } = await client.query<{ status: string }>(
    `SELECT status FROM tenant_purpose_keys WHERE tenant_id = $1 AND purpose = 'pseudonym' FOR SHARE`,
    [tenantId],
  );
  return rows.length > 0;
}

/** Crypto-shredding: every per-tenant purpose key not yet destroyed loses its wrapped bytes. */
export async function destroyTenantPurposeKeys(
  client: PoolClient,
  tenantId: string,
): Promise<Array<{ purpose: TenantKeyPurpose; version: number }>> {
  const { rows } = await client.query<{ purpose: TenantKeyPurpose; version: number }>(
    `UPDATE tenant_purpose_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now()
      WHERE tenant_id = $1 AND status <> 'destroyed' RETURNING purpose, version`,
    [tenantId],
  );
  return rows;
}

/** A random sample of the pseudonym keys wrapped under one KEK version. */
export async function samplePseudonymKeysWrappedUnder(
  db: Queryable,
  kekId: string,
  kekVersion: number,
  sampleSize: number,
): Promise<Array<{ tenant_id: string; wrapped_key: Buffer }>> {
  const { rows } = await db.query<{ tenant_id: string; wrapped_key: Buffer }>(
    `SELECT tenant_id, wrapped_key FROM tenant_purpose_keys
      WHERE purpose = 'pseudonym' AND kek_id = $1 AND kek_version = $2 AND wrapped_key IS NOT NULL
        ORDER BY random() LIMIT $3`,
    [kekId, kekVersion, sampleSize],
  );
  return rows;
}
