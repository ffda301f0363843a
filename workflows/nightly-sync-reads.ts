/**
 * How the nightly sync reads one type (workflows/nightly-sync.ts is the playbook): system-wide searches window by
 * window then the type's deletions, or patient by patient over the run's roster; and, after a bulk export, each
 * type's deletions. Workflow code: deterministic, only `@temporalio/workflow` and type imports.
 */
import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import type { ActivityInterfaceFor } from '@temporalio/workflow';
import type { SyncPageActivities } from '../activities/index.js';
import type { CappedWindowsResult, PatientBatchResult, SyncPageResult } from '../activities/types.js';
import type { ResourceType } from '../lib/domain.js';
import type { SearchWindow, SyncState, TypeProgress } from './nightly-sync-api.js';

/** A type read only in part: the server counted more than its pages returned. */
const SHORTFALL = 'SYNC_SHORTFALL';
/** A capped type without `_sort` is read in counted `_lastUpdated` windows (histories before it: incomplete). */
const CAPPED_WINDOWS = 'capped-search-windows';
/** Count probes per capped type per run (each window costs one or more); the next run continues where it stops. */
export const MAX_WINDOW_PROBES = 1_000;
/** The patient strategy reads each type's deletions from its `_history` (histories before it: never). */
const PATIENT_HISTORY = 'patient-strategy-type-history';
/** The bulk strategy reads each type's deletions from its `_history` after the export (histories before it: never). */
const BULK_HISTORY = 'bulk-strategy-type-history';
/** lib/errors ScopeNotGrantedError's code (workflows may not import lib/errors). */
const SCOPE_NOT_GRANTED = 'VENDOR_SCOPE_NOT_GRANTED';
/** Roster positions per patient-strategy activity in plans recorded before the plan said. */
const PATIENTS_PER_BATCH = 25;

export interface PageCounts {
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  dropped?: number;
}

/** What a read needs from the run: its state, the vendor-bound activities and the run's own steps. */
export interface SyncRun {
  state: SyncState;
  scope: { tenantId: string; integrationId: string };
  vendor: ActivityInterfaceFor<SyncPageActivities>;
  /** Waits out a pause; true when the run is to stop (cancelled). */
  held(): Promise<boolean>;
  /** Continues as new, carrying the state, when the history has grown large. */
  carryOnIfLarge(): Promise<void>;
  record(t: TypeProgress, page: PageCounts): void;
  /** bulk: moves a type's checkpoint the export held, once its deletions are read. */
  moveHeldCheckpoint(resourceType: ResourceType): Promise<void>;
}

/** System-wide searches of one type, window by window, then its deletions from the type's history. */
export async function readBySearch(run: SyncRun, t: TypeProgress, since: string | null): Promise<'read' | 'cancelled'> {
  const resourceType = t.resourceType;
  const read = run.state.plan.read;
  if (read && !run.state.window)
    run.state.window = { since, overlapSeconds: read.overlapSeconds, fetched: 0, expected: null };
  while (!run.state.readingHistory) {
    if (!run.state.capped) {
      do {
        if (await run.held()) return 'cancelled';
        const window = run.state.window;
        const page: SyncPageResult = await run.vendor.syncPage({
          ...run.scope,
          resourceType,
          since: window ? window.since : since,
          cursor: run.state.cursor,
          pageSize: run.state.plan.pageSize,
          // Only with a read plan, so recorded histories replay with identical activity inputs.
          ...(read && window
            ? {
                overlapSeconds: window.overlapSeconds,
                sort: read.sortable.includes(resourceType),
                countCheck: run.state.cursor === null,
              }
            : {}),
        });
        run.record(t, page);
        if (window) {
          window.fetched += page.fetched;
          if (page.expected !== undefined) window.expected = page.expected;
        }
        run.state.cursor = page.nextCursor;
        run.state.highWater = later(run.state.highWater, page.maxLastUpdated);
        await run.carryOnIfLarge();
      } while (run.state.cursor !== null);

      const window = run.state.window;
      if (!read || !window || window.expected === null || window.fetched >= window.expected) break;
      // A shortfall: the server stopped short of its own count (it caps result sets). Sorted by _lastUpdated, the
      // pages were the oldest matches, so the next window starts at the newest one read; unsorted, the type is read
      // again in counted time windows, each small enough to be served whole. Otherwise (more ties at one instant
      // than the cap, histories recorded before windows) the type is incomplete and read again next run.
      const sorted = read.sortable.includes(resourceType);
      if (sorted && run.state.highWater !== null && run.state.highWater !== window.since) {
        run.state.window = { since: run.state.highWater, overlapSeconds: 0, fetched: 0, expected: null };
        continue;
      }
      if (sorted || window.fetched === 0 || !patched(CAPPED_WINDOWS)) {
        t.incompleteReason = SHORTFALL;
        t.incompleteDetail = `the server counted ${window.expected} ${resourceType} but its pages held ${window.fetched}`;
        return 'read';
      }
      run.state.capped = cappedRead(window);
    }
    if ((await readCappedWindows(run, t)) === 'cancelled') return 'cancelled';
    break;
  }

  return readDeletions(run, t);
}

