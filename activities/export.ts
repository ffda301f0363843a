/**
 * Activities of the batch export (workflows/export.ts). Each step is a library operation
 * (lib/exports/jobs.ts) that audits itself under the export's requester, with the workflow id as
 * correlation id, and is safe to repeat. A type's file is written by one activity that heartbeats after
 * every page: a worker that dies mid-file is noticed by the heartbeat timeout and the file is written again
 * from the start on the retry (the partial file is never taken for a complete one). Results are counts,
 * checksums, paths and ids — nothing of the content reaches the history.
 */
import { Context } from '@temporalio/activity';
import type { AuditContext } from '../lib/audit/chain.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { ResourceType } from '../lib/domain.js';
import { NotFoundError } from '../lib/errors/index.js';
import { readExportJob } from '../lib/exports/export-repository.js';
import { writeTypeFile } from '../lib/exports/exporter.js';
import type { TypeExportResult } from '../lib/exports/exporter.js';
import { unwrapJobKey } from '../lib/exports/job-key.js';
import { assertExportPurpose, auditFileWritten, beginExport, completeExport, endExport } from '../lib/exports/jobs.js';
import type { BegunExport, EndReason, EndedExport } from '../lib/exports/jobs.js';
import type { ManifestFile } from '../lib/exports/manifest.js';
import type { ExportActivityDeps } from './deps.js';

export interface ExportActor {
  requestedBy: string;
}

function auditCtx(actor: ExportActor): AuditContext {
  const info = Context.current().info;
  return {
    actor: actor.requestedBy,
    correlationId: info.workflowExecution?.workflowId ?? `activity:${info.activityId}`,
  };
}

export interface BeginExportInput {
  jobId: string;
  tenantId: string;
  purpose: string;
  types?: string[];
  since: string | null;
  to: string;
}

export function createExportActivities(deps: ExportActivityDeps) {
  return {
    /** Refused while an incident freezes the tenant's exports (SCOPE_UNDER_INCIDENT, non-retryable). */
    async beginExportJob(actor: ExportActor, input: BeginExportInput): Promise<BegunExport> {
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? input.jobId;
      return beginExport(deps, { ...input, workflowId }, auditCtx(actor));
    },

    /** One type's file, written whole (again, on a retry); heartbeats the count after every page. */
    async writeExportFile(actor: ExportActor, jobId: string, resourceType: ResourceType): Promise<TypeExportResult> {
      const activity = Context.current();
      const job = await readExportJob(deps.pool, jobId);
      if (!job) throw new NotFoundError('export job', jobId);
      const key = await unwrapJobKey(deps.kek, { tenantId: job.tenantId, jobId, keyId: job.keyId }, job.wrapped);
      try {
        const result = await writeTypeFile(key, {
          db: deps.pool,
          lookup: deps.keyring.lookup,
          tenantId: job.tenantId,
          jobId,
          keyId: job.keyId,
          directory: job.directory,
          resourceType,
          purpose: assertExportPurpose(job.purpose),
          since: job.since,
          pageSize: deps.pageSize,
          onPage: (written) => activity.heartbeat({ resourceType, written }),
        });
        await auditFileWritten(deps.pool, job, result, auditCtx(actor));
        return result;
      } finally {
        key.fill(0);
      }
    },

    async completeExportJob(
      actor: ExportActor,
      jobId: string,
      files: ManifestFile[],
      retainUntil: string,
    ): Promise<{ manifestSha256: string; kid: string }> {
      return completeExport(deps, jobId, files, retainUntil, auditCtx(actor));
    },

    /** The job failed or was cancelled: `export.failed` with the error's code, then its key and files destroyed. */
    async abandonExportJob(actor: ExportActor, jobId: string, errorCode: string): Promise<EndedExport> {
      const job = await readExportJob(deps.pool, jobId);
      if (job?.status === 'writing')
        await recordAuditEvent(deps.pool, {
          ...auditCtx(actor),
          action: 'export.failed',
          outcome: 'failure',
          tenantId: job.tenantId,
          details: { jobId, errorCode },
        });
      return endExport(deps.pool, jobId, 'failed', auditCtx(actor));
    },

    /** After the retention period: crypto-shreds the job unless a legal hold covers its tenant (deferredBy). */
    async shredExportJob(actor: ExportActor, jobId: string, reason: EndReason): Promise<EndedExport> {
      return endExport(deps.pool, jobId, reason, auditCtx(actor));
    },
  };
}
