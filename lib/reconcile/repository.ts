/**
 * The statements of reconciliation (migrations/1733503000000): runs and their counts, per-record baselines of
 * agreed group digests, the per-run staging of ids the vendor listed, and the local side looked up in batches.
 */
import type { Queryable } from '../store/pool.js';
import type { Pending } from './decide.js';
import type { GroupDigests } from './digest.js';

export interface RecordScope {
  tenantId: string;
  integrationId: string;
  resourceType: string;
}

export interface LocalRow {
  resourceId: string;
  versionId: string;
  lastUpdated: string;
  ciphertext: Buffer;
}

/** The stored records of these ids (one batch: a page's ids). */
export async function localRecords(db: Queryable, scope: RecordScope, ids: readonly string[]): Promise<LocalRow[]> {
  if (ids.length === 0) return [];
  const res = await db.query<{ resource_id: string; version_id: string; last_updated: Date; ciphertext: Buffer }>(
    `SELECT resource_id, version_id, last_updated, ciphertext FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = ANY($4)`,
    [scope.tenantId, scope.integrationId, scope.resourceType, [...ids]],
  );
  return res.rows.map((r) => ({
    resourceId: r.resource_id,
    versionId: r.version_id,
    lastUpdated: r.last_updated.toISOString(),
    ciphertext: r.ciphertext,
  }));
}

/** A record's last agreed state (lib/reconcile/decide.ts reads the groups; the whole digest is the fast path). */
export interface Baseline {
  digests: GroupDigests;
  /** Keyed digest of the whole content, when the whole record was agreed. */
  whole: string | null;
  /** The stored version the whole record was agreed at. */
  localVersion: string | null;
}

export async function baselines(
  db: Queryable,
  scope: RecordScope,
  ids: readonly string[],
): Promise<Map<string, Baseline>> {
  if (ids.length === 0) return new Map();
  const res = await db.query<{
    resource_id: string;
    digests: GroupDigests;
    whole: string | null;
    local_version: string | null;
  }>(
    `SELECT resource_id, digests, whole, local_version FROM reconcile_baselines
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = ANY($4)`,
    [scope.tenantId, scope.integrationId, scope.resourceType, [...ids]],
  );
  return new Map(
    res.rows.map((r) => [r.resource_id, { digests: r.digests, whole: r.whole, localVersion: r.local_version }]),
  );
}

export async function saveBaselines(
  db: Queryable,
  scope: RecordScope,
  runId: string,
  entries: ReadonlyArray<{ resourceId: string; baseline: Baseline }>,
): Promise<void> {
  if (entries.length === 0) return;
  await db.query(
    `INSERT INTO reconcile_baselines AS b (tenant_id, integration_id, resource_type, resource_id, digests, whole,
       local_version, run_id)
     SELECT $1, $2, $3, t.id, t.digests, t.whole, t.local_version, $8
       FROM unnest($4::text[], $5::jsonb[], $6::text[], $7::text[]) AS t(id, digests, whole, local_version)
     ON CONFLICT (tenant_id, integration_id, resource_type, resource_id) DO UPDATE
       SET digests = EXCLUDED.digests, whole = EXCLUDED.whole, local_version = EXCLUDED.local_version,
           run_id = EXCLUDED.run_id, agreed_at = now()`,
    [
      scope.tenantId,
      scope.integrationId,
      scope.resourceType,
      entries.map((e) => e.resourceId),
      entries.map((e) => JSON.stringify(e.baseline.digests)),
      entries.map((e) => e.baseline.whole),
      entries.map((e) => e.baseline.localVersion),
      runId,
    ],
  );
}

export async function dropBaselines(db: Queryable, scope: RecordScope, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `DELETE FROM reconcile_baselines
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = ANY($4)`,
    [scope.tenantId, scope.integrationId, scope.resourceType, [...ids]],
  );
}

/**
 * Outbox changes and open conflicts of these records: per id whether a create waits, the elements pending updates
 * and open conflicts carry, and whether the record was created locally (a create of it in the outbox, whatever
 * became of it).
 */
