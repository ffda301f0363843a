/** The patient strategy's per-run roster (migrations/1733300000000_read-strategies.sql, sync_rosters). */
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';

/** Replaces the roster `rosterId` with these patient ids (a retried roster step writes the same rows again). */
export async function writeRoster(
  pool: Pool,
  scope: { rosterId: string; tenantId: string; integrationId: string },
  patientIds: readonly string[],
): Promise<number> {
  return withTransaction(pool, async (client) => {
    await client.query(`DELETE FROM sync_rosters WHERE roster_id = $1 OR created_at < now() - interval '1 day'`, [
      scope.rosterId,
    ]);
    const unique = [...new Set(patientIds)];
    for (let i = 0; i < unique.length; i += 5000) {
      const slice = unique.slice(i, i + 5000);
      await client.query(
        `INSERT INTO sync_rosters (roster_id, position, tenant_id, integration_id, patient_id)
         SELECT $1, $2 + ord - 1, $3, $4, id FROM unnest($5::text[]) WITH ORDINALITY AS t(id, ord)`,
        [scope.rosterId, i, scope.tenantId, scope.integrationId, slice],
      );
    }
    return unique.length;
  });
}

/**
 * Patients this integration has stored who are not in `roster` (they left the Group, or the vendor deleted them):
 * the patient strategy reads them once more, to learn which were deleted.
 */
export async function storedPatientsOutside(
  db: Queryable,
  scope: { tenantId: string; integrationId: string },
  roster: readonly string[],
): Promise<string[]> {
  const { rows } = await db.query<{ resource_id: string }>(
    `SELECT resource_id FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = 'Patient' AND resource_id <> ALL($3::text[])
      ORDER BY resource_id`,
    [scope.tenantId, scope.integrationId, roster],
  );
  return rows.map((r) => r.resource_id);
}

/** Patient ids at positions [from, to) of a roster, in order. */
export async function readRoster(db: Queryable, rosterId: string, from: number, to: number): Promise<string[]> {
  const { rows } = await db.query<{ patient_id: string }>(
    `SELECT patient_id FROM sync_rosters WHERE roster_id = $1 AND position >= $2 AND position < $3 ORDER BY position`,
    [rosterId, from, to],
  );
  return rows.map((r) => r.patient_id);
}

export async function dropRoster(db: Queryable, rosterId: string): Promise<void> {
  await db.query('DELETE FROM sync_rosters WHERE roster_id = $1', [rosterId]);
}
