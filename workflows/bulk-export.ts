/**
 * Bulk Data `$export`, as a child of the nightly sync (the parent picks the id and runs it when the plan's
 * strategy is `bulk`) — the playbook:
 *   1. kick-off (`Prefer: respond-async`) for the types; the status URL it returns is recorded here;
 *   2. poll the status URL; between polls a durable timer waits what the vendor asked (Retry-After as seconds
 *      or an HTTP-date) or backs off (429, transient 5xx, no hint) — never a sleeping activity; X-Progress is
 *      shown by the `bulkProgress` query;
 *   3. from the manifest: output and error files by bounded parallel activities (one per file, each streaming
 *      and storing in batches, resuming after a killed worker), then the deleted files as tombstones;
 *      a file that expired (404/410) leads to exactly one new kick-off;
 *   4. each type's checkpoint becomes the manifest's transactionTime only when every file of it committed,
 *      no line was malformed and the count stored matches the manifest's; otherwise the type is reported
 *      incomplete and the next run fetches it again (types whose deletions the parent reads from `_history`
 *      afterwards are left for the parent to move once it has);
 *   5. DELETE the status URL (done, failed or cancelled: the vendor may drop the files), then report.
 * Cancelling this workflow cancels its downloads and sends that DELETE in a non-cancellable scope.
 */
