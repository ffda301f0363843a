/**
 * Evidence preservation for an incident: a signed audit checkpoint forced now, the audit segment of
 * the scope, the histories of affected workflow runs (payloads as stored: encrypted) and a manifest
 * of SHA-256 hashes. Files are written 0400 in a directory made 0500, and every hash goes into
 * `incident_evidence`, which the application role may only INSERT into — so later cleanup can
 * neither rewrite the files unnoticed nor the hashes at all. Idempotent: a retry after the rows
 * committed returns what was preserved; a retry before writes a fresh directory.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditAnchor } from '../audit/anchor.js';
import { listCheckpoints, writeCheckpoint } from '../audit/checkpoint.js';
import { AuditIntegrityError } from '../audit/checkpoint-jws.js';
import type { StoredCheckpoint } from '../audit/checkpoint-jws.js';
import { exportAuditEvents } from '../audit/export.js';
import { ID_PATTERN } from '../domain.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { AuditSigningKeySource } from '../keys/purpose-keys.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';

export interface EvidenceDeps {
  pool: Pool;
  signer: AuditSigningKeySource;
  anchor: AuditAnchor;
  evidenceDir: string;
  /** Whether this process writes checkpoints to its anchor (EHR_AUDIT_CHECKPOINT_WRITER): one writer per anchor. */
  checkpointWriter: boolean;
}

export interface HistoryEvidence {
  workflowId: string;
  runId: string;
  /** The history as JSON (payloads as stored). */
  json: string;
}

export interface EvidencePackage {
  incidentId: string;
  /** SHA-256 of manifest.json: the evidence id the timeline shows. */
  manifestSha256: string;
  files: number;
  checkpointSeq: number | null;
  auditRows: number;
  histories: number;
  directory: string;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export async function preservedEvidence(db: Queryable, incidentId: string): Promise<EvidencePackage | undefined> {
  const rows = await db.query<{ name: string; kind: string; sha256: string; path: string }>(
    'SELECT name, kind, sha256, path FROM incident_evidence WHERE incident_id = $1',
    [incidentId],
  );
  const manifest = rows.rows.find((r) => r.name === 'manifest.json');
  if (!manifest) return undefined;
  const parsed = JSON.parse(fs.readFileSync(manifest.path, 'utf8')) as {
    checkpointSeq: number | null;
    auditRows: number;
    histories: number;
  };
  return {
    incidentId,
    manifestSha256: manifest.sha256,
    files: rows.rows.length,
    checkpointSeq: parsed.checkpointSeq,
    auditRows: parsed.auditRows,
    histories: parsed.histories,
    directory: path.dirname(manifest.path),
  };
}

/**
 * A checkpoint signed now when this process is its anchor's writer; otherwise — or when the
 * checkpoint is refused (anchor and database disagree, or the chain is broken: itself evidence) —
 * the latest stored signed checkpoint, marked not fresh with the reason. The audit segment's hash in
 * the insert-only manifest covers the events after it.
 */
async function checkpointForEvidence(
  deps: EvidenceDeps,
): Promise<{ cp: StoredCheckpoint | undefined; fresh: boolean; reason?: string }> {
  if (deps.checkpointWriter) {
    try {
      const cp = await writeCheckpoint(deps.pool, deps.signer, deps.anchor, { force: true });
      if (cp) return { cp, fresh: true };
    } catch (err) {
      if (!(err instanceof AuditIntegrityError)) throw err;
      return { cp: (await listCheckpoints(deps.pool)).at(-1), fresh: false, reason: err.message.slice(0, 300) };
    }
  }
  return {
    cp: (await listCheckpoints(deps.pool)).at(-1),
    fresh: false,
    reason: 'this worker is not the checkpoint writer',
  };
}

export async function preserveEvidence(
  deps: EvidenceDeps,
  incident: { id: string; scope: string; tenantId?: string },
  histories: AsyncIterable<HistoryEvidence>,
  ctx: AuditContext,
): Promise<EvidencePackage> {
  if (!ID_PATTERN.test(incident.id)) throw new InvalidArgumentError('incident id', 'unexpected characters');
  const existing = await preservedEvidence(deps.pool, incident.id);
  if (existing) return existing;
  const dir = path.join(path.resolve(deps.evidenceDir), incident.id, randomUUID());
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Array<{ name: string; kind: string; sha256: string; bytes: number; path: string }> = [];
  const put = (name: string, kind: string, content: Buffer | string): void => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o400, flag: 'wx' });
    files.push({ name, kind, sha256: sha256(content), bytes: Buffer.byteLength(content), path: file });
  };

  const { cp, fresh, reason } = await checkpointForEvidence(deps);
  put(
    'checkpoint.json',
    'audit-checkpoint',
    JSON.stringify(
      cp
        ? {
            fresh,
            ...(reason ? { reason } : {}),
            checkpointSeq: cp.checkpointSeq,
            eventSeq: cp.eventSeq,
            headHash: cp.headHash,
            kid: cp.kid,
            jws: cp.jws,
          }
        : { fresh, reason },
    ),
  );

  const segmentPath = path.join(dir, 'audit-segment.jsonl');
  const out = fs.createWriteStream(segmentPath, { mode: 0o400, flags: 'wx' });
  const { rows: auditRows } = await exportAuditEvents(
    deps.pool,
    { since: new Date(0), ...(incident.tenantId ? { tenantId: incident.tenantId } : {}) },
    'jsonl',
    out,
  );
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const segment = fs.readFileSync(segmentPath);
  files.push({
    name: 'audit-segment.jsonl',
    kind: 'audit-segment',
    sha256: sha256(segment),
    bytes: segment.length,
    path: segmentPath,
  });

  let historyCount = 0;
  for await (const h of histories) {
    put(
      `history-${String(++historyCount).padStart(4, '0')}.json`,
      'workflow-history',
      JSON.stringify({ workflowId: h.workflowId, runId: h.runId, history: JSON.parse(h.json) as unknown }),
    );
  }
  const manifest = JSON.stringify(
    {
      incidentId: incident.id,
      scope: incident.scope,
      checkpointSeq: cp?.checkpointSeq ?? null,
      auditRows,
      histories: historyCount,
      files: files.map(({ name, kind, sha256: h, bytes }) => ({ name, kind, sha256: h, bytes })),
    },
    null,
    2,
  );
  put('manifest.json', 'manifest', manifest);
  fs.chmodSync(dir, 0o500);

  const manifestSha256 = sha256(manifest);
  await withTransaction(deps.pool, async (client) => {
    for (const f of files) {
      await client.query(
        'INSERT INTO incident_evidence (incident_id, name, kind, sha256, bytes, path) VALUES ($1, $2, $3, $4, $5, $6)',
        [incident.id, f.name, f.kind, f.sha256, f.bytes, f.path],
      );
    }
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'incident.evidence_preserved',
        outcome: 'success',
        details: {
          incidentId: incident.id,
          manifestSha256,
          files: files.length,
          checkpointSeq: cp?.checkpointSeq ?? null,
        },
      },
    ]);
  });
  return {
    incidentId: incident.id,
    manifestSha256,
    files: files.length,
    checkpointSeq: cp?.checkpointSeq ?? null,
    auditRows,
    histories: historyCount,
    directory: dir,
  };
}

