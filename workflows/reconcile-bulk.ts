/**
 * The Bulk Data part of a reconcile run (workflows/reconcile.ts): one full export of the run's types (kick-off and
 * status polls are the sync's own Bulk Data activities; waits between polls are durable timers), then each output
 * file compared by one activity, then the export's status URL deleted. The state it carries is URLs the vendor
 * gave, file positions and counts — no content.
 */
import { proxyActivities, sleep } from '@temporalio/workflow';
import type { BulkExportActivities, ReconcileActivities } from '../activities/index.js';
import type { ResourceType } from '../lib/domain.js';
import type { BatchTally } from '../lib/reconcile/tally.js';
import { bulkCleanupPreset, bulkFilePreset, bulkStatusPreset } from './presets.js';

export interface BulkReconcileState {
  level: 'system' | 'group' | 'patient';
  groupId?: string;
  typeFilter?: string[];
  statusUrl: string | null;
  manifest: {
    transactionTime: string;
    requiresAccessToken: boolean;
    files: Array<{ resourceType: ResourceType; url: string; fileIndex: number }>;
  } | null;
  /** Files compared so far. */
  next: number;
  done: boolean;
}

const FIRST_POLL_MS = 1_000;
const MAX_IDLE_POLL_MS = 60_000;
const MIN_POLL_MS = 500;
const MAX_POLL_FAILURES = 20;

const status = proxyActivities<BulkExportActivities>(bulkStatusPreset);
const cleanup = proxyActivities<BulkExportActivities>(bulkCleanupPreset);
const files = proxyActivities<ReconcileActivities>(bulkFilePreset);

export async function bulkReconcileStep(
  scope: { runId: string; tenantId: string; integrationId: string },
  types: ResourceType[],
  batchSize: number,
  bulk: BulkReconcileState,
  tallied: (type: string, tally: BatchTally) => void,
): Promise<void> {
  const ids = { tenantId: scope.tenantId, integrationId: scope.integrationId };
  if (bulk.statusUrl === null) {
    const kicked = await status.bulkKickoff({
      ...ids,
      level: bulk.level,
      ...(bulk.groupId ? { groupId: bulk.groupId } : {}),
      ...(bulk.typeFilter ? { typeFilter: bulk.typeFilter } : {}),
      types,
      since: null,
    });
    bulk.statusUrl = kicked.statusUrl;
    return;
  }
  if (bulk.manifest === null) {
    let wait = FIRST_POLL_MS;
    let failures = 0;
    for (;;) {
      const polled = await status.bulkPollStatus({ ...ids, statusUrl: bulk.statusUrl });
      if (polled.state === 'complete') {
        const wanted = new Set<string>(types);
        bulk.manifest = {
          transactionTime: polled.manifest.transactionTime,
          requiresAccessToken: polled.manifest.requiresAccessToken,
          files: polled.manifest.output.flatMap((f, fileIndex) =>
            wanted.has(f.type) ? [{ resourceType: f.type as ResourceType, url: f.url, fileIndex }] : [],
          ),
        };
        return;
      }
      if (polled.state === 'retry' && ++failures > MAX_POLL_FAILURES)
        throw new Error(`the export's status failed ${MAX_POLL_FAILURES} times in a row (${polled.code})`);
      if (polled.state === 'in-progress') failures = 0;
      await sleep(Math.max(MIN_POLL_MS, polled.retryAfterMs ?? wait));
      wait = Math.min(wait * 2, MAX_IDLE_POLL_MS);
    }
  }
  const file = bulk.manifest.files[bulk.next];
  if (file) {
    const tally = await files.reconcileBulkFile({
      ...scope,
      resourceType: file.resourceType,
      fileIndex: file.fileIndex,
      url: file.url,
      requiresAccessToken: bulk.manifest.requiresAccessToken,
      transactionTime: bulk.manifest.transactionTime,
      batchSize,
    });
    tallied(file.resourceType, tally);
    bulk.next += 1;
    return;
  }
  // Courtesy: the vendor may drop the files now. A failure here changes nothing about the comparison.
  await cleanup.bulkDelete({ ...ids, statusUrl: bulk.statusUrl }).catch(() => undefined);
  bulk.done = true;
}
