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
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SyncPageActivities, SyncPlanningActivities } from '../activities/index.js';
import type { PatientBatchResult, SyncPageResult } from '../activities/types.js';
import type { BulkExportInput, BulkExportResult } from './bulk-export.js';
import type { NightlySyncInput, SyncReport, SyncState, TypeProgress } from './nightly-sync-api.js';
import { cancelSignal, pauseSignal, progressQuery, resumeSignal } from './nightly-sync-api.js';
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
/** A type read only in part: the server counted more than its pages returned. */
const SHORTFALL = 'SYNC_SHORTFALL';
/** Roster positions per patient-strategy activity. */
const PATIENTS_PER_BATCH = 25;

const store = proxyActivities<SyncPlanningActivities>(storePreset);

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
  }
  const read = state.plan.read;

  // Pages go to the vendor endpoint's rate-limited queue when the plan names one; a plan without
  // the field (older runs, carried states) keeps the workflow's own queue, as before.
  const vendor = proxyActivities<SyncPageActivities>(
    state.plan.pageTaskQueue ? { ...vendorPagePreset, taskQueue: state.plan.pageTaskQueue } : vendorPagePreset,
  );
  const scope = { tenantId: input.tenantId, integrationId: input.integrationId };

  if (read?.strategy === 'bulk') return readByBulk();

  if (read?.strategy === 'patient' && !state.roster) {
    const info = workflowInfo();
    const rosterId = `${info.workflowId}/${info.firstExecutionRunId}`;
    const roster = await vendor.buildRoster({ ...scope, rosterId, ...read.roster });
    state.roster = { id: rosterId, size: roster.size };
  }

  while (state.typeIndex < state.plan.resourceTypes.length) {
    const { resourceType, since } = state.plan.resourceTypes[state.typeIndex]!;
    const typeProgress = state.progress.types[state.typeIndex]!;
    state.progress.currentResourceType = resourceType;

    try {
      if (state.roster) {
        if ((await readByPatient(typeProgress, since)) === 'cancelled') return finish('cancelled');
      } else if ((await readBySearch(typeProgress, since)) === 'cancelled') {
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
    }
    typeProgress.done = whole;
    state.typeIndex += 1;
    state.cursor = null;
    state.highWater = null;
    delete state.window;
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

  /** System-wide searches of one type, window by window, then its deletions from the type's history. */
  async function readBySearch(t: TypeProgress, since: string | null): Promise<'read' | 'cancelled'> {
    const resourceType = t.resourceType;
    if (read && !state.window)
      state.window = { since, overlapSeconds: read.overlapSeconds, fetched: 0, expected: null };
    while (!state.readingHistory) {
      do {
        if (await held()) return 'cancelled';
        const window = state.window;
        const page: SyncPageResult = await vendor.syncPage({
          ...scope,
          resourceType,
          since: window ? window.since : since,
          cursor: state.cursor,
          pageSize: state.plan.pageSize,
          // Only with a read plan, so recorded histories replay with identical activity inputs.
          ...(read && window
            ? {
                overlapSeconds: window.overlapSeconds,
                sort: read.sortable.includes(resourceType),
                countCheck: state.cursor === null,
              }
            : {}),
        });
        record(t, page);
        if (window) {
          window.fetched += page.fetched;
          if (page.expected !== undefined) window.expected = page.expected;
        }
        state.cursor = page.nextCursor;
        state.highWater = later(state.highWater, page.maxLastUpdated);
        await carryOnIfLarge();
      } while (state.cursor !== null);

      const window = state.window;
      if (!read || !window || window.expected === null || window.fetched >= window.expected) break;
      // A shortfall: the server stopped short of its own count (it caps result sets). Sorted by _lastUpdated, the
      // pages were the oldest matches, so the next window starts at the newest one read; otherwise, or when that
      // makes no progress (more ties at one instant than the cap), the type is incomplete and read again next run.
      const sorted = read.sortable.includes(resourceType);
      if (!sorted || state.highWater === null || state.highWater === window.since) {
        t.incompleteReason = SHORTFALL;
        t.incompleteDetail = `the server counted ${window.expected} ${resourceType} but its pages held ${window.fetched}`;
        return 'read';
      }
      state.window = { since: state.highWater, overlapSeconds: 0, fetched: 0, expected: null };
    }

    const history = read?.typeHistory.find((h) => h.resourceType === resourceType);
    if (!history) return 'read';
    if (!state.readingHistory) {
      state.readingHistory = true;
      state.cursor = null;
    }
    const historySince = new Date(Date.parse(history.since) - read!.overlapSeconds * 1000).toISOString();
    do {
      if (await held()) return 'cancelled';
      const page = await vendor.syncDeletions({
        ...scope,
        resourceType,
        since: historySince,
        cursor: state.cursor,
        pageSize: state.plan.pageSize,
      });
      t.deleted = (t.deleted ?? 0) + page.removed;
      state.progress.totals.deleted = (state.progress.totals.deleted ?? 0) + page.removed;
      state.cursor = page.nextCursor;
      await carryOnIfLarge();
    } while (state.cursor !== null);
    return 'read';
  }

  /**
   * Bulk Data `$export` of every planned type, as a child workflow (its own history: polls, files, checkpoints).
   * Cancel reaches it (it then DELETEs the export at the vendor); pause does not stop an export under way.
   */
  async function readByBulk(): Promise<SyncReport> {
    const bulk = read!.bulk!;
    const info = workflowInfo();
    const exportInput: BulkExportInput = {
      ...scope,
      level: bulk.level,
      ...(bulk.groupId ? { groupId: bulk.groupId } : {}),
      types: state.plan.resourceTypes,
      ...(bulk.typeFilter ? { typeFilter: bulk.typeFilter } : {}),
      ...(state.plan.pageTaskQueue ? { pageTaskQueue: state.plan.pageTaskQueue } : {}),
    };
    if (await held()) return finish('cancelled');
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
      if (cancelRequested && (err instanceof ChildWorkflowFailure || isCancellation(err))) return finish('cancelled');
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
    return finish(state.progress.types.some((t) => t.incompleteReason) ? 'incomplete' : 'completed');
  }

  /** One type, patient by patient over the run's roster, in batches of roster positions. */
  async function readByPatient(t: TypeProgress, since: string | null): Promise<'read' | 'cancelled'> {
    const roster = state.roster!;
    let position = state.cursor === null ? 0 : Number(state.cursor);
    while (position < roster.size) {
      if (await held()) return 'cancelled';
      const batch: PatientBatchResult = await vendor.syncPatientBatch({
        ...scope,
        rosterId: roster.id,
        resourceType: t.resourceType,
        from: position,
        to: Math.min(position + PATIENTS_PER_BATCH, roster.size),
        since,
        overlapSeconds: read!.overlapSeconds,
        lastUpdated: read!.lastUpdatedSearch,
        pageSize: state.plan.pageSize,
      });
      record(t, batch);
      t.deleted = (t.deleted ?? 0) + batch.deleted;
      state.progress.totals.deleted = (state.progress.totals.deleted ?? 0) + batch.deleted;
      position = batch.position;
      state.cursor = String(position);
      state.progress.roster = { size: roster.size, position };
      state.highWater = later(state.highWater, batch.maxLastUpdated);
      await carryOnIfLarge();
    }
    return 'read';
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

  function record(
    t: TypeProgress,
    page: { fetched: number; inserted: number; updated: number; unchanged: number; dropped?: number },
  ): void {
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

function freshState(): SyncState {
  return {
    plan: { vendor: '', pageSize: 0, resourceTypes: [] },
    typeIndex: 0,
    cursor: null,
    highWater: null,
    paused: false,
    progress: {
      status: 'planning',
      currentResourceType: null,
      types: [],
      totals: { pages: 0, fetched: 0, inserted: 0, updated: 0, unchanged: 0, dropped: 0 },
      continuedAsNew: 0,
    },
  };
}

function emptyTypeProgress(resourceType: TypeProgress['resourceType']): TypeProgress {
  return { resourceType, pages: 0, fetched: 0, inserted: 0, updated: 0, unchanged: 0, dropped: 0, done: false };
}

function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
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