/**
 * The type's deletions from its `_history` since its previous checkpoint (less the overlap), where the plan names
 * the type: each DELETE entry becomes a tombstone, and a stored version no newer than the deletion is removed.
 */
async function readDeletions(run: SyncRun, t: TypeProgress): Promise<'read' | 'cancelled'> {
  const read = run.state.plan.read;
  const resourceType = t.resourceType;
  const history = read?.typeHistory.find((h) => h.resourceType === resourceType);
  if (!history) return 'read';
  if (!run.state.readingHistory) {
    run.state.readingHistory = true;
    run.state.cursor = null;
  }
  const historySince = new Date(Date.parse(history.since) - read!.overlapSeconds * 1000).toISOString();
  do {
    if (await run.held()) return 'cancelled';
    const page = await run.vendor.syncDeletions({
      ...run.scope,
      resourceType,
      since: historySince,
      cursor: run.state.cursor,
      pageSize: run.state.plan.pageSize,
    });
    t.deleted = (t.deleted ?? 0) + page.removed;
    run.state.progress.totals.deleted = (run.state.progress.totals.deleted ?? 0) + page.removed;
    run.state.cursor = page.nextCursor;
    await run.carryOnIfLarge();
  } while (run.state.cursor !== null);
  return 'read';
}

/**
 * bulk, once the export has been applied: each planned type's deletions from its `_history`, where the server offers
 * it (an export tells deletions only in `deleted[]`, which some servers never send). The plan holds each type's
 * checkpoint from before the export moved it, so the window covers the time between the two exports. A type the
 * vendor no longer lets us read history of is reported incomplete, its deletions unread.
 */
export async function readBulkDeletions(run: SyncRun): Promise<'read' | 'cancelled'> {
  const state = run.state;
  // Plans recorded before the bulk strategy read history name no type here; the patch marks the new step.
  if (!state.plan.read?.typeHistory.length || !patched(BULK_HISTORY)) return 'read';
  while (state.typeIndex < state.plan.resourceTypes.length) {
    const t = state.progress.types[state.typeIndex]!;
    state.progress.currentResourceType = t.resourceType;
    try {
      if (t.skippedReason === undefined && (await readDeletions(run, t)) === 'cancelled') return 'cancelled';
      await run.moveHeldCheckpoint(t.resourceType);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (!(cause instanceof ApplicationFailure) || cause.type !== SCOPE_NOT_GRANTED) throw err;
      t.incompleteReason = SCOPE_NOT_GRANTED;
      t.incompleteDetail = `its deletions were not read: ${cause.message}`;
      t.done = false;
    }
    state.typeIndex += 1;
    state.cursor = null;
    delete state.readingHistory;
  }
  return 'read';
}

function cappedRead(window: SearchWindow): NonNullable<SyncState['capped']> {
  const from =
    window.since === null ? null : new Date(Date.parse(window.since) - window.overlapSeconds * 1000).toISOString();
  return { from, limit: window.fetched, hintMs: null, probes: 0, windows: 0, wholeHighWater: null, done: false };
}

/**
 * A capped type the server cannot sort: consecutive counted windows from the type's start (activities/sync-windows.ts),
 * several per activity, until the range is read through now, a window cannot be read whole (then the type is
 * incomplete and its checkpoint moves only over the windows before it), or the run's probe budget is spent.
 */
