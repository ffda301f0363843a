/**
 * reconcile (`reconcile/<tenant>/<integration>/<time>`): compares an integration's stored records with the vendor's
 * current copies, type by type —
 *   1. plan: the types (asked for, else every type the integration reads) and the run's row;
 *   2. list: the vendor's search pages, each compared and decided in one activity (heartbeats; the cursor is the
 *      page's next link, so a retried or continued run resumes at the page it was on) — or, for an integration
 *      that reads by Bulk Data, one full export whose output files are compared file by file
 *      (workflows/reconcile-bulk.ts) — or, for one that reads patient by patient, the sync's roster built once
 *      and each type listed per patient in ranges of roster positions (the cursor is the next position);
 *   3. unlisted: stored records the vendor did not list, read by id in batches (cursor: the last id);
 *   4. finish: counts into the run's row (the report reads it with the outcomes so far).
 * The history carries ids of the run, type names, cursors and counts — never values or digests. Progress is a
 * query; the run continues as new before its history grows large, carrying its place and counts.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReconcileActivities, SyncPageActivities } from '../activities/index.js';
import type { ResourceType } from '../lib/domain.js';
import type { BatchTally } from '../lib/reconcile/tally.js';
import { reconcilePreset, storePreset, vendorPagePreset } from './presets.js';
import type { BulkReconcileState } from './reconcile-bulk.js';
import { bulkReconcileStep } from './reconcile-bulk.js';

export interface ReconcileInput {
  tenantId: string;
  integrationId: string;
  /** Default: every type the integration reads. */
  types?: string[];
  /** Continue as new once the history holds this many events (default 2,000). */
  historyEventLimit?: number;
  /** Set by continue-as-new only. */
  carried?: ReconcileState;
}

export interface ReconcileState {
  types: ResourceType[];
  /** bulk: the export's progress; the types' phases then start at `unlisted` (the files listed them). */
  bulk?: BulkReconcileState;
  /**
   * patient: the run's roster (sync_rosters, built once by the sync's own activity): the list phase's cursor is
   * the next roster position; types in no patient's compartment start at `unlisted`.
   */
  roster?: PatientRoster;
  pageSize: number;
  typeIndex: number;
  phase: 'list' | 'unlisted';
  cursor: string | null;
  pages: number;
  /** Per type, per class. */
  counts: Record<string, Record<string, number>>;
  decisions: Record<string, number>;
}

export interface PatientRoster {
  id: string;
  size: number;
  perBatch: number;
  unlistedOnly: ResourceType[];
}

export interface ReconcileReport {
  runId: string;
  status: 'completed';
  counts: Record<string, Record<string, number>>;
  decisions: Record<string, number>;
  pages: number;
}

export interface ReconcileProgress {
  runId: string;
  type: string | null;
  phase: ReconcileState['phase'] | 'planning' | 'bulk' | 'done';
  pages: number;
  counts: Record<string, Record<string, number>>;
  decisions: Record<string, number>;
}

export const reconcileProgressQuery = defineQuery<ReconcileProgress>('progress');

const plan = proxyActivities<ReconcileActivities>(storePreset);
const pages = proxyActivities<ReconcileActivities>(reconcilePreset);
const rosters = proxyActivities<SyncPageActivities>(vendorPagePreset);

