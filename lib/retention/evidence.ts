/**
 * Incident evidence past its retention (lib/incidents/evidence.ts wrote it): an incident's evidence goes
 * once the incident recovered more than the `evidence` rule ago (the longest rule among the tenants it
 * affected), its own legal hold was released by counsel, and no other legal hold covers its scope or any
 * integration it affected. One incident per batch: in one transaction the owner function deletes the
 * evidence rows (the application may only insert them), the audit event is appended, the files are removed
 * (only under the evidence directory) and the ledger row written. A failure before COMMIT may leave some
 * files removed and the rows in place: the next run removes the rest and the rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { ScopedIntegration } from '../incidents/scope.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { activeLegalHolds, holdOver, lockHoldsForPurge } from './holds.js';
import { DEFAULT_RETENTION_DAYS, retentionDaysFor } from './rules.js';

export interface EvidenceTask {
  incidentId: string;
  days: number;
  cutoff: string;
}

const DAY_MS = 24 * 3600 * 1000;

/** Recovered incidents with evidence kept, whose recovery lies further back than their evidence rule. */
export async function evidenceDue(db: Queryable, now: Date): Promise<EvidenceTask[]> {
  const res = await db.query<{ id: string; recovered_at: Date; affected: ScopedIntegration[] }>(
    `SELECT i.id, i.recovered_at, i.affected FROM incidents i
      WHERE i.status = 'recovered' AND i.recovered_at IS NOT NULL
        AND EXISTS (SELECT 1 FROM incident_evidence e WHERE e.incident_id = i.id)
      ORDER BY i.recovered_at, i.id`,
  );
  const tasks: EvidenceTask[] = [];
  for (const r of res.rows) {
    const tenants = [...new Set((r.affected ?? []).map((a) => a.tenantId))];
    let days = tenants.length === 0 ? DEFAULT_RETENTION_DAYS.evidence : 0;
    for (const t of tenants) days = Math.max(days, await retentionDaysFor(db, t, 'evidence'));
    const cutoff = new Date(now.getTime() - days * DAY_MS).toISOString();
    if (r.recovered_at.getTime() < Date.parse(cutoff)) tasks.push({ incidentId: r.id, days, cutoff });
  }
  return tasks;
}

export interface EvidencePurgeResult {
  /** Evidence files (rows) purged; 0 when held or no longer due. */
  purged: number;
  heldBy: string[];
  replayed: boolean;
}

function removeUnder(root: string, file: string): void {
  const resolved = path.resolve(file);
  if (!resolved.startsWith(`${root}${path.sep}`)) return; // never outside the evidence directory
  const dir = path.dirname(resolved);
  if (fs.existsSync(dir)) fs.chmodSync(dir, 0o700); // written 0500 (lib/incidents/evidence.ts)
  fs.rmSync(resolved, { force: true });
  if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}

export async function purgeIncidentEvidence(
  pool: Pool,
  input: { runId: string; batchKey: string; task: EvidenceTask; evidenceDir: string },
  ctx: AuditContext,
): Promise<EvidencePurgeResult> {
  return withTransaction(pool, async (client) => {
    const seen = await client.query<{ purged: number }>(
      'SELECT purged FROM retention_purge_batches WHERE run_id = $1 AND batch_key = $2',
      [input.runId, input.batchKey],
    );
    if (seen.rows[0]) return { purged: seen.rows[0].purged, heldBy: [], replayed: true };
    await lockHoldsForPurge(client);
    const incident = await client.query<{ scope: string; affected: ScopedIntegration[]; legal_hold: boolean | null }>(
      `SELECT i.scope, i.affected, h.legal_hold FROM incidents i LEFT JOIN incident_holds h ON h.incident_id = i.id
        WHERE i.id = $1 AND i.status = 'recovered' AND i.recovered_at < $2`,
      [input.task.incidentId, input.task.cutoff],
    );
    const row = incident.rows[0];
    const heldBy = new Set<string>();
    if (row?.legal_hold) heldBy.add(input.task.incidentId);
    if (row) {
      for (const h of await activeLegalHolds(client)) {
        if (h.source === 'incident' && h.id === input.task.incidentId) continue;
        if (h.scope === 'all' || h.scope === row.scope) heldBy.add(h.id);
        for (const a of row.affected ?? [])
          if (holdOver([h], { tenantId: a.tenantId, integrationId: a.integrationId, vendor: a.vendor }))
            heldBy.add(h.id);
      }
    }
    let purged = 0;
    if (row && heldBy.size === 0) {
      const files = await client.query<{ path: string }>('SELECT path FROM incident_evidence WHERE incident_id = $1', [
        input.task.incidentId,
      ]);
      const res = await client.query<{ n: string }>('SELECT retention_purge_incident_evidence($1, $2)::text AS n', [
        input.task.incidentId,
        input.task.cutoff,
      ]);
      purged = Number(res.rows[0]?.n ?? 0);
      await appendAuditEvents(client, [
        {
          ...ctx,
          action: 'retention.evidence_purged',
          outcome: 'success',
          details: { runId: input.runId, incidentId: input.task.incidentId, cutoff: input.task.cutoff, files: purged },
        },
      ]);
      const root = path.resolve(input.evidenceDir);
      for (const f of files.rows) removeUnder(root, f.path);
    }
    await client.query(
      `INSERT INTO retention_purge_batches (run_id, batch_key, kind, tenant_id, purged) VALUES ($1, $2, 'evidence', NULL, $3)`,
      [input.runId, input.batchKey, purged],
    );
    return { purged, heldBy: [...heldBy].sort(), replayed: false };
  });
}
