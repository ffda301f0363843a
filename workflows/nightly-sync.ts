/**
 * Nightly sync, per integration — the playbook:
 *   1. plan: the resource types the integration's policy allows, each since its checkpoint;
 *   2. for each type, page through the vendor: each page is fetched, minimised, encrypted and stored
 *      in one activity that returns only counts and the next cursor;
 *   3. when a type's pages have all committed, advance its checkpoint; a type the vendor refuses with
 *      403 (scope no longer granted) is skipped with its reason, its checkpoint left alone;
 *   4. report. Pause, resume and cancel arrive as signals; progress is a query; the run continues
 *      as new before its history grows large, carrying its place.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SyncPageActivities, SyncPlanningActivities } from '../activities/index.js';
import type { SkippedType, SyncPlan } from '../activities/types.js';
import type { ResourceType } from '../lib/domain.js';
import { storePreset, vendorPagePreset } from './presets.js';

export interface NightlySyncInput {
  tenantId: string;
  integrationId: string;
  /** Ignore checkpoints and fetch everything. */
  full?: boolean;
  /**
   * Only these of the integration's allowed types (a webhook delta sync names what changed); types
   * the integration does not allow are ignored. Absent: every allowed type.
   */
  resourceTypes?: ResourceType[];
  /** Continue as new once the history holds this many events (default 10,000). */
  historyEventLimit?: number;
  /** Set only by continueAsNew: where the previous run stopped. */
  carried?: SyncState;
}

export interface TypeProgress {
  resourceType: ResourceType;
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Elements minimisation dropped (not stored: unclassified or outside the integration's purpose). */
  dropped: number;
  done: boolean;
  /** Set when the type was skipped: the stable error code (e.g. VENDOR_SCOPE_NOT_GRANTED). */
  skippedReason?: string;
  /** The failure's message (identifiers only), for people reading the report. */
  skippedDetail?: string;
}

export type SyncStatus = 'planning' | 'running' | 'paused' | 'completed' | 'cancelled';

export interface SyncProgress {
  status: SyncStatus;
  currentResourceType: ResourceType | null;
  types: TypeProgress[];
  totals: { pages: number; fetched: number; inserted: number; updated: number; unchanged: number; dropped: number };
  continuedAsNew: number;
  pausedBy?: string;
  cancelledBy?: string;
}

export interface SyncState {
  plan: SyncPlan;
  typeIndex: number;
  cursor: string | null;
  highWater: string | null;
  paused: boolean;
  progress: SyncProgress;
}

export interface SyncReport {
  outcome: 'completed' | 'cancelled';
  totals: SyncProgress['totals'];
  types: TypeProgress[];
  /** Types not synced this run, with the reason; the next run tries them again from their checkpoint. */
  skipped: SkippedType[];
  continuedAsNew: number;
}

/** lib/errors ScopeNotGrantedError's code (workflows may not import lib/errors). */
const SCOPE_NOT_GRANTED = 'VENDOR_SCOPE_NOT_GRANTED';

export interface OperatorSignal {
  by?: string;
  reason?: string;
}

export const pauseSignal = defineSignal<[OperatorSignal?]>('pause');
export const resumeSignal = defineSignal<[OperatorSignal?]>('resume');
export const cancelSignal = defineSignal<[OperatorSignal?]>('cancel');
export const progressQuery = defineQuery<SyncProgress>('progress');

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

  // Pages go to the vendor endpoint's rate-limited queue when the plan names one; a plan without
  // the field (older runs, carried states) keeps the workflow's own queue, as before.
  const vendor = proxyActivities<SyncPageActivities>(
    state.plan.pageTaskQueue ? { ...vendorPagePreset, taskQueue: state.plan.pageTaskQueue } : vendorPagePreset,
  );

  while (state.typeIndex < state.plan.resourceTypes.length) {
    const { resourceType, since } = state.plan.resourceTypes[state.typeIndex]!;
    const typeProgress = state.progress.types[state.typeIndex]!;
    state.progress.currentResourceType = resourceType;

    do {
      if (state.paused) {
        state.progress.status = 'paused';
        await condition(() => !state.paused || cancelRequested);
      }
      if (cancelRequested) return finish('cancelled');
      state.progress.status = 'running';

      let page: Awaited<ReturnType<typeof vendor.syncPage>>;
      try {
        page = await vendor.syncPage({
          tenantId: input.tenantId,
          integrationId: input.integrationId,
          resourceType,
          since,
          cursor: state.cursor,
          pageSize: state.plan.pageSize,
        });
      } catch (err) {
        if (!isFailureOfType(err, SCOPE_NOT_GRANTED)) throw err;
        // The vendor narrowed our scopes: this type waits (checkpoint untouched), the others go on.
        typeProgress.skippedReason = SCOPE_NOT_GRANTED;
        typeProgress.skippedDetail = (err as ActivityFailure).cause?.message ?? '';
        break;
      }
      record(typeProgress, page);
      state.cursor = page.nextCursor;
      state.highWater = later(state.highWater, page.maxLastUpdated);

      if (historyIsLarge(input.historyEventLimit)) {
        state.progress.continuedAsNew += 1;
        await continueAsNew<typeof nightlySync>({ ...input, carried: state });
      }
    } while (state.cursor !== null);

    if (state.highWater !== null && typeProgress.skippedReason === undefined) {
      await store.advanceSyncCheckpoint({
        tenantId: input.tenantId,
        integrationId: input.integrationId,
        resourceType,
        highWater: state.highWater,
      });
    }
    typeProgress.done = typeProgress.skippedReason === undefined;
    state.typeIndex += 1;
    state.cursor = null;
    state.highWater = null;
  }
  return finish('completed');

  async function finish(outcome: SyncReport['outcome']): Promise<SyncReport> {
    state.progress.status = outcome;
    state.progress.currentResourceType = null;
    const { pages: _pages, ...totals } = state.progress.totals;
    const skipped = state.progress.types.flatMap((t) =>
      t.skippedReason ? [{ resourceType: t.resourceType, reason: t.skippedReason, detail: t.skippedDetail ?? '' }] : [],
    );
    // `skipped` only when there is one, so runs recorded before it existed replay with identical inputs.
    await store.recordSyncReport({
      tenantId: input.tenantId,
      integrationId: input.integrationId,
      outcome,
      totals,
      ...(skipped.length > 0 ? { skipped } : {}),
    });
    return {
      outcome,
      totals: state.progress.totals,
      types: state.progress.types,
      skipped,
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

function emptyTypeProgress(resourceType: ResourceType): TypeProgress {
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

function historyIsLarge(limit = 10_000): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= limit;
}
