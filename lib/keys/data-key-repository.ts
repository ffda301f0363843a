/**
 * Tenant data keys (`data_keys`: one row per tenant and DEK version, the key stored only wrapped by
 * the KEK): every statement the keyring, key administration, DEK retirement and the rotation rollback
 * run on them. Callers lock the tenant row first (lib/store/tenants.ts lockTenant) when they change
 * a tenant's keys.
 */
import type { PoolClient, Queryable } from '../store/pool.js';
import type { WrappedKey } from './kek-provider.js';

export type DataKeyStatus = 'primary' | 'decrypt_only' | 'destroyed';

export interface DataKeyRow {
  key_version: number;
  kek_id: string;
  kek_version: number;
  wrapped_key: Buffer | null;
  status: DataKeyStatus;
}

// ---- keyring --------------------------------------------------------------------------------------

export async function primaryDataKeyVersion(db: Queryable, tenantId: string): Promise<number | undefined> {
  const found = await db.query<{ key_version: number }>(
    `SELECT key_version FROM data_keys WHERE tenant_id = $1 AND status = 'primary'`,
    [tenantId],
  );
  return found.rows[0]?.key_version;
}

export async function readDataKey(db: Queryable, tenantId: string, version: number): Promise<DataKeyRow | undefined> {
  const res = await db.query<DataKeyRow>(
    `SELECT key_version, kek_id, kek_version, wrapped_key, status FROM data_keys
        WHERE tenant_id = $1 AND key_version = $2`,
    [tenantId, version],
  );
  return res.rows[0];
}

export async function tenantHasDataKey(db: Queryable, tenantId: string): Promise<boolean> {
  const exists = await db.query('SELECT 1 FROM data_keys WHERE tenant_id = $1 LIMIT 1', [tenantId]);
  return exists.rowCount !== 0;
}

/** DEK v1 as the primary; false when another caller stored one first. */
export async function insertFirstDataKey(client: PoolClient, tenantId: string, wrapped: WrappedKey): Promise<boolean> {
  const res = await client.query(
    `INSERT INTO data_keys (tenant_id, key_version, kek_id, kek_version, wrapped_key, status)
     VALUES ($1, 1, $2, $3, $4, 'primary')
     ON CONFLICT DO NOTHING`,
    [tenantId, wrapped.kekId, wrapped.kekVersion, wrapped.wrapped],
  );
  return res.rowCount === 1;
}

// ---- rotation -------------------------------------------------------------------------------------

/** The highest DEK version of the tenant and its primary one (null when there is none). */
export async function dataKeyVersionSummary(
  client: PoolClient,
  tenantId: string,
): Promise<{ max: number | null; primary: number | null } | undefined> {
  const { rows } = await client.query<{ max: number | null; primary: number | null }>(
    `SELECT max(key_version) AS max, max(key_version) FILTER (WHERE status = 'primary') AS primary
        FROM data_keys WHERE tenant_id = $1`,
    [tenantId],
  );
  return rows[0];
}

/** The old primary after a rotation: decrypt-only (dual read). */
export async function demoteDataKey(client: PoolClient, tenantId: string, keyVersion: number): Promise<void> {
  await client.query(`UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = $1 AND key_version = $2`, [
    tenantId,
    keyVersion,
  ]);
}

export async function insertPrimaryDataKey(
  client: PoolClient,
  tenantId: string,
  keyVersion: number,
  wrapped: WrappedKey,
): Promise<void> {
  await client.query(
    `INSERT INTO data_keys (tenant_id, key_version, kek_id, kek_version, wrapped_key, status)
        VALUES ($1, $2, $3, $4, $5, 'primary')`,
    [tenantId, keyVersion, wrapped.kekId, wrapped.kekVersion, wrapped.wrapped],
  );
}

// ---- retirement and crypto-shredding --------------------------------------------------------------

/** Every DEK version of the tenant not yet destroyed loses its wrapped bytes; returns those versions. */
export async function destroyAllDataKeys(client: PoolClient, tenantId: string): Promise<number[]> {
  const { rows } = await client.query<{ key_version: number }>(
    `UPDATE data_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now()
      WHERE tenant_id = $1 AND status <> 'destroyed' RETURNING key_version`,
    [tenantId],
  );
  return rows.map((r) => r.key_version);
}

/** Locks one DEK version's row; its status, or undefined when it does not exist. */
export async function lockDataKeyStatus(
  client: PoolClient,
  tenantId: string,
  keyVersion: number,
): Promise<string | undefined> {
  const { rows } = await client.query<{ status: string }>(
    'SELECT status FROM data_keys WHERE tenant_id = $1 AND key_version = $2 FOR UPDATE',
    [tenantId, keyVersion],
  );
  return rows[0]?.status;
}

export async function destroyDataKeyVersions(
  client: PoolClient,
  tenantId: string,
  keyVersions: number[],
): Promise<void> {
  await client.query(
    `UPDATE data_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now()
        WHERE tenant_id = $1 AND key_version = ANY($2::int[])`,
    [tenantId, keyVersions],
  );
}

/**
 * Decrypt-only DEK versions of the tenant that no record's ciphertext header names (locked), ascending.
 * The header is read in SQL (`envelope_key_version`), never the `key_version` column beside it.
 */
export async function lockUnusedDecryptOnlyVersions(client: PoolClient, tenantId: string): Promise<number[]> {
  const { rows } = await client.query<{ key_version: number }>(
    `SELECT key_version FROM data_keys d WHERE tenant_id = $1 AND status = 'decrypt_only'
        AND NOT EXISTS (SELECT 1 FROM records r
                         WHERE r.tenant_id = d.tenant_id AND envelope_key_version(r.ciphertext) = d.key_version)
      ORDER BY key_version FOR UPDATE`,
    [tenantId],
  );
  return rows.map((r) => r.key_version);
}

// ---- rollback of a tenant DEK rotation ------------------------------------------------------------

export async function readDataKeyStatuses(
  client: PoolClient,
  tenantId: string,
  versions: [number, number],
): Promise<Array<{ key_version: number; status: string }>> {
  const { rows } = await client.query<{ key_version: number; status: string }>(
    'SELECT key_version, status FROM data_keys WHERE tenant_id = $1 AND key_version IN ($2, $3)',
    [tenantId, ...versions],
  );
  return rows;
}

/** `rotated` stops being the primary (if it still is) and `previous` becomes it again. */
export async function swapDataKeyPrimaryBack(
  client: PoolClient,
  tenantId: string,
  previous: number,
  rotated: number,
): Promise<void> {
  await client.query(
    `UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = $1 AND key_version = $2 AND status = 'primary'`,
    [tenantId, rotated],
  );
  await client.query(`UPDATE data_keys SET status = 'primary' WHERE tenant_id = $1 AND key_version = $2`, [
    tenantId,
    previous,
  ]);
}

// ---- verification of a KEK rotation ---------------------------------------------------------------

/** A random sample of the DEKs wrapped under one KEK version. */
export async function sampleDataKeysWrappedUnder(
  db: Queryable,
  kekId: string,
  kekVersion: number,
  sampleSize: number,
): Promise<Array<{ tenant_id: string; key_version: number; wrapped_key: Buffer }>> {
  const { rows } = await db.query<{ tenant_id: string; key_version: number; wrapped_key: Buffer }>(
    `SELECT tenant_id, key_version, wrapped_key FROM data_keys
      WHERE kek_id = $1 AND kek_version = $2 AND wrapped_key IS NOT NULL ORDER BY random() LIMIT $3`,
    [kekId, kekVersion, sampleSize],
  );
  return rows;
}