function add(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export async function reconcile(input: ReconcileInput): Promise<ReconcileReport> {
  const runId = workflowInfo().workflowId;
  let state: ReconcileState | undefined = input.carried;
  setHandler(reconcileProgressQuery, () => ({
    runId,
    type: state ? (state.types[state.typeIndex] ?? null) : null,
    phase: !state
      ? 'planning'
      : state.bulk && !state.bulk.done
        ? 'bulk'
        : state.typeIndex >= state.types.length
          ? 'done'
          : state.phase,
    pages: state?.pages ?? 0,
    counts: state?.counts ?? {},
    decisions: state?.decisions ?? {},
  }));
  const scope = { runId, tenantId: input.tenantId, integrationId: input.integrationId };
  try {
    if (!state) {
      const planned = await plan.reconcilePlan({ ...scope, ...(input.types ? { types: input.types } : {}) });
      state = {
        types: planned.types,
        ...(planned.bulk ? { bulk: { ...planned.bulk, statusUrl: null, manifest: null, next: 0, done: false } } : {}),
        pageSize: planned.pageSize,
        typeIndex: 0,
        phase: planned.bulk ? 'unlisted' : 'list',
        cursor: null,
        pages: 0,
        counts: {},
        decisions: {},
      };
      if (planned.roster) {
        const built = await rosters.buildRoster({ ...scope, rosterId: runId, ...planned.roster });
        state.roster = {
          id: runId,
          size: built.size,
          perBatch: planned.patientsPerBatch ?? 25,
          unlistedOnly: planned.unlistedOnly ?? [],
        };
      }
    }
    const s = state;
    const tallied = (type: string, tally: BatchTally) => {
      add((s.counts[type] ??= {}), tally.classes);
      add(s.decisions, tally.decisions);
      s.pages += 1;
    };
    const limit = input.historyEventLimit ?? 2_000;
    const continueIfLong = async () => {
      if (workflowInfo().historyLength >= limit || workflowInfo().continueAsNewSuggested)
        await continueAsNew<typeof reconcile>({ ...input, carried: s });
    };
    while (s.bulk && !s.bulk.done) {
      await continueIfLong();
      await bulkReconcileStep(scope, s.types, s.pageSize, s.bulk, tallied);
    }
    while (s.typeIndex < s.types.length) {
      await continueIfLong();
      const resourceType = s.types[s.typeIndex]!;
      s.counts[resourceType] ??= {};
      if (s.phase === 'list' && s.roster) {
        await listByPatient(s, s.roster, resourceType);
      } else if (s.phase === 'list') {
        const page = await pages.reconcilePage({ ...scope, resourceType, cursor: s.cursor, pageSize: s.pageSize });
        tallied(resourceType, page);
        s.cursor = page.nextCursor;
        if (s.cursor === null) s.phase = 'unlisted';
      } else {
        const batch = await pages.reconcileUnlisted({
          ...scope,
          resourceType,
          afterId: s.cursor,
          batchSize: s.pageSize,
        });
        tallied(resourceType, batch);
        s.cursor = batch.nextAfterId;
        if (s.cursor === null) {
          s.typeIndex += 1;
          s.phase = s.bulk ? 'unlisted' : 'list';
        }
      }
    }
    if (s.roster) await rosters.dropSyncRoster({ rosterId: s.roster.id });
    await plan.reconcileFinish({ runId, status: 'completed', counts: s.counts, decisions: s.decisions });
    return { runId, status: 'completed', counts: s.counts, decisions: s.decisions, pages: s.pages };
  } catch (err) {
    if (!(err instanceof ContinueAsNew)) {
      // Also when cancelled (containment cancels the runs of its scope): the run's row says how far it got.
      await CancellationScope.nonCancellable(() =>
        plan.reconcileFinish({
          runId,
          status: 'failed',
          counts: state?.counts ?? {},
          decisions: state?.decisions ?? {},
        }),
      );
    }
    throw err;
  }

  /** One range of roster positions of the type (or, past the roster's end, on to the unlisted phase). */
  async function listByPatient(s: ReconcileState, roster: PatientRoster, resourceType: ResourceType) {
    const from = s.cursor === null ? 0 : Number(s.cursor);
    if (from < roster.size && !roster.unlistedOnly.includes(resourceType)) {
      const batch = await pages.reconcilePatients({
        ...scope,
        resourceType,
        rosterId: roster.id,
        from,
        to: Math.min(from + roster.perBatch, roster.size),
        pageSize: s.pageSize,
      });
      add((s.counts[resourceType] ??= {}), batch.classes);
      add(s.decisions, batch.decisions);
      s.pages += 1;
      // A range that did not move (its roster rows gone) would loop for ever: stop the run with a reason instead.
      if (batch.position <= from)
        throw ApplicationFailure.nonRetryable(`roster did not advance past ${from}`, 'RECONCILE_ROSTER_STALLED');
      s.cursor = batch.position < roster.size ? String(batch.position) : null;
    } else {
      s.cursor = null;
    }
    if (s.cursor === null) s.phase = 'unlisted';
  }
}
