/**
 * An export job's life, each step audited with identifiers and counts only: begun (refused while an
 * incident freezes the tenant's exports; the job key made and stored wrapped, in the transaction of its
 * `export.started` event), written (the signed manifest; `export.completed`), and ended — its key
 * destroyed (crypto-shredding, `export.key.destroyed`) and its files removed, after the retention period or
 * at once when the job failed. Each step is safe to repeat (activities are retried).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { isResourceType } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError, ScopeUnderIncidentError } from '../errors/index.js';
import { assertTypesWithinPurpose, isPurpose, purposePolicy } from '../fhir/classification.js';
import type { Purpose } from '../fhir/classification.js';
import { holdCovering, legalHoldCovering } from '../incidents/holds.js';
import type { KekProvider } from '../keys/kek-provider.js';
import type { AuditSigningKeySource } from '../keys/purpose-keys.js';
import { withTransaction } from '../store/pool.js';
import { tenantExists } from '../store/tenants.js';
import type { Pool } from '../store/pool.js';
import {
  destroyJobKey,
  insertExportJob,
  markExportWritten,
  readExportJob,
  storedTypes,
  tenantIntegrations,
} from './export-repository.js';
import type { ExportJob } from './export-repository.js';
import { jobKeyIdFor, newJobKey } from './job-key.js';
import { EXPORT_FORMAT, MANIFEST_FILE, sha256OfFile, signManifest, writeManifest } from './manifest.js';
import type { ExportManifest, ManifestFile } from './manifest.js';

export interface BeginExport {
  jobId: string;
  tenantId: string;
  workflowId: string;
  purpose: string;
  /** Absent: every type the purpose allows that the tenant has records of. */
  types?: string[];
  since: string | null;
  /** The directory the files go to (absolute); the job writes into `<to>/<jobId>`. */
  to: string;
}

export interface BegunExport {
  jobId: string;
  keyId: string;
  directory: string;
  types: string[];
  created: string;
}

export function assertExportPurpose(purpose: string): Purpose {
  if (!isPurpose(purpose)) throw new InvalidArgumentError('--purpose', `unknown purpose ${JSON.stringify(purpose)}`);
  return purpose;
}

/**
 * Refused (ScopeUnderIncidentError naming the incident, audited) while an incident freezes the tenant's exports:
 * on the tenant, or on any of its integrations or their vendors, since the export reads every integration's records.
 */
export async function assertNotFrozen(pool: Pool, tenantId: string, audit: AuditContext, jobId: string): Promise<void> {
  let hold = await holdCovering(pool, 'exports_frozen', { tenantId });
  for (const i of hold ? [] : await tenantIntegrations(pool, tenantId)) {
    hold ??= await holdCovering(pool, 'exports_frozen', { tenantId, integrationId: i.id, vendor: i.vendor });
  }
  if (!hold) return;
  const refused = new ScopeUnderIncidentError('export', hold.incident_id, hold.scope);
  await recordAuditEvent(pool, {
    ...audit,
    action: 'export.refused',
    outcome: 'failure',
    tenantId,
    details: { jobId, incidentId: hold.incident_id, scope: hold.scope, errorCode: refused.code },
  });
  throw refused;
}

export async function beginExport(
  deps: { pool: Pool; kek: KekProvider },
  b: BeginExport,
  audit: AuditContext,
): Promise<BegunExport> {
  const purpose = assertExportPurpose(b.purpose);
  if (!path.isAbsolute(b.to)) throw new InvalidArgumentError('--to', 'must be an absolute path');
  const existing = await readExportJob(deps.pool, b.jobId);
  if (existing) return begun(existing);
  if (!(await tenantExists(deps.pool, b.tenantId))) throw new NotFoundError('tenant', b.tenantId);
  await assertNotFrozen(deps.pool, b.tenantId, audit, b.jobId);
  const unknown = (b.types ?? []).filter((t) => !isResourceType(t));
  if (unknown.length > 0) throw new InvalidArgumentError('types', `unknown resource type(s) ${unknown.join(', ')}`);
  const wanted = b.types ?? [...purposePolicy(purpose).resourceTypes];
  assertTypesWithinPurpose(purpose, wanted);
  const present = new Set(await storedTypes(deps.pool, b.tenantId, wanted));
  // Named types are exported even when empty (the recipient sees a count of 0); by default only stored ones.
  const types = b.types ?? wanted.filter((t) => present.has(t));
  const directory = path.join(b.to, b.jobId);
  await fs.mkdir(directory, { recursive: true, mode: 0o700 });
  const keyId = jobKeyIdFor(b.jobId);
  const { key, wrapped } = await newJobKey(deps.kek, { tenantId: b.tenantId, jobId: b.jobId, keyId });
  key.fill(0);
  await withTransaction(deps.pool, async (client) => {
    const inserted = await insertExportJob(client, {
      id: b.jobId,
      tenantId: b.tenantId,
      workflowId: b.workflowId,
      purpose,
      resourceTypes: types,
      since: b.since,
      directory,
      keyId,
      wrapped,
      requestedBy: audit.actor,
    });
    if (!inserted) return;
    await appendAuditEvents(client, [
      {
        ...audit,
        action: 'export.started',
        outcome: 'success',
        tenantId: b.tenantId,
        details: { jobId: b.jobId, keyId, purpose, types, since: b.since, kekId: wrapped.kekId },
      },
    ]);
  });
  const job = await readExportJob(deps.pool, b.jobId);
  if (!job) throw new NotFoundError('export job', b.jobId);
  return begun(job);
}

