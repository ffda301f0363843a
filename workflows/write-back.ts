/**
 * writeBack (`write-back-<integration>`): sends an integration's queued outbox changes through the vendor door,
 * oldest first, one activity per change (so a record's changes go strictly in order). Signal-with-started by
 * whoever queues a change (lib/writeback/notifier.ts); woken by `outboxChanged`; idles on a condition (no busy
 * loop) when nothing is pending. While an incident holds the integration's writes the changes stay pending and
 * the workflow waits on a durable timer (or a signal) before it looks again; after recovery each is sent once.
 * Continues as new when its history grows, carrying its counts. The history carries change ids, element names,
 * statuses and codes — never values.
 */
import {
  ActivityFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { WriteBackActivities } from '../activities/index.js';
import { storePreset, writeBackSendPreset } from './presets.js';

export interface WriteBackInput {
  tenantId: string;
  integrationId: string;
  /**
   * Seconds between looks while an incident holds the writes or the integration is not active, and before
   * changes whose send failed are tried again (default 60); a signal looks at once.
   */
  holdRecheckSeconds?: number;
  /** Changes a run handles before it continues as new at its next quiet moment (default 500). */
  changesPerRun?: number;
  /**
   * How long a send may go without a heartbeat before it is sent again from another worker (a dead worker), in
   * seconds; default the preset's 10 s. A send heartbeats every 2 s. For tests that kill workers.
   */
  sendHeartbeatTimeoutSeconds?: number;
  /** Set only by continueAsNew: the counts so far. */
  progress?: WriteBackProgress;
}

/** Counts by outcome since the workflow first started (carried across continue-as-new). */
export interface WriteBackProgress {
  sent: number;
  refused: number;
  conflict: number;
  /** Changes found no longer pending (cancelled, or settled by an earlier attempt). */
  skipped: number;
  /** Sends that failed for a reason not the vendor's refusal (left pending, tried again on the next signal). */
  failed: number;
  /** Times the workflow found the integration's writes held (by an incident, or the integration not active). */
  held: number;
  /** The incident holding the writes now (or `integration <status>`), if any. */
  heldBy: string | null;
  /** Pending changes seen at the last look. */
  pending: number;
  continuedAsNew: number;
}

/** Something was queued (or a refused change was retried): drain what is pending. Carries nothing. */
export const outboxChangedSignal = defineSignal('outboxChanged');
export const writeBackProgressQuery = defineQuery<WriteBackProgress>('writeBackProgress');

/** Changes listed per look; the list is taken again after each batch. */
const BATCH = 50;
/** A run continues as new after this many changes (or when the server suggests it), at a quiet moment. */
const CHANGES_PER_RUN = 500;

const store = proxyActivities<WriteBackActivities>(storePreset);

export async function writeBack(input: WriteBackInput): Promise<void> {
  const scope = { tenantId: input.tenantId, integrationId: input.integrationId };
  const vendor = proxyActivities<WriteBackActivities>(
    input.sendHeartbeatTimeoutSeconds
      ? { ...writeBackSendPreset, heartbeatTimeout: input.sendHeartbeatTimeoutSeconds * 1000 }
      : writeBackSendPreset,
  );
  const progress: WriteBackProgress = input.progress ?? {
    sent: 0,
    refused: 0,
    conflict: 0,
    skipped: 0,
    failed: 0,
    held: 0,
    heldBy: null,
    pending: 0,
    continuedAsNew: 0,
  };
  let woken = false;
  /** Changes whose send failed in this run: not tried again until the next signal. */
  const failed = new Set<string>();
  setHandler(outboxChangedSignal, () => {
    woken = true;
  });
  setHandler(writeBackProgressQuery, () => ({ ...progress }));
  let handled = 0;
  const recheckMs = (input.holdRecheckSeconds ?? 60) * 1000;

  for (;;) {
    if (woken) failed.clear();
    woken = false;
    const ids = (await store.listPendingChanges({ ...scope, limit: BATCH + failed.size })).filter(
      (id) => !failed.has(id),
    );
    progress.pending = ids.length;
    if (ids.length === 0) {
      const runIsLong = handled >= (input.changesPerRun ?? CHANGES_PER_RUN) || workflowInfo().continueAsNewSuggested;
      if (runIsLong) await carryOn(input, progress);
      // Changes that failed wait for a signal, or are tried again after the recheck interval.
      if (failed.size === 0) await condition(() => woken);
      else if (!(await condition(() => woken, recheckMs))) failed.clear();
      continue;
    }
    let heldBy: string | null = null;
    for (const changeId of ids.slice(0, BATCH)) {
      try {
        const result = await vendor.sendOutboxChange({ ...scope, changeId });
        handled += 1;
        if (result.outcome === 'held' || result.outcome === 'suspended') {
          heldBy = result.outcome === 'held' ? result.incidentId : `integration ${result.status}`;
          break;
        }
        progress[result.outcome] += 1;
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        // Not retryable: the change stays pending; a signal, or the recheck interval, tries it again.
        failed.add(changeId);
        progress.failed += 1;
      }
    }
    if (heldBy !== progress.heldBy && heldBy !== null) progress.held += 1;
    progress.heldBy = heldBy;
    if (heldBy !== null) await condition(() => woken, recheckMs);
  }
}

async function carryOn(input: WriteBackInput, progress: WriteBackProgress): Promise<never> {
  return continueAsNew<typeof writeBack>({
    ...input,
    progress: { ...progress, continuedAsNew: progress.continuedAsNew + 1 },
  });
}
