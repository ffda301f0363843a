import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { ID_PATTERN } from '../domain.js';
import type { Pool, PoolClient, Queryable } from './pool.js';
import { withTransaction } from './pool.js';

export interface Tenant {
  id: string;
  name: string;
  createdAt: Date;
}

export async function createTenant(
  pool: Pool,
  tenant: { id: string; name: string },
  ctx: AuditContext,
): Promise<Tenant> {
  if (!ID_PATTERN.test(tenant.id))
    throw new InvalidArgumentError('tenant id', 'use 1-63 lowercase letters, digits or hyphens');
  if (tenant.name.length === 0 || tenant.name.length > 200)
    throw new InvalidArgumentError('tenant name', 'must be 1-200 characters');
  return withTransaction(pool, async (client) => {
    const inserted = await client.query<{ created_at: Date }>(
      'INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING created_at',
      [tenant.id, tenant.name],
    );
    if (inserted.rowCount === 0) throw new ConflictError('tenant', tenant.id);
    await appendAuditEvents(client, [
      { ...ctx, action: 'tenant.created', outcome: 'success', tenantId: tenant.id, details: {} },
    ]);
    return { ...tenant, createdAt: inserted.rows[0]!.created_at };
  });
}

export async function listTenants(db: Queryable): Promise<Tenant[]> {
  const res = await db.query<{ id: string; name: string; created_at: Date }>(
    'SELECT id, name, created_at FROM tenants ORDER BY id',
  );
  return res.rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
}

export async function tenantExists(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query('SELECT 1 FROM tenants WHERE id = $1', [id]);
  return (res.rowCount ?? 0) > 0;
}

/** Locks the tenant's row: changes to one tenant's keys serialise on it. NotFoundError for an unknown tenant. */
export async function lockTenant(client: PoolClient, tenantId: string): Promise<void> {
  const t = await client.query('SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]);
  if (t.rowCount === 0) throw new NotFoundError('tenant', tenantId);
}
