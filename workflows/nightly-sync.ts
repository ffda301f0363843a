/**
 * Nightly sync, per integration — the playbook:
 *   1. plan: the resource types the integration's policy allows, each since its checkpoint, and how this
 *      integration reads (its read strategy: system-wide search, patient by patient, or Bulk Data);
 *   2. for each type, read through the vendor: every page or batch is fetched, minimised, encrypted and stored in
 *      one activity that returns only counts and where to go next; searches reach back by an overlap window and
 *      are checked against the server's own count; deletions in the type's history become tombstones;
 *   3. when a type has been read wholly, advance its checkpoint; a type the vendor refuses with 403 (scope no
 *      longer granted) is skipped with its reason, a type read only in part is reported incomplete, and
 *      neither checkpoint moves;
 *   4. report. Pause, resume and cancel arrive as signals; progress is a query; the run continues
 *      as new before its history grows large, carrying its place.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  executeChild,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { BulkExportActivities, SyncPageActivities, SyncPlanningActivities } from '../activities/index.js';
import type { ResourceType } from '../lib/domain.js';
import type { BulkExportInput, BulkExportResult } from './bulk-export.js';
import type { NightlySyncInput, SyncReport, TypeProgress } from './nightly-sync-api.js';
import { cancelSignal, pauseSignal, progressQuery, resumeSignal } from './nightly-sync-api.js';
import type { PageCounts, SyncRun } from './nightly-sync-reads.js';
import { emptyTypeProgress, freshState, readBulkDeletions, readByPatient, readBySearch } from './nightly-sync-reads.js';
import { storePreset, vendorPagePreset } from './presets.js';

export type {
  NightlySyncInput,
  OperatorSignal,
  SyncProgress,
  SyncReport,
  SyncState,
  SyncStatus,
  TypeProgress,
} from './nightly-sync-api.js';
export { cancelSignal, pauseSignal, progressQuery, resumeSignal } from './nightly-sync-api.js';

/** lib/errors ScopeNotGrantedError's code (workflows may not import lib/errors). */
const SCOPE_NOT_GRANTED = 'VENDOR_SCOPE_NOT_GRANTED';
/** bulk: checkpoints of types read from `_history` move after it (histories before it: the export moved them). */
const CHECKPOINTS_AFTER_HISTORY = 'bulk-checkpoints-after-history';

const store = proxyActivities<SyncPlanningActivities>(storePreset);
const bulkStore = proxyActivities<BulkExportActivities>(storePreset);