export async function pendingOfRecords(
  db: Queryable,
  scope: RecordScope,
  ids: readonly string[],
): Promise<Map<string, Pending>> {
  const out = new Map<string, Pending & { elements: Set<string> }>();
  if (ids.length === 0) return out;
  const res = await db.query<{ resource_id: string; kind: string; status: string; changed_elements: string[] }>(
    `SELECT resource_id, kind, status, changed_elements FROM outbox_changes
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = ANY($4)
        AND (status = 'pending' OR kind = 'create')`,
    [scope.tenantId, scope.integrationId, scope.resourceType, [...ids]],
  );
  const entry = (id: string) => {
    let p = out.get(id);
    if (!p) out.set(id, (p = { create: false, createdLocally: false, conflictOpen: false, elements: new Set() }));
    return p;
  };
  for (const r of res.rows) {
    const p = entry(r.resource_id);
    if (r.kind === 'create') p.createdLocally = true;
    if (r.status !== 'pending') continue;
    if (r.kind === 'create') p.create = true;
    else for (const e of r.changed_elements) p.elements.add(e);
  }
  // A record's open conflict waits for a person: its elements are not differences to decide again.
  const open = await db.query<{ resource_id: string; elements: string[] }>(
    `SELECT resource_id, elements FROM reconcile_conflicts
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = ANY($4) AND status = 'open'`,
    [scope.tenantId, scope.integrationId, scope.resourceType, [...ids]],
  );
  for (const r of open.rows) {
    const p = entry(r.resource_id);
    p.conflictOpen = true;
    for (const e of r.elements) p.elements.add(e);
  }
  return out;
}

/** Replaces a stored record with its reconciled form (the vendor's version id; never moves last_updated back). */
export async function replaceRecords(
  db: Queryable,
  scope: RecordScope,
  rows: ReadonlyArray<{
    resourceId: string;
    versionId: string;
    lastUpdated: string;
    keyVersion: number;
    ciphertext: Buffer;
  }>,
): Promise<number> {
  if (rows.length === 0) return 0;
  const res = await db.query(
    `UPDATE records r SET version_id = t.version_id, last_updated = greatest(r.last_updated, t.last_updated),
            key_version = t.key_version, ciphertext = t.ciphertext, stored_at = now()
       FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::int[], $8::bytea[])
         AS t(resource_id, version_id, last_updated, key_version, ciphertext)
      WHERE r.tenant_id = $1 AND r.integration_id = $2 AND r.resource_type = $3 AND r.resource_id = t.resource_id`,
    [
      scope.tenantId,
      scope.integrationId,
      scope.resourceType,
      rows.map((r) => r.resourceId),
      rows.map((r) => r.versionId),
      rows.map((r) => r.lastUpdated),
      rows.map((r) => r.keyVersion),
      rows.map((r) => r.ciphertext),
    ],
  );
  return res.rowCount ?? 0;
}

/** Remembers the ids the vendor listed in this run. */
export async function markSeen(db: Queryable, runId: string, resourceType: string, ids: readonly string[]) {
  if (ids.length === 0) return;
  await db.query(
    `INSERT INTO reconcile_seen (run_id, resource_type, resource_id)
     SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
    [runId, resourceType, [...ids]],
  );
}

/** Stored ids of a type the vendor did not list in this run, in id order after `afterId`. */
export async function unseenLocalIds(
  db: Queryable,
  scope: RecordScope & { runId: string },
  afterId: string | null,
  limit: number,
): Promise<string[]> {
  const res = await db.query<{ resource_id: string }>(
    `SELECT r.resource_id FROM records r
      WHERE r.tenant_id = $1 AND r.integration_id = $2 AND r.resource_type = $3 AND ($5::text IS NULL OR r.resource_id > $5)
        AND NOT EXISTS (SELECT 1 FROM reconcile_seen s
                         WHERE s.run_id = $4 AND s.resource_type = $3 AND s.resource_id = r.resource_id)
      ORDER BY r.resource_id LIMIT $6`,
    [scope.tenantId, scope.integrationId, scope.resourceType, scope.runId, afterId, limit],
  );
  return res.rows.map((r) => r.resource_id);
}

export async function clearSeen(db: Queryable, runId: string): Promise<void> {
  await db.query('DELETE FROM reconcile_seen WHERE run_id = $1', [runId]);
}

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