export interface EvidenceVerification {
  ok: boolean;
  files: Array<{ name: string; ok: boolean; problem?: string }>;
}

/** Re-hashes every preserved file against the insert-only rows and the manifest. */
export async function verifyEvidence(db: Queryable, incidentId: string): Promise<EvidenceVerification> {
  const rows = await db.query<{ name: string; sha256: string; path: string }>(
    'SELECT name, sha256, path FROM incident_evidence WHERE incident_id = $1 ORDER BY name',
    [incidentId],
  );
  const files = rows.rows.map((r) => {
    if (!fs.existsSync(r.path)) return { name: r.name, ok: false, problem: 'missing' };
    const ok = sha256(fs.readFileSync(r.path)) === r.sha256;
    return ok ? { name: r.name, ok } : { name: r.name, ok, problem: 'hash differs' };
  });
  const manifestRow = rows.rows.find((r) => r.name === 'manifest.json');
  if (manifestRow && fs.existsSync(manifestRow.path)) {
    const listed = (
      JSON.parse(fs.readFileSync(manifestRow.path, 'utf8')) as { files: Array<{ name: string; sha256: string }> }
    ).files;
    for (const l of listed) {
      const row = rows.rows.find((r) => r.name === l.name);
      if (!row || row.sha256 !== l.sha256)
        files.push({ name: l.name, ok: false, problem: 'manifest and database disagree' });
    }
  }
  return { ok: rows.rows.length > 0 && !!manifestRow && files.every((f) => f.ok), files };
}
