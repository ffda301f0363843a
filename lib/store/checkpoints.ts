import type { PoolClient, Queryable } from './pool.js';

/** The high-water mark (max meta.lastUpdated committed) per resource type of an integration. */
export async function readCheckpoints(
  db: Queryable,
  tenantId: string,
  integrationId: string,
): Promise<Map<string, string>> {
  const res = await db.query<{ resource_type: string; high_water: Date }>(
    'SELECT resource_type, high_water FROM sync_checkpoints WHERE tenant_id = $1 AND integration_id = $2',
    [tenantId, integrationId],
  );
  return new Map(res.rows.map((r) => [r.resource_type, r.high_water.toISOString()]));
}

/** Moves a checkpoint forward only: a late or repeated call can never move it back. */
export async function advanceCheckpoint(
  client: PoolClient,
  c: { tenantId: string; integrationId: string; resourceType: string; highWater: string; runId: string },
): Promise<string> {
  const res = await client.query<{ high_water: Date }>(
    `INSERT INTO sync_checkpoints AS s (tenant_id, integration_id, resource_type, high_water, updated_by_run)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant_id, integration_id, resource_type) DO UPDATE
       SET high_water = GREATEST(s.high_water, EXCLUDED.high_water), updated_at = now(),
         updated_by_run = EXCLUDED.updated_by_run
     RETURNING high_water`,
    [c.tenantId, c.integrationId, c.resourceType, c.highWater, c.runId],
  );
  return res.rows[0]!.high_water.toISOString();
}