import { CancellationScope, defineQuery, patched, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import type { BulkExportActivities } from '../activities/index.js';
import type { BulkFileRef, BulkLevel, BulkManifest } from '../activities/bulk-types.js';
import type { ResourceType } from '../lib/domain.js';
import type { BulkExportResult, BulkProgress } from './bulk-export-tally.js';
import { BulkTally, exportFailure, isFailureOfType, runBounded } from './bulk-export-tally.js';
import { bulkCleanupPreset, bulkFilePreset, bulkStatusPreset, storePreset } from './presets.js';

export type { BulkExportResult, BulkProgress, BulkTypeResult } from './bulk-export-tally.js';

export interface BulkExportInput {
  tenantId: string;
  integrationId: string;
  level: BulkLevel;
  /** The vendor's Group id (level 'group'). */
  groupId?: string;
  /** The types to export, each with its checkpoint (null: never synced). */
  types: Array<{ resourceType: ResourceType; since: string | null }>;
  /** `_typeFilter` queries, e.g. `Observation?category=laboratory`. */
  typeFilter?: string[];
  /** The vendor endpoint's rate-limited task queue (the sync plan's pageTaskQueue): vendor-bound steps run there. */
  pageTaskQueue?: string;
  /**
   * Types whose checkpoint the parent moves itself, after reading their deletions from `_history` (their results
   * say `checkpointHeld`); the others' move here.
   */
  holdCheckpoints?: ResourceType[];
  /** Files downloaded at once (default 3, at most 8). */
  concurrency?: number;
  /**
   * How long a file download may go without a heartbeat before it is retried elsewhere (a dead worker), in
   * seconds; default the preset's 30 s. The download heartbeats at least every 5 s. For tests that kill workers.
   */
  fileHeartbeatTimeoutSeconds?: number;
}

export const bulkProgressQuery = defineQuery<BulkProgress>('bulkProgress');

/** Waiting for the export: the first hint-less poll waits 1 s, doubling to at most a minute. */
const FIRST_POLL_MS = 1_000;
const MAX_IDLE_POLL_MS = 60_000;
/** Shortest wait between polls whatever the vendor says (a Retry-After of 0 must not spin). */
const MIN_POLL_MS = 500;
/** Failed polls in a row (429 without end, 5xx, network) before the export is given up. */
const MAX_POLL_FAILURES = 20;
/** How long an export may take to prepare before it is given up. */
const PREPARE_DEADLINE_MS = 24 * 60 * 60 * 1000;

export async function bulkExport(input: BulkExportInput): Promise<BulkExportResult> {
  const ids = { tenantId: input.tenantId, integrationId: input.integrationId };
  const onVendorQueue = <T extends object>(preset: T): T =>
    input.pageTaskQueue ? { ...preset, taskQueue: input.pageTaskQueue } : preset;
  const status = proxyActivities<BulkExportActivities>(onVendorQueue(bulkStatusPreset));
  const files = proxyActivities<BulkExportActivities>(
    onVendorQueue(
      input.fileHeartbeatTimeoutSeconds
        ? { ...bulkFilePreset, heartbeatTimeout: input.fileHeartbeatTimeoutSeconds * 1000 }
        : bulkFilePreset,
    ),
  );
  const cleanup = proxyActivities<BulkExportActivities>(onVendorQueue(bulkCleanupPreset));
  const store = proxyActivities<BulkExportActivities>(storePreset);

  const types = input.types.map((t) => t.resourceType);
  // One kick-off covers every type, so `_since` is the oldest checkpoint (none if any type was never synced).
  // Types with a later checkpoint get some resources again: the upsert counts them unchanged. Caveat (IG): a
  // `_since` Group export may leave out older resources of patients who joined the group since then.
  const since = input.types.some((t) => t.since === null)
    ? null
    : input.types.reduce<string | null>((min, t) => (min === null || t.since! < min ? t.since : min), null);
  // Three files at once keep a worker's thread busy while PostgreSQL commits; histories from before read two.
  const defaultConcurrency = patched('bulk-files-three-at-once') ? 3 : 2;
  const concurrency = Math.min(Math.max(input.concurrency ?? defaultConcurrency, 1), 8);
  const tally = new BulkTally(types);
  let statusUrl: string | null = null;
  setHandler(bulkProgressQuery, () => tally.progress);

  try {
    for (;;) {
      tally.progress.phase = 'kick-off';
      const kickoff = await status.bulkKickoff({
        ...ids,
        level: input.level,
        ...(input.groupId !== undefined ? { groupId: input.groupId } : {}),
        types,
        since,
        ...(input.typeFilter ? { typeFilter: input.typeFilter } : {}),
      });
      statusUrl = kickoff.statusUrl;
      tally.startRound(kickoff.sinceSent);
      const manifest = await awaitManifest(statusUrl);
      if (await downloadAll(manifest)) break;
      // A file expired before we read it: this round's files are useless; start again exactly once.
      await deleteExport();
      if (tally.result.kickoffs >= 2)
        throw exportFailure('BULK_FILE_EXPIRED', 'files of the export expired twice before they could be read');
    }
    tally.progress.phase = 'checkpoints';
    for (const type of tally.completeTypes()) {
      const highWater = tally.result.transactionTime;
      if (input.holdCheckpoints?.includes(type)) {
        tally.checkpointed(type, highWater, true);
        continue;
      }
      await store.advanceBulkCheckpoint({ ...ids, resourceType: type, highWater, kickoffs: tally.result.kickoffs });
      tally.checkpointed(type, highWater);
    }
    await deleteExport();
    tally.progress.phase = 'done';
    return tally.result;
  } catch (err) {
    // Done with this export whatever happened (cancelled included): tell the vendor, beyond cancellation.
    await CancellationScope.nonCancellable(deleteExport);
    throw err;
  }

  async function awaitManifest(url: string): Promise<BulkManifest> {
    tally.progress.phase = 'preparing';
    let waitedMs = 0;
    let idlePolls = 0;
    let failures = 0;
    for (;;) {
      const answer = await status.bulkPollStatus({ ...ids, statusUrl: url });
      tally.progress.polls += 1;
      let delayMs: number;
      switch (answer.state) {
        case 'complete':
          return answer.manifest;
        case 'in-progress':
          failures = 0;
          tally.progress.vendorProgress = answer.progress;
          delayMs = answer.retryAfterMs ?? Math.min(FIRST_POLL_MS * 2 ** idlePolls++, MAX_IDLE_POLL_MS);
          break;
        case 'retry':
          if (++failures > MAX_POLL_FAILURES)
            throw exportFailure(
              'BULK_STATUS_UNAVAILABLE',
              `${failures - 1} status polls failed in a row (${answer.code})`,
            );
          delayMs = answer.retryAfterMs ?? Math.min(FIRST_POLL_MS * 2 ** failures, MAX_IDLE_POLL_MS);
          break;
        default: {
          const never: never = answer;
          throw exportFailure('BULK_EXPORT_FAILED', `unknown status answer ${JSON.stringify(never)}`);
        }
      }
      delayMs = Math.max(delayMs, MIN_POLL_MS);
      waitedMs += delayMs;
      if (waitedMs > PREPARE_DEADLINE_MS)
        throw exportFailure('BULK_EXPORT_TIMED_OUT', 'the vendor did not finish preparing the export within a day');
      await sleep(delayMs);
    }
  }

  /** Every file of the manifest; false when one had expired (the round is abandoned). */
  async function downloadAll(manifest: BulkManifest): Promise<boolean> {
    tally.progress.phase = 'downloading';
    tally.manifest(manifest);
    const common = { ...ids, requiresAccessToken: manifest.requiresAccessToken };
    const time = manifest.transactionTime;
    const wanted = (f: BulkFileRef): boolean => (types as string[]).includes(f.type);
    const jobs: Array<() => Promise<void>> = [
      ...manifest.output.flatMap((file, fileIndex) =>
        wanted(file)
          ? [
              async () => {
                const resourceType = file.type as ResourceType;
                const input = { ...common, fileIndex, url: file.url, resourceType, transactionTime: time };
                tally.output(resourceType, fileIndex, await files.bulkOutputFile(input));
              },
            ]
          : (tally.ignored(file, fileIndex), []),
      ),
      ...manifest.error.map((file, fileIndex) => async () => {
        const input = { ...common, fileIndex, url: file.url, transactionTime: time };
        tally.errors(fileIndex, await files.bulkErrorFile(input));
      }),
    ];
    let expired = false;
    const guard = (job: () => Promise<void>) => async (): Promise<boolean> => {
      try {
        await job();
        return true;
      } catch (err) {
        if (!isFailureOfType(err, 'BULK_FILE_EXPIRED')) throw err;
        expired = true;
        return false;
      }
    };
    await runBounded(jobs.map(guard), concurrency);
    if (expired) return false;
    // Deletions after the outputs: a tombstone at transactionTime outranks anything stored before it.
    const deletions = manifest.deleted.map((file, fileIndex) => async () => {
      const input = { ...common, fileIndex, url: file.url, transactionTime: time, types };
      tally.deleted(fileIndex, await files.bulkDeletedFile(input));
    });
    await runBounded(deletions.map(guard), concurrency);
    return !expired;
  }

  async function deleteExport(): Promise<void> {
    if (statusUrl === null) return;
    const url = statusUrl;
    statusUrl = null;
    try {
      await cleanup.bulkDelete({ ...ids, statusUrl: url });
    } catch {
      // A courtesy: the vendor expires the files itself; the export's own outcome stands.
    }
  }
}
