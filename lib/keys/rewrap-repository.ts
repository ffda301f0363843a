/**
 * The statements of a KEK rewrap (KeyAdmin.rewrapDataKeys), one pair per table of wrapped keys: take
 * the rows still wrapped under another version than the primary (locked SKIP LOCKED, so concurrent
 * rewraps share the work), and store a row rewrapped. Rows are typed by their stage (rewrap-stages.ts).
 */
import type { PoolClient } from '../store/pool.js';

export type WrappedKeyTable = 'data_keys' | 'purpose_keys' | 'tenant_purpose_keys' | 'export_jobs';

export interface WrappedRow {
  kek_version: number;
  wrapped_key: Buffer;
}

const stale = (table: WrappedKeyTable, columns: string, order: string): string =>
  `SELECT ${columns}, kek_version, wrapped_key FROM ${table}
    WHERE kek_id = $1 AND kek_version <> $2 AND wrapped_key IS NOT NULL
    ORDER BY kek_version, ${order} LIMIT $3 FOR UPDATE SKIP LOCKED`;

/**
 * Per table: select ($1 KEK id, $2 its primary version, $3 most rows); update (the row's key, then the new
 * KEK version and wrapped key).
 */
const STATEMENTS: Record<WrappedKeyTable, { select: string; update: string }> = {
  data_keys: {
    select: stale('data_keys', 'tenant_id, key_version', 'tenant_id, key_version'),
    update: `UPDATE data_keys SET kek_version = $3, wrapped_key = $4, rewrapped_at = now()
        WHERE tenant_id = $1 AND key_version = $2`,
  },
  purpose_keys: {
    select: stale('purpose_keys', 'purpose, version, key_id', 'purpose, version'),
    update: `UPDATE purpose_keys SET kek_version = $3, wrapped_key = $4, rewrapped_at = now()
        WHERE purpose = $1 AND version = $2`,
  },
  tenant_purpose_keys: {
    select: stale('tenant_purpose_keys', 'tenant_id, purpose, version', 'tenant_id, purpose, version'),
    update: `UPDATE tenant_purpose_keys SET kek_version = $4, wrapped_key = $5, rewrapped_at = now()
              WHERE tenant_id = $1 AND purpose = $2 AND version = $3`,
  },
  export_jobs: {
    select: stale('export_jobs', 'id, tenant_id, key_id', 'id'),
    update: `UPDATE export_jobs SET kek_version = $2, wrapped_key = $3 WHERE id = $1 AND wrapped_key IS NOT NULL`,
  },
};

/** Up to `limit` rows of `table` wrapped under a version of `kekId` other than `primary`, locked. */
export async function lockStaleWrappedKeys<R extends WrappedRow>(
  client: PoolClient,
  table: WrappedKeyTable,
  kekId: string,
  primary: number,
  limit: number,
): Promise<R[]> {
  const { rows } = await client.query<R>(STATEMENTS[table].select, [kekId, primary, limit]);
  return rows;
}

/** Stores one row rewrapped; `key` is the row's primary key in column order. */
export async function storeRewrappedKey(
  client: PoolClient,
  table: WrappedKeyTable,
  key: unknown[],
  kekVersion: number,
  wrapped: Buffer,
): Promise<void> {
  await client.query(STATEMENTS[table].update, [...key, kekVersion, wrapped]);
}