function begun(job: ExportJob): BegunExport {
  if (job.status !== 'writing' && job.status !== 'written')
    throw new ConflictError('export job', job.id, `is ${job.status}`);
  return {
    jobId: job.id,
    keyId: job.keyId,
    directory: job.directory,
    types: job.resourceTypes,
    created: job.createdAt,
  };
}

/** One file written: its counts in the chain. */
export async function auditFileWritten(pool: Pool, job: ExportJob, f: ManifestFile, audit: AuditContext) {
  await recordAuditEvent(pool, {
    ...audit,
    action: 'export.file_written',
    outcome: 'success',
    tenantId: job.tenantId,
    details: { jobId: job.id, resourceType: f.resourceType, count: f.count, bytes: f.bytes, sha256: f.sha256 },
  });
}

/** Signs and writes the manifest, marks the job written with its retention deadline; `export.completed`. */
export async function completeExport(
  deps: { pool: Pool; signer: AuditSigningKeySource },
  jobId: string,
  files: ManifestFile[],
  retainUntil: string,
  audit: AuditContext,
): Promise<{ manifestSha256: string; kid: string }> {
  const job = await readExportJob(deps.pool, jobId);
  if (!job) throw new NotFoundError('export job', jobId);
  if (job.status !== 'writing' && job.status !== 'written')
    throw new ConflictError('export job', jobId, `is ${job.status}`);
  const signing = await deps.signer.current();
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    jobId,
    tenantId: job.tenantId,
    purpose: job.purpose,
    types: job.resourceTypes,
    since: job.since,
    created: job.createdAt,
    jobKeyId: job.keyId,
    cipher: 'AES-256-GCM/chunked-v1',
    files,
    kid: signing.kid,
  };
  const jws = await signManifest(manifest, signing.privateKey);
  await writeManifest(job.directory, manifest, jws);
  const manifestSha256 = await sha256OfFile(path.join(job.directory, MANIFEST_FILE));
  const counts = Object.fromEntries(files.map((f) => [f.resourceType, { count: f.count, bytes: f.bytes }]));
  await withTransaction(deps.pool, async (client) => {
    const locked = await readExportJob(client, jobId, true);
    if (locked?.status !== 'writing') return;
    await markExportWritten(client, jobId, counts, retainUntil);
    await appendAuditEvents(client, [
      {
        ...audit,
        action: 'export.completed',
        outcome: 'success',
        tenantId: job.tenantId,
        details: { jobId, files: files.length, counts, manifestSha256, kid: signing.kid, retainUntil },
      },
    ]);
  });
  return { manifestSha256, kid: signing.kid };
}

export type EndReason = 'retention' | 'failed';

export interface EndedExport {
  /** The key was destroyed by this call (false: already destroyed). */
  keyDestroyed: boolean;
  filesRemoved: number;
  /** A legal hold covers the tenant: nothing was destroyed; ask again later. */
  deferredBy?: string;
}

/**
 * Crypto-shreds the job: the wrapped key destroyed in the transaction of its audit event, then the job's
 * files removed. After the retention period this waits for any legal hold on the tenant (deferredBy).
 */
export async function endExport(
  pool: Pool,
  jobId: string,
  reason: EndReason,
  audit: AuditContext,
): Promise<EndedExport> {
  const job = await readExportJob(pool, jobId);
  if (!job) return { keyDestroyed: false, filesRemoved: 0 };
  if (reason === 'retention') {
    const hold = await legalHoldCovering(pool, job.tenantId);
    if (hold && job.wrapped) return { keyDestroyed: false, filesRemoved: 0, deferredBy: hold.incident_id };
  }
  const keyDestroyed = await withTransaction(pool, async (client) => {
    const destroyed = await destroyJobKey(client, jobId, reason === 'retention' ? 'shredded' : 'failed');
    if (destroyed)
      await appendAuditEvents(client, [
        {
          ...audit,
          action: 'export.key.destroyed',
          outcome: 'success',
          tenantId: job.tenantId,
          details: { jobId, keyId: job.keyId, reason },
        },
      ]);
    return destroyed;
  });
  let filesRemoved = 0;
  const names = await fs.readdir(job.directory).catch(() => [] as string[]);
  for (const name of names) {
    await fs.rm(path.join(job.directory, name), { force: true });
    filesRemoved += 1;
  }
  await fs.rmdir(job.directory).catch(() => undefined);
  // Also on a retry that finds the key already destroyed but files left behind (a worker lost in between).
  if (keyDestroyed || filesRemoved > 0)
    await recordAuditEvent(pool, {
      ...audit,
      action: 'export.files_removed',
      outcome: 'success',
      tenantId: job.tenantId,
      details: { jobId, filesRemoved },
    });
  return { keyDestroyed, filesRemoved };
}
