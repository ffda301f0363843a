/**
 * Every statement of revocation and restore: integration rows locked for revocation, the status and
 * credential-generation changes (the integrations trigger NOTIFYs the watchers in the same
 * transaction), the tenant's status, the watcher connections counted at commit, and what a watcher
 * reads and answers on its own connection.
 */
import { NotFoundError } from '../errors/index.js';
import type { Integration } from '../integrations/repository.js';
import { fromRow } from '../integrations/repository.js';
import type { PoolClient, Queryable } from '../store/pool.js';
import { refusingStoredSecretRefs } from '../store/secret-roots.js';
import type { VendorTlsRefs } from '../vendors/tls-options.js';

type IntegrationRow = Parameters<typeof fromRow>[0];

/**
 * Locks the rows in id order (so concurrent revocations cannot deadlock), all in one statement.
 *
 * Row locks are FOR NO KEY UPDATE, not FOR UPDATE: every sync page inserting records takes a KEY SHARE
 * lock on its integration row (the foreign key) and then waits for the audit head. A FOR UPDATE here
 * conflicts with that KEY SHARE while our own audit append holds the head: a deadlock PostgreSQL breaks
 * only after deadlock_timeout, which cost containment seconds under sync load. Revocation never
 * changes the key, so NO KEY UPDATE is enough and lets those inserts proceed.
 */
export async function lockIntegrations(client: PoolClient, integrationIds: string[]): Promise<Integration[]> {
  const res = await client.query<IntegrationRow>(
    'SELECT * FROM integrations WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE',
    [integrationIds],
  );
  const missing = integrationIds.find((id) => !res.rows.some((r) => r.id === id));
  if (missing !== undefined) throw new NotFoundError('integration', missing);
  return res.rows.map(fromRow);
}

export async function lockIntegration(client: PoolClient, integrationId: string): Promise<Integration> {
  const [locked] = await lockIntegrations(client, [integrationId]);
  return locked!;
}

/** Revoked, under a new credential generation; returns each integration's new generation. */
export async function markIntegrationsRevoked(
  client: PoolClient,
  integrationIds: string[],
): Promise<Map<string, number>> {
  const updated = await client.query<{ id: string; credential_generation: number }>(
    `UPDATE integrations SET status = 'revoked', credential_generation = credential_generation + 1, revoked_at = now()
      WHERE id = ANY($1::text[]) RETURNING id, credential_generation`,
    [integrationIds],
  );
  return new Map(updated.rows.map((r) => [r.id, r.credential_generation]));
}

/** Active again, under a new credential generation. */
export async function markIntegrationActive(client: PoolClient, integrationId: string): Promise<Integration> {
  const res = await client.query<IntegrationRow>(
    `UPDATE integrations SET status = 'active', credential_generation = credential_generation + 1, revoked_at = NULL
      WHERE id = $1 RETURNING *`,
    [integrationId],
  );
  return fromRow(res.rows[0]!);
}

/** The application role cannot write references itself: the definer function checks and stores them. */
export async function storeRestoredSecretRefs(
  client: PoolClient,
  integrationId: string,
  clientSecretRef: string | null,
  tlsRefs: VendorTlsRefs | null,
): Promise<void> {
  await refusingStoredSecretRefs(() =>
    client.query('SELECT set_integration_secret_refs($1, $2, $3)', [integrationId, clientSecretRef, tlsRefs]),
  );
}

/** Locks the tenant row; its status, or undefined for an unknown tenant. */
export async function lockTenantStatus(client: PoolClient, tenantId: string): Promise<string | undefined> {
  const tenant = await client.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1 FOR UPDATE', [
    tenantId,
  ]);
  return tenant.rows[0]?.status;
}

export async function tenantStatus(db: Queryable, tenantId: string): Promise<string | undefined> {
  const tenant = await db.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [tenantId]);
  return tenant.rows[0]?.status;
}

export async function markTenantRevoked(client: PoolClient, tenantId: string): Promise<void> {
  await client.query(`UPDATE tenants SET status = 'revoked', revoked_at = now() WHERE id = $1`, [tenantId]);
}

export async function tenantIntegrationIds(client: PoolClient, tenantId: string): Promise<string[]> {
  const ids = await client.query<{ id: string }>('SELECT id FROM integrations WHERE tenant_id = $1 ORDER BY id', [
    tenantId,
  ]);
  return ids.rows.map((r) => r.id);
}

/** Backend pids of the watcher connections (by their application_name) to this database. */
export async function watcherBackendPids(db: Queryable, applicationName: string): Promise<number[]> {
  const res = await db.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
    [applicationName],
  );
  return res.rows.map((r) => r.pid);
}

// ---- the watcher's own statements ----------------------------------------------------------------

/** An integration's status (revoked when its tenant is), tenant and credential generation; undefined if unknown. */
export async function readCredentialState(
  db: Queryable,
  integrationId: string,
): Promise<{ tenantId: string; status: string; generation: number } | undefined> {
  const res = await db.query<{
    tenant_id: string;
    status: string;
    credential_generation: number;
    tenant_status: string;
  }>(
    `SELECT i.tenant_id, i.status, i.credential_generation, t.status AS tenant_status
       FROM integrations i JOIN tenants t ON t.id = i.tenant_id WHERE i.id = $1`,
    [integrationId],
  );
  const row = res.rows[0];
  if (!row) return undefined;
  return {
    tenantId: row.tenant_id,
    status: row.tenant_status === 'active' ? row.status : 'revoked',
    generation: row.credential_generation,
  };
}

export async function backendPid(client: Queryable): Promise<number> {
  const pid = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return pid.rows[0]!.pid;
}

export async function notify(client: Queryable, channel: string, payload: string): Promise<void> {
  await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
}
