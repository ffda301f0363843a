/**
 * The statements of reconciliation (migrations/1733503000000; runs in runs-repository.ts): per-record baselines of
 * agreed group digests, the per-run staging of ids the vendor listed, and the local side looked up in batches.
 */
import type { Queryable } from '../store/pool.js';
import type { Pending } from './decide.js';
import type { GroupDigests } from './digest.js';
import type { BatchTally } from './tally.js';

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

/**
 * Marks ids listed under one claim (the patient strategy: one rostered patient's listing) and returns those this
 * claim holds: ids it marked now or on an earlier attempt. An id another claim marked first is left out — a
 * record in two patients' compartments is compared and counted once.
 */
export async function claimSeen(
  db: Queryable,
  runId: string,
  resourceType: string,
  ids: readonly string[],
  claim: string,
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  await db.query(
    `INSERT INTO reconcile_seen (run_id, resource_type, resource_id, claimed_by)
     SELECT $1, $2, unnest($3::text[]), $4 ON CONFLICT DO NOTHING`,
    [runId, resourceType, [...ids], claim],
  );
  const held = await db.query<{ resource_id: string }>(
    `SELECT resource_id FROM reconcile_seen
      WHERE run_id = $1 AND resource_type = $2 AND resource_id = ANY($3) AND claimed_by = $4`,
    [runId, resourceType, [...ids], claim],
  );
  return new Set(held.rows.map((r) => r.resource_id));
}

/**
 * Stored ids of a type the vendor did not list in this run, in id order after `afterId`: stored ids are scanned in
 * chunks by primary key and each chunk's listed ones looked up by key (no anti-join over the staging table, whose
 * statistics a run outgrows as it fills). Stops at `limit` unlisted ids or after a bounded scan; `lastScanned` is
 * where the next call goes on (null: the type is done).
 */
export async function unseenLocalIds(
  db: Queryable,
  scope: RecordScope & { runId: string },
  afterId: string | null,
  limit: number,
): Promise<{ ids: string[]; lastScanned: string | null }> {
  const ids: string[] = [];
  let cursor = afterId;
  for (let chunk = 0; chunk < 20 && ids.length < limit; chunk++) {
    const stored = await db.query<{ resource_id: string }>(
      `SELECT resource_id FROM records
        WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND ($4::text IS NULL OR resource_id > $4)
        ORDER BY resource_id LIMIT $5`,
      [scope.tenantId, scope.integrationId, scope.resourceType, cursor, limit],
    );
    const chunkIds = stored.rows.map((r) => r.resource_id);
    if (chunkIds.length === 0) return { ids, lastScanned: null };
    const seen = await db.query<{ resource_id: string }>(
      `SELECT resource_id FROM reconcile_seen WHERE run_id = $1 AND resource_type = $2 AND resource_id = ANY($3)`,
      [scope.runId, scope.resourceType, chunkIds],
    );
    const listed = new Set(seen.rows.map((r) => r.resource_id));
    for (const id of chunkIds) if (!listed.has(id)) ids.push(id);
    cursor = chunkIds.at(-1)!;
    if (chunkIds.length < limit) return { ids, lastScanned: null };
  }
  return { ids, lastScanned: cursor };
}

/** A run's staging and batch ledger go when it ends. */
export async function clearSeen(db: Queryable, runId: string): Promise<void> {
  await db.query('DELETE FROM reconcile_seen WHERE run_id = $1', [runId]);
  await db.query('DELETE FROM reconcile_batches WHERE run_id = $1', [runId]);
}

/** A committed batch: its counts, and where the run goes on after it (when the batch chose that itself). */
export interface CommittedBatch {
  tally: BatchTally;
  next?: string | null;
}

/** What a batch of the run committed, if it did. */
export async function committedBatch(
  db: Queryable,
  runId: string,
  batchKey: string,
): Promise<CommittedBatch | undefined> {
  const res = await db.query<{ tally: CommittedBatch }>(
    'SELECT tally FROM reconcile_batches WHERE run_id = $1 AND batch_key = $2',
    [runId, batchKey],
  );
  return res.rows[0]?.tally;
}

/** Records a batch's counts in its transaction (a second commit of the same batch fails on the key). */
export async function recordBatch(
  db: Queryable,
  runId: string,
  batchKey: string,
  committed: CommittedBatch,
): Promise<void> {
  await db.query('INSERT INTO reconcile_batches (run_id, batch_key, tally) VALUES ($1, $2, $3)', [
    runId,
    batchKey,
    JSON.stringify(committed),
  ]);
}