export async function nightlySync(input: NightlySyncInput): Promise<SyncReport> {
  const state = input.carried ?? freshState();
  let cancelRequested = false;

  setHandler(progressQuery, () => state.progress);
  setHandler(pauseSignal, (s) => {
    state.paused = true;
    state.progress.pausedBy = s?.by ?? 'unknown';
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
    delete state.progress.pausedBy;
  });
  setHandler(cancelSignal, (s) => {
    cancelRequested = true;
    state.progress.cancelledBy = s?.by ?? 'unknown';
  });

  if (!input.carried) {
    // `resourceTypes` only when given, so recorded histories replay with identical activity inputs.
    state.plan = await store.planSync({
      tenantId: input.tenantId,
      integrationId: input.integrationId,
      full: input.full ?? false,
      ...(input.resourceTypes ? { resourceTypes: input.resourceTypes } : {}),
    });
    state.progress.types = state.plan.resourceTypes.map((t) => emptyTypeProgress(t.resourceType));
    for (const skip of state.plan.read?.skip ?? []) {
      const t = state.progress.types.find((p) => p.resourceType === skip.resourceType);
      if (t) Object.assign(t, { skippedReason: skip.reason, skippedDetail: skip.detail });
    }
    if (state.plan.read) state.progress.status = 'running';
  }
  const read = state.plan.read;

  // Pages go to the vendor endpoint's rate-limited queue when the plan names one; a plan without
  // the field (older runs, carried states) keeps the workflow's own queue, as before.
  const pagePreset = input.pageHeartbeatTimeoutSeconds
    ? { ...vendorPagePreset, heartbeatTimeout: input.pageHeartbeatTimeoutSeconds * 1000 }
    : vendorPagePreset;
  const vendor = proxyActivities<SyncPageActivities>(
    state.plan.pageTaskQueue ? { ...pagePreset, taskQueue: state.plan.pageTaskQueue } : pagePreset,
  );
  const scope = { tenantId: input.tenantId, integrationId: input.integrationId };
  const run: SyncRun = { state, scope, vendor, held, carryOnIfLarge, record, moveHeldCheckpoint };

  if (read?.strategy === 'bulk') return readByBulk();

  if (read?.strategy === 'patient' && !state.roster) {
    const info = workflowInfo();
    const rosterId = `${info.workflowId}/${info.firstExecutionRunId}`;
    const roster = await vendor.buildRoster({ ...scope, rosterId, ...read.roster });
    state.roster = { id: rosterId, size: roster.size, rechecks: roster.rechecks };
  }

  while (state.typeIndex < state.plan.resourceTypes.length) {
    const { resourceType, since } = state.plan.resourceTypes[state.typeIndex]!;
    const typeProgress = state.progress.types[state.typeIndex]!;
    state.progress.currentResourceType = resourceType;

    try {
      if (typeProgress.skippedReason !== undefined) {
        // Skipped by the plan (e.g. a scope the vendor did not grant): nothing to read.
      } else if (state.roster) {
        if ((await readByPatient(run, typeProgress, since)) === 'cancelled') return finish('cancelled');
      } else if ((await readBySearch(run, typeProgress, since)) === 'cancelled') {
        return finish('cancelled');
      }
    } catch (err) {
      if (!isFailureOfType(err, SCOPE_NOT_GRANTED)) throw err;
      // The vendor narrowed our scopes: this type waits (checkpoint untouched), the others go on.
      typeProgress.skippedReason = SCOPE_NOT_GRANTED;
      typeProgress.skippedDetail = (err as ActivityFailure).cause?.message ?? '';
    }

    const whole = typeProgress.skippedReason === undefined && typeProgress.incompleteReason === undefined;
    if (state.highWater !== null && whole) {
      await store.advanceSyncCheckpoint({ ...scope, resourceType, highWater: state.highWater });
    } else if (typeProgress.skippedReason === undefined && state.capped?.wholeHighWater) {
      // A capped type read in part, in counted windows: its checkpoint moves over the windows read whole, in order.
      await store.advanceSyncCheckpoint({ ...scope, resourceType, highWater: state.capped.wholeHighWater });
    }
    typeProgress.done = whole;
    state.typeIndex += 1;
    state.cursor = null;
    state.highWater = null;
    delete state.window;
    delete state.capped;
    delete state.readingHistory;
  }
  if (state.roster) await vendor.dropSyncRoster({ rosterId: state.roster.id });
  return finish(state.progress.types.some((t) => t.incompleteReason) ? 'incomplete' : 'completed');

  /** Waits out a pause; true when the run is to stop (cancelled). */
  async function held(): Promise<boolean> {
    if (state.paused) {
      state.progress.status = 'paused';
      await condition(() => !state.paused || cancelRequested);
    }
    if (cancelRequested) return true;
    state.progress.status = 'running';
    return false;
  }

  async function carryOnIfLarge(): Promise<void> {
    if (!historyIsLarge(input.historyEventLimit)) return;
    state.progress.continuedAsNew += 1;
    await continueAsNew<typeof nightlySync>({ ...input, carried: state });
  }

  /**
   * Bulk Data `$export` of every planned type, as a child workflow (its own history: polls, files, checkpoints),
   * then each type's deletions from its `_history` where the plan names it. Cancel reaches the child (it then
   * DELETEs the export at the vendor); pause does not stop an export under way.
   */
  async function readByBulk(): Promise<SyncReport> {
    // A run continued as new while reading history has applied its export already.
    if (!state.exported && (await exportAll()) === 'cancelled') return finish('cancelled');
    if ((await readBulkDeletions(run)) === 'cancelled') return finish('cancelled');
    return finish(state.progress.types.some((t) => t.incompleteReason) ? 'incomplete' : 'completed');
  }

  async function exportAll(): Promise<'read' | 'cancelled'> {
    const bulk = read!.bulk!;
    const info = workflowInfo();
    const exportInput: BulkExportInput = {
      ...scope,
      level: bulk.level,
      ...(bulk.groupId ? { groupId: bulk.groupId } : {}),
      types: state.plan.resourceTypes.filter((t) => !read!.skip?.some((s) => s.resourceType === t.resourceType)),
      ...(bulk.typeFilter ? { typeFilter: bulk.typeFilter } : {}),
      ...(state.plan.pageTaskQueue ? { pageTaskQueue: state.plan.pageTaskQueue } : {}),
    };
    // Types whose deletions are read from `_history` next keep their checkpoint until that is done: moved by the
    // export, a history pass that then failed would never be read again from before the export.
    const historyTypes = read!.typeHistory.map((h) => h.resourceType);
    if (historyTypes.length > 0 && patched(CHECKPOINTS_AFTER_HISTORY)) exportInput.holdCheckpoints = historyTypes;
    if (await held()) return 'cancelled';
    const exporting = new CancellationScope();
    let result: BulkExportResult;
    try {
      result = await exporting.run(async () => {
        const child = executeChild<(i: BulkExportInput) => Promise<BulkExportResult>>('bulkExport', {
          workflowId: `${info.workflowId}/bulk/${info.firstExecutionRunId}`,
          args: [exportInput],
        });
        void condition(() => cancelRequested).then(() => exporting.cancel());
        return child;
      });
    } catch (err) {
      if (cancelRequested && (err instanceof ChildWorkflowFailure || isCancellation(err))) return 'cancelled';
      throw err;
    }
    for (const r of result.types) {
      const t = state.progress.types.find((p) => p.resourceType === r.resourceType);
      if (!t) continue;
      record(t, r);
      t.pages = r.files;
      t.deleted = (t.deleted ?? 0) + r.deleted;
      state.progress.totals.deleted = (state.progress.totals.deleted ?? 0) + r.deleted;
      if (r.incomplete) {
        t.incompleteReason = r.incomplete;
        t.incompleteDetail = r.incompleteDetail ?? '';
      }
      t.done = r.checkpoint !== null && !r.incomplete;
    }
    const heldTypes = result.types.filter((r) => r.checkpointHeld).map((r) => r.resourceType);
    if (heldTypes.length > 0)
      state.heldCheckpoints = { types: heldTypes, highWater: result.transactionTime, kickoffs: result.kickoffs };
    state.exported = true;
    return 'read';
  }

  /** bulk: a type's deletions are read; its checkpoint, held by the export, moves to the export's transactionTime. */
  async function moveHeldCheckpoint(resourceType: ResourceType): Promise<void> {
    const heldCheckpoints = state.heldCheckpoints;
    if (!heldCheckpoints?.types.includes(resourceType)) return;
    const { highWater, kickoffs } = heldCheckpoints;
    await bulkStore.advanceBulkCheckpoint({ ...scope, resourceType, highWater, kickoffs });
    heldCheckpoints.types = heldCheckpoints.types.filter((t) => t !== resourceType);
  }

  async function finish(outcome: SyncReport['outcome']): Promise<SyncReport> {
    state.progress.status = outcome;
    state.progress.currentResourceType = null;
    const { pages: _pages, ...totals } = state.progress.totals;
    const skipped = state.progress.types.flatMap((t) =>
      t.skippedReason ? [{ resourceType: t.resourceType, reason: t.skippedReason, detail: t.skippedDetail ?? '' }] : [],
    );
    const incomplete = state.progress.types.flatMap((t) =>
      t.incompleteReason
        ? [{ resourceType: t.resourceType, reason: t.incompleteReason, detail: t.incompleteDetail ?? '' }]
        : [],
    );
    // `skipped` and `incomplete` only when there is one, so runs recorded before them replay with identical inputs.
    await store.recordSyncReport({
      ...scope,
      outcome,
      totals,
      ...(skipped.length > 0 ? { skipped } : {}),
      ...(incomplete.length > 0 ? { incomplete } : {}),
    });
    return {
      outcome,
      totals: state.progress.totals,
      types: state.progress.types,
      skipped,
      ...(incomplete.length > 0 ? { incomplete } : {}),
      continuedAsNew: state.progress.continuedAsNew,
    };
  }

  function record(t: TypeProgress, page: PageCounts): void {
    const totals = state.progress.totals;
    t.pages += 1;
    totals.pages += 1;
    for (const key of ['fetched', 'inserted', 'updated', 'unchanged'] as const) {
      t[key] += page[key];
      totals[key] += page[key];
    }
    // `dropped` is newer than some recorded results and carried states: absent counts as 0.
    t.dropped = (t.dropped ?? 0) + (page.dropped ?? 0);
    totals.dropped = (totals.dropped ?? 0) + (page.dropped ?? 0);
  }
}

function isFailureOfType(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

function isCancellation(err: unknown): boolean {
  return err instanceof Error && err.name === 'CancelledFailure';
}

function historyIsLarge(limit = 10_000): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= limit;
}
