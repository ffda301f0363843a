/**
 * A batch export, one workflow per job — the playbook:
 *   1. begin: refused while an incident freezes the tenant's exports (non-retryable, naming the incident);
 *      a per-job key is made and stored wrapped by the KEK (export_jobs), audited;
 *   2. one activity per type writes `<Type>.ndjson.enc`: the stored records decrypted, minimised for the
 *      export's purpose, encrypted under the job key (chunked AES-256-GCM); each heartbeats, and a type
 *      whose worker died is written again elsewhere;
 *   3. the manifest (counts, SHA-256 of every file, job key id, types, since, purpose, created) is signed
 *      with the audit signing key and written beside the files;
 *   4. a durable timer waits out the retention period (or the `exportShred` signal), then the job key is
 *      destroyed and the files removed — deferred, and looked at again, while a legal hold covers the tenant.
 * A failure or cancellation while writing destroys the job's key and files at once (a partial export is
 * never left readable). The retention wait is not cancellable: containment cancelling the tenant's
 * workflows must not leave a job key alive forever; the shredding itself waits for legal holds.
 * Only identifiers, counts, checksums and paths are in the history. Input, query and signal: export-api.ts.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  proxyActivities,
  setHandler,
  sleep,
  uuid4,
} from '@temporalio/workflow';
import type { ExportActivities } from '../activities/index.js';
import type { ExportActor } from '../activities/export.js';
import type { ResourceType } from '../lib/domain.js';
import type { ManifestFile } from '../lib/exports/manifest.js';
import { exportProgressQuery, exportShredSignal } from './export-api.js';
import type { ExportInput, ExportProgress, ExportResult } from './export-api.js';
import { exportFilePreset, storePreset } from './presets.js';

export type { ExportInput, ExportProgress, ExportResult } from './export-api.js';

const DAY_SECONDS = 24 * 3600;

const store = proxyActivities<ExportActivities>(storePreset);
const files = proxyActivities<ExportActivities>(exportFilePreset);

/** `YYYYMMDD-HHMMSS-<8 hex>` from the workflow's (deterministic) clock and random source. */
function newJobId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '');
  return `${t.slice(0, 8)}-${t.slice(9, 15)}-${uuid4().slice(0, 8)}`;
}

export async function batchExport(input: ExportInput): Promise<ExportResult> {
  const jobId = input.jobId ?? newJobId();
  const actor: ExportActor = { requestedBy: input.requestedBy };
  const progress: ExportProgress = { jobId, phase: 'starting', types: [] };
  let shredRequested = false;
  setHandler(exportProgressQuery, () => progress);
  setHandler(exportShredSignal, () => {
    shredRequested = true;
  });

  const begun = await store.beginExportJob(actor, {
    jobId,
    tenantId: input.tenantId,
    purpose: input.purpose,
    ...(input.types ? { types: input.types } : {}),
    since: input.since ?? null,
    to: input.to,
  });
  progress.directory = begun.directory;
  progress.types = begun.types.map((resourceType) => ({ resourceType, done: false }));
  progress.phase = 'writing';

  const written: ManifestFile[] = [];
  let completed: { manifestSha256: string; kid: string };
  const retainUntil = new Date(Date.now() + input.retainSeconds * 1000).toISOString();
  try {
    for (const type of progress.types) {
      const f = await files.writeExportFile(actor, jobId, type.resourceType as ResourceType);
      written.push({ name: f.name, resourceType: f.resourceType, count: f.count, bytes: f.bytes, sha256: f.sha256 });
      Object.assign(type, { done: true, count: f.count, bytes: f.bytes });
    }
    completed = await store.completeExportJob(actor, jobId, written, retainUntil);
  } catch (err) {
    progress.phase = 'failed';
    await CancellationScope.nonCancellable(() => store.abandonExportJob(actor, jobId, codeOf(err)));
    throw err;
  }
  progress.phase = 'retained';
  progress.retainUntil = retainUntil;

  // Durable: survives worker restarts; not cancellable (see above); the signal ends it early.
  await CancellationScope.nonCancellable(() => condition(() => shredRequested, input.retainSeconds * 1000));
  for (;;) {
    const ended = await CancellationScope.nonCancellable(() => store.shredExportJob(actor, jobId, 'retention'));
    if (ended.deferredBy === undefined) {
      progress.phase = 'shredded';
      delete progress.deferredBy;
      return {
        jobId,
        directory: begun.directory,
        files: written.map((f) => ({ resourceType: f.resourceType, count: f.count, bytes: f.bytes })),
        manifestSha256: completed.manifestSha256,
        retainUntil,
        filesRemoved: ended.filesRemoved,
      };
    }
    progress.phase = 'shred-deferred';
    progress.deferredBy = ended.deferredBy;
    await CancellationScope.nonCancellable(() => sleep((input.holdRecheckSeconds ?? DAY_SECONDS) * 1000));
  }
}

function codeOf(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return cause.type ?? 'UNCLASSIFIED';
  return cause instanceof Error ? cause.name : 'UNCLASSIFIED';
}
