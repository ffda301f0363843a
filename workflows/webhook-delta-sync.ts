/**
 * Webhook delta sync, one long-lived workflow per integration (`webhook-sync/<tenant>/<integration>`),
 * signalled-with-start by the webhook receiver for every accepted change notification:
 *   1. wait for a notification, then a short debounce window so a burst becomes one batch;
 *   2. run the integration's incremental sync (`nightlySync`) as a child, restricted to the types the
 *      batch named (all allowed types when one notification named none);
 *   3. go on; notifications that arrive during the child form the next batch;
 *   4. continue as new after `maxBatchesPerRun` batches or when Temporal suggests it, carrying what
 *      is pending. Signals carry webhook ids and type names only (no PHI).
 * A failed child (e.g. the integration was revoked) is recorded and its batch dropped: the nightly
 * schedule catches up, and retrying a revoked integration forever would help nobody.
 * Gap detection (subscription event numbers, missed heartbeats) is not here yet (docs/decisions.md).
 */
import {
  ChildWorkflowFailure,
  ParentClosePolicy,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ResourceType } from '../lib/domain.js';
import type { NightlySyncInput, SyncReport } from './nightly-sync.js';

export interface ChangeNotification {
  webhookId: string;
  /** Types the delivery named; empty: unspecified, sync every allowed type. */
  resourceTypes: ResourceType[];
}

export interface DeltaBatchOutcome {
  childWorkflowId: string;
  notifications: number;
  resourceTypes: ResourceType[] | 'all';
  outcome: 'completed' | 'incomplete' | 'cancelled' | 'failed';
  fetched?: number;
  /** Stable failure type (e.g. INTEGRATION_REVOKED) when the child failed. */
  failure?: string;
}

export interface DeltaSyncState {
  pending: ChangeNotification[];
  /** Recent webhook ids, so a signal repeated by the receiver is counted once. */
  recentIds: string[];
  received: number;
  batches: number;
  lastBatch?: DeltaBatchOutcome;
}

export interface WebhookDeltaSyncInput {
  tenantId: string;
  integrationId: string;
  vendor: string;
  /** Debounce window after the first notification of a batch (default 10 s). */
  debounceSeconds?: number;
  /** Continue as new after this many batches (default 100). */
  maxBatchesPerRun?: number;
  /** Set only by continueAsNew. */
  carried?: DeltaSyncState;
}

export interface PendingNotifications {
  count: number;
  webhookIds: string[];
  resourceTypes: ResourceType[] | 'all';
  received: number;
  batches: number;
  lastBatch?: DeltaBatchOutcome;
}

export const changeNotifiedSignal = defineSignal<[ChangeNotification]>('changeNotified');
export const pendingQuery = defineQuery<PendingNotifications>('pending');

const RECENT_IDS = 1000;

export async function webhookDeltaSync(input: WebhookDeltaSyncInput): Promise<void> {
  const state: DeltaSyncState = input.carried ?? { pending: [], recentIds: [], received: 0, batches: 0 };
  const recent = new Set(state.recentIds);
  let batchesThisRun = 0;

  setHandler(changeNotifiedSignal, (n) => {
    if (recent.has(n.webhookId)) return;
    recent.add(n.webhookId);
    state.recentIds.push(n.webhookId);
    if (state.recentIds.length > RECENT_IDS) recent.delete(state.recentIds.shift()!);
    state.received += 1;
    state.pending.push(n);
  });
  setHandler(pendingQuery, () => ({
    count: state.pending.length,
    webhookIds: state.pending.map((n) => n.webhookId).slice(0, 100),
    resourceTypes: typesOf(state.pending),
    received: state.received,
    batches: state.batches,
    ...(state.lastBatch ? { lastBatch: state.lastBatch } : {}),
  }));

  for (;;) {
    await condition(() => state.pending.length > 0);
    await sleep(`${input.debounceSeconds ?? 10} seconds`);
    const batch = state.pending.splice(0);
    state.lastBatch = await runBatch(input, batch);
    state.batches += 1;
    batchesThisRun += 1;
    if (batchesThisRun >= (input.maxBatchesPerRun ?? 100) || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof webhookDeltaSync>({ ...input, carried: state });
    }
  }
}

async function runBatch(input: WebhookDeltaSyncInput, batch: ChangeNotification[]): Promise<DeltaBatchOutcome> {
  const types = typesOf(batch);
  const childWorkflowId = `sync/${input.tenantId}/${input.integrationId}/webhook-${new Date().toISOString()}`;
  const args: NightlySyncInput = {
    tenantId: input.tenantId,
    integrationId: input.integrationId,
    ...(types === 'all' ? {} : { resourceTypes: types }),
  };
  const base = { childWorkflowId, notifications: batch.length, resourceTypes: types };
  try {
    const report = await executeChild<(i: NightlySyncInput) => Promise<SyncReport>>('nightlySync', {
      workflowId: childWorkflowId,
      args: [args],
      // A sync already under way finishes even if this workflow is terminated.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      searchAttributes: { TenantId: [input.tenantId], IntegrationId: [input.integrationId], Vendor: [input.vendor] },
    });
    return { ...base, outcome: report.outcome, fetched: report.totals.fetched };
  } catch (err) {
    if (!(err instanceof ChildWorkflowFailure)) throw err;
    const cause = err.cause as { type?: string; cause?: { type?: string } } | undefined;
    return { ...base, outcome: 'failed', failure: cause?.type ?? cause?.cause?.type ?? 'UNKNOWN' };
  }
}

/** The union of the named types; 'all' as soon as one notification named none. */
function typesOf(batch: ChangeNotification[]): ResourceType[] | 'all' {
  if (batch.some((n) => n.resourceTypes.length === 0)) return 'all';
  return [...new Set(batch.flatMap((n) => n.resourceTypes))].sort();
}
