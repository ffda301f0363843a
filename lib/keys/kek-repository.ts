/**
 * The key-encryption key's metadata (`kek_keys`: the decryption floor; `kek_versions`: one row per
 * version with its state): every statement KeyHierarchy, KeyAdmin and the rotation rollback run on
 * them. Key material never passes through here; it stays in the backend (lib/keys/kek-provider.ts).
 */
import type { PoolClient, Queryable } from '../store/pool.js';

export type KekVersionState = 'primary' | 'active' | 'disabled' | 'destroy_scheduled' | 'destroyed';

export interface KekVersionRow {
  version: number;
  state: KekVersionState;
  provider_ref: string;
  destroy_after: Date | null;
}

// ---- registration (KeyHierarchy.open) ------------------------------------------------------------

/** Serialises first registration of a KEK id across processes (transaction-scoped advisory lock). */
export async function lockKekRegistration(client: PoolClient, kekId: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kek_keys:${kekId}`]);
}

export async function ensureKekRow(client: PoolClient, kekId: string): Promise<void> {
  await client.query('INSERT INTO kek_keys (kek_id) VALUES ($1) ON CONFLICT DO NOTHING', [kekId]);
}

export async function hasKekVersions(client: PoolClient, kekId: string): Promise<boolean> {
  const existing = await client.query('SELECT 1 FROM kek_versions WHERE kek_id = $1 LIMIT 1', [kekId]);
  return existing.rowCount !== 0;
}

export async function insertKekVersion(
  client: PoolClient,
  kekId: string,
  version: number,
  state: KekVersionState,
  providerRef: string,
): Promise<void> {
  await client.query(`INSERT INTO kek_versions (kek_id, version, state, provider_ref) VALUES ($1, $2, $3, $4)`, [
    kekId,
    version,
    state,
    providerRef,
  ]);
}

// ---- reads ---------------------------------------------------------------------------------------

/** Every version with the KEK's floor, ascending. */
export async function readKekVersionsWithFloor(
  db: Queryable,
  kekId: string,
): Promise<Array<KekVersionRow & { floor: number }>> {
  const { rows } = await db.query<KekVersionRow & { floor: number }>(
    `SELECT v.version, v.state, v.provider_ref, v.destroy_after, k.min_decryption_version AS floor
       FROM kek_versions v JOIN kek_keys k USING (kek_id) WHERE v.kek_id = $1 ORDER BY v.version`,
    [kekId],
  );
  return rows;
}

/** One version with the KEK's floor; undefined when the version is not registered. */
export async function readKekVersionWithFloor(
  db: Queryable,
  kekId: string,
  version: number,
): Promise<(KekVersionRow & { floor: number }) | undefined> {
  const { rows } = await db.query<KekVersionRow & { floor: number }>(
    `SELECT v.version, v.state, v.provider_ref, v.destroy_after, k.min_decryption_version AS floor
       FROM kek_versions v JOIN kek_keys k USING (kek_id) WHERE v.kek_id = $1 AND v.version = $2`,
    [kekId, version],
  );
  return rows[0];
}

export async function listKekVersions(db: Queryable, kekId: string): Promise<KekVersionRow[]> {
  const { rows } = await db.query<KekVersionRow>(
    'SELECT version, state, provider_ref, destroy_after FROM kek_versions WHERE kek_id = $1 ORDER BY version',
    [kekId],
  );
  return rows;
}

// ---- changes (KeyAdmin, rotation rollback), each inside the caller's transaction -----------------

/** Locks the KEK row (every metadata change serialises on it); its floor, or undefined for an unknown KEK. */
export async function lockKek(client: PoolClient, kekId: string): Promise<number | undefined> {
  const lock = await client.query<{ min_decryption_version: number }>(
    'SELECT min_decryption_version FROM kek_keys WHERE kek_id = $1 FOR UPDATE',
    [kekId],
  );
  return lock.rows[0]?.min_decryption_version;
}

/** The highest version and the primary one (null when there is none). */
export async function kekVersionSummary(
  client: PoolClient,
  kekId: string,
): Promise<{ max: number; primary: number | null } | undefined> {
  const { rows } = await client.query<{ max: number; primary: number | null }>(
    `SELECT max(version) AS max, max(version) FILTER (WHERE state = 'primary') AS primary
        FROM kek_versions WHERE kek_id = $1`,
    [kekId],
  );
  return rows[0];
}

export async function primaryKekVersion(client: PoolClient, kekId: string): Promise<number | undefined> {
  const primary = await client.query<{ version: number }>(
    `SELECT version FROM kek_versions WHERE kek_id = $1 AND state = 'primary'`,
    [kekId],
  );
  return primary.rows[0]?.version;
}

/** The old primary after a rotation: active (decrypt-only). */
export async function demoteKekVersion(client: PoolClient, kekId: string, version: number): Promise<void> {
  await client.query(
    `UPDATE kek_versions SET state = 'active', updated_at = now() WHERE kek_id = $1 AND version = $2`,
    [kekId, version],
  );
}

export async function setKekFloor(client: PoolClient, kekId: string, version: number): Promise<void> {
  await client.query('UPDATE kek_keys SET min_decryption_version = $2, updated_at = now() WHERE kek_id = $1', [
    kekId,
    version,
  ]);
}

/** Locks one version's row; its state, or undefined when it does not exist. */
export async function lockKekVersion(
  client: PoolClient,
  kekId: string,
  version: number,
): Promise<KekVersionState | undefined> {
  const { rows } = await client.query<{ state: KekVersionState }>(
    `SELECT state FROM kek_versions WHERE kek_id = $1 AND version = $2 FOR UPDATE`,
    [kekId, version],
  );
  return rows[0]?.state;
}

/** A state change by an operator (disable, enable, cancel a destruction): any scheduled destruction is dropped. */
export async function setKekVersionState(
  client: PoolClient,
  kekId: string,
  version: number,
  to: KekVersionState,
): Promise<void> {
  await client.query(
    `UPDATE kek_versions SET state = $3, destroy_after = NULL, updated_at = now() WHERE kek_id = $1 AND version = $2`,
    [kekId, version, to],
  );
}

/** destroy_scheduled, destroyable `delaySeconds` from now; returns that time. */
export async function scheduleKekVersionDestroy(
  client: PoolClient,
  kekId: string,
  version: number,
  delaySeconds: number,
): Promise<Date> {
  const { rows } = await client.query<{ destroy_after: Date }>(
    `UPDATE kek_versions SET state = 'destroy_scheduled', destroy_after = now() + make_interval(secs => $3),
       updated_at = now()
      WHERE kek_id = $1 AND version = $2 RETURNING destroy_after`,
    [kekId, version, delaySeconds],
  );
  return rows[0]!.destroy_after;
}

/** Locks a version about to be destroyed: its state, when it may go, and whether that time has come. */
export async function lockKekVersionForDestroy(
  client: PoolClient,
  kekId: string,
  version: number,
): Promise<{ state: KekVersionState; destroy_after: Date | null; due: boolean } | undefined> {
  const { rows } = await client.query<{ state: KekVersionState; destroy_after: Date | null; due: boolean }>(
    `SELECT state, destroy_after, destroy_after <= now() AS due FROM kek_versions WHERE kek_id = $1
        AND version = $2 FOR UPDATE`,
    [kekId, version],
  );
  return rows[0];
}

export async function markKekVersionDestroyed(client: PoolClient, kekId: string, version: number): Promise<void> {
  await client.query(
    `UPDATE kek_versions SET state = 'destroyed', destroyed_at = now(), updated_at = now()
        WHERE kek_id = $1 AND version = $2`,
    [kekId, version],
  );
}

/**
 * Keys the KEK still wraps — tenant DEKs, purpose keys and per-tenant purpose keys — under a version
 * below, exactly at, or other than `version`.
 */
export async function countWrappedKeys(
  db: Queryable,
  kekId: string,
  where: { below?: number; exactly?: number; notVersion?: number },
): Promise<number> {
  const [op, v] =
    where.below !== undefined
      ? ['<', where.below]
      : where.exactly !== undefined
        ? ['=', where.exactly]
        : ['<>', where.notVersion!];
  const { rows } = await db.query<{ n: string }>(
    `SELECT (SELECT count(*) FROM data_keys WHERE kek_id = $1 AND kek_version ${op} $2 AND wrapped_key IS NOT NULL)
          + (SELECT count(*) FROM purpose_keys WHERE kek_id = $1 AND kek_version ${op} $2 AND wrapped_key IS NOT NULL)
          + (SELECT count(*) FROM tenant_purpose_keys WHERE kek_id = $1 AND kek_version ${op} $2
            AND wrapped_key IS NOT NULL)
          + (SELECT count(*) FROM export_jobs WHERE kek_id = $1 AND kek_version ${op} $2
            AND wrapped_key IS NOT NULL) AS n`,
    [kekId, v],
  );
  return Number(rows[0]?.n ?? 0);
}

// ---- rollback of a KEK rotation ------------------------------------------------------------------

export async function lockKekVersionStates(
  client: PoolClient,
  kekId: string,
  versions: [number, number],
): Promise<Array<{ version: number; state: string }>> {
  const { rows } = await client.query<{ version: number; state: string }>(
    'SELECT version, state FROM kek_versions WHERE kek_id = $1 AND version IN ($2, $3) FOR UPDATE',
    [kekId, ...versions],
  );
  return rows;
}

/** `rotated` stops being the primary (if it still is) and `previous` becomes it again. */
export async function swapKekPrimaryBack(
  client: PoolClient,
  kekId: string,
  previous: number,
  rotated: number,
): Promise<void> {
  await client.query(
    `UPDATE kek_versions SET state = 'active', updated_at = now() WHERE kek_id = $1 AND version = $2
        AND state = 'primary'`,
    [kekId, rotated],
  );
  await client.query(
    `UPDATE kek_versions SET state = 'primary', updated_at = now() WHERE kek_id = $1 AND version = $2`,
    [kekId, previous],
  );
}
