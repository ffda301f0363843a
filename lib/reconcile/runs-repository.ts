/**
 * The statements of reconciliation runs (migrations/1733503000000 `reconcile_runs`): a run's row, its counts when it
 * ends, and what became of its write-backs and conflicts so far.
 */
import type { Queryable } from '../store/pool.js';

export type ClassCounts = Record<string, number>;

export interface ReconcileRunRow {
  id: string;
  tenantId: string;
  integrationId: string;
  resourceTypes: string[];
  readStrategy: string;
  status: 'running' | 'completed' | 'failed';
  counts: Record<string, ClassCounts>;
  decisions: Record<string, number>;
  startedAt: string;
  finishedAt: string | null;
}

export async function insertRun(
  db: Queryable,
  run: { id: string; tenantId: string; integrationId: string; resourceTypes: string[]; readStrategy: string },
): Promise<void> {
  await db.query(
    `INSERT INTO reconcile_runs (id, tenant_id, integration_id, resource_types, read_strategy, status)
     VALUES ($1, $2, $3, $4, $5, 'running') ON CONFLICT (id) DO NOTHING`,
    [run.id, run.tenantId, run.integrationId, run.resourceTypes, run.readStrategy],
  );
}

export async function finishRun(
  db: Queryable,
  id: string,
  result: { status: 'completed' | 'failed'; counts: Record<string, ClassCounts>; decisions: Record<string, number> },
): Promise<void> {
  await db.query(
    `UPDATE reconcile_runs SET status = $2, counts = $3, decisions = $4, finished_at = coalesce(finished_at, now())
      WHERE id = $1`,
    [id, result.status, JSON.stringify(result.counts), JSON.stringify(result.decisions)],
  );
}

export async function getRun(db: Queryable, id: string): Promise<ReconcileRunRow | undefined> {
  const res = await db.query<{
    id: string;
    tenant_id: string;
    integration_id: string;
    resource_types: string[];
    read_strategy: string;
    status: ReconcileRunRow['status'];
    counts: Record<string, ClassCounts>;
    decisions: Record<string, number>;
    started_at: Date;
    finished_at: Date | null;
  }>('SELECT * FROM reconcile_runs WHERE id = $1', [id]);
  const r = res.rows[0];
  if (!r) return undefined;
  return {
    id: r.id,
    tenantId: r.tenant_id,
    integrationId: r.integration_id,
    resourceTypes: r.resource_types,
    readStrategy: r.read_strategy,
    status: r.status,
    counts: r.counts,
    decisions: r.decisions,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

/** What became of a run's write-backs and conflicts so far (outbox_changes and reconcile_conflicts of the run). */
export async function runOutcomes(
  db: Queryable,
  run: { id: string; integrationId: string },
): Promise<{ writeBacks: Record<string, number>; conflicts: Record<string, number> }> {
  const changes = await db.query<{ status: string; n: string }>(
    `SELECT status, count(*) AS n FROM outbox_changes
      WHERE integration_id = $1 AND origin = 'reconcile' AND requested_by = $2 GROUP BY status`,
    [run.integrationId, `reconcile:${run.id}`],
  );
  const conflicts = await db.query<{ status: string; n: string }>(
    `SELECT status, count(*) AS n FROM reconcile_conflicts
      WHERE integration_id = $1 AND source = 'reconcile' AND run_id = $2 GROUP BY status`,
    [run.integrationId, run.id],
  );
  const tally = (rows: Array<{ status: string; n: string }>) =>
    Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  return { writeBacks: tally(changes.rows), conflicts: tally(conflicts.rows) };
}