async function readCappedWindows(run: SyncRun, t: TypeProgress): Promise<'read' | 'cancelled'> {
  const c = run.state.capped!;
  while (!c.done && c.probes < MAX_WINDOW_PROBES) {
    if (await run.held()) return 'cancelled';
    const r: CappedWindowsResult = await run.vendor.syncCappedWindows({
      ...run.scope,
      resourceType: t.resourceType,
      from: c.from,
      limit: c.limit,
      hintMs: c.hintMs,
      probeBudget: MAX_WINDOW_PROBES - c.probes,
      pageSize: run.state.plan.pageSize,
    });
    run.record(t, r);
    t.pages += r.pages - 1;
    run.state.progress.totals.pages += r.pages - 1;
    Object.assign(c, { from: r.next, done: r.done, limit: r.limit, hintMs: r.hintMs });
    c.probes += r.probes;
    c.windows += r.windows;
    if (c.gap === undefined) c.wholeHighWater = later(c.wholeHighWater, r.wholeHighWater);
    c.gap ??= r.gap;
    run.state.highWater = later(run.state.highWater, r.maxLastUpdated);
    // No window passed and one named: the server will not say more this run (e.g. it gave no count).
    const stalled = r.windows === 0 && r.gap !== undefined;
    await run.carryOnIfLarge();
    if (stalled) break;
  }
  if (c.gap !== undefined || !c.done) {
    t.incompleteReason = SHORTFALL;
    t.incompleteDetail =
      c.gap ??
      `read whole up to ${c.from ?? 'the beginning'} in ${c.windows} windows, when the run's` +
        ` ${MAX_WINDOW_PROBES} count probes were spent; the next run continues from there`;
  }
  return 'read';
}

/**
 * One type, patient by patient over the run's roster, in batches of roster positions; then, where the server offers
 * the type's `_history`, its deletions (per-patient searches never show what was deleted).
 */
export async function readByPatient(
  run: SyncRun,
  t: TypeProgress,
  since: string | null,
): Promise<'read' | 'cancelled'> {
  if (!run.state.readingHistory && (await readRoster(run, t, since)) === 'cancelled') return 'cancelled';
  // Plans recorded before the patient strategy read history name no type here; the patch marks the new step.
  const history = run.state.plan.read!.typeHistory.some((h) => h.resourceType === t.resourceType);
  if (!history || (!run.state.readingHistory && !patched(PATIENT_HISTORY))) return 'read';
  return readDeletions(run, t);
}

async function readRoster(run: SyncRun, t: TypeProgress, since: string | null): Promise<'read' | 'cancelled'> {
  const roster = run.state.roster!;
  const read = run.state.plan.read!;
  let position = run.state.cursor === null ? 0 : Number(run.state.cursor);
  const end = t.resourceType === 'Patient' ? roster.size + (roster.rechecks ?? 0) : roster.size;
  while (position < end) {
    if (await run.held()) return 'cancelled';
    const batch: PatientBatchResult = await run.vendor.syncPatientBatch({
      ...run.scope,
      rosterId: roster.id,
      resourceType: t.resourceType,
      from: position,
      to: Math.min(position + (read.patientsPerBatch ?? PATIENTS_PER_BATCH), end),
      since,
      overlapSeconds: read.overlapSeconds,
      lastUpdated: read.lastUpdatedSearch,
      pageSize: run.state.plan.pageSize,
    });
    run.record(t, batch);
    t.deleted = (t.deleted ?? 0) + batch.deleted;
    run.state.progress.totals.deleted = (run.state.progress.totals.deleted ?? 0) + batch.deleted;
    // A batch that did not move (its roster rows gone) would loop for ever: stop the run with a reason instead.
    if (batch.position <= position) {
      throw ApplicationFailure.nonRetryable(
        `roster ${roster.id} did not advance past ${position}`,
        'SYNC_ROSTER_STALLED',
      );
    }
    position = batch.position;
    run.state.cursor = String(position);
    run.state.progress.roster = { size: end, position };
    run.state.highWater = later(run.state.highWater, batch.maxLastUpdated);
    await run.carryOnIfLarge();
  }
  return 'read';
}

export function freshState(): SyncState {
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

export function emptyTypeProgress(resourceType: TypeProgress['resourceType']): TypeProgress {
  return { resourceType, pages: 0, fetched: 0, inserted: 0, updated: 0, unchanged: 0, dropped: 0, done: false };
}

export function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}
