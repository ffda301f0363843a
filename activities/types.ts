/** Shapes that cross the workflow/activity boundary: identifiers, counts, cursors — never PHI. */
import type { ResourceType } from '../lib/domain.js';
import type { ReadPlan } from '../lib/sync/read-strategy.js';

export type { ReadPlan };

export interface PlanSyncInput {
  tenantId: string;
  integrationId: string;
  full: boolean;
  /** Restrict the plan to these of the allowed types (webhook delta syncs). */
  resourceTypes?: ResourceType[];
}

export interface SyncPlan {
  vendor: string;
  pageSize: number;
  /**
   * The task queue of the vendor endpoint's rate limit (lib/vendors/endpoint-queues.ts), where page
   * activities run; absent when the vendor publishes no limit, and in plans recorded before it existed.
   */
  pageTaskQueue?: string;
  resourceTypes: Array<{ resourceType: ResourceType; since: string | null }>;
  /** How this run reads (lib/sync/read-strategy.ts); absent in plans recorded before strategies existed. */
  read?: ReadPlan;
}

export interface SyncPageInput {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  since: string | null;
  /** The vendor's opaque next-page URL, or null for the first page. */
  cursor: string | null;
  pageSize: number;
  /** Set only by plans with a read plan (so recorded histories replay with identical inputs). */
  overlapSeconds?: number;
  sort?: boolean;
  /** First page only: ask the server for the true count (`_summary=count`) to detect a capped result set. */
  countCheck?: boolean;
}

export interface SyncPageResult {
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /**
   * Top-level elements minimisation dropped on this page (unclassified, or of a data class the
   * integration's purpose does not allow). Absent from results recorded before it existed.
   */
  dropped?: number;
  nextCursor: string | null;
  maxLastUpdated: string | null;
  /** First page of a count-checked search: the number of matches the server counts (null: it would not say). */
  expected?: number | null;
}

/**
 * A capped type without `_sort`, read in `_lastUpdated` windows each counted (`_summary=count`) before it is read:
 * one activity reads several consecutive windows, in time order, from `from` on.
 */
export interface CappedWindowsInput {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  /** Start of the range not yet read (`ge`, an instant); null: from the beginning. */
  from: string | null;
  /** Most matches one search serves whole (what the capped search returned). */
  limit: number;
  /** Width (ms) of the last window that fitted, to try first; null: none yet. */
  hintMs: number | null;
  /** Count probes this activity may still make (the type's budget for the run, less what it used). */
  probeBudget: number;
  pageSize: number;
}

export interface CappedWindowsResult {
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  dropped: number;
  /** Windows read (each whole, or named in `gap`). */
  windows: number;
  probes: number;
  /** Where the next activity continues (instant); null with `done`. */
  next: string | null;
  /** The range was read through its open end (now and on). */
  done: boolean;
  limit: number;
  hintMs: number | null;
  maxLastUpdated: string | null;
  /** Newest lastUpdated among the windows read whole before `gap` (the checkpoint may move up to it). */
  wholeHighWater: string | null;
  /** The first window that could not be read whole: why, with its instant and counts (no clinical content). */
  gap?: string;
}

export interface SyncDeletionsInput {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  /** Deletions after this instant (the previous checkpoint, less the overlap window). */
  since: string;
  cursor: string | null;
  pageSize: number;
}

export interface SyncDeletionsResult {
  /** Deletions found on this page of the type's history. */
  deletions: number;
  /** Stored records they removed. */
  removed: number;
  nextCursor: string | null;
}

export interface AdvanceCheckpointInput {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  highWater: string;
}

export interface SyncReportInput {
  tenantId: string;
  integrationId: string;
  outcome: 'completed' | 'incomplete' | 'cancelled';
  totals: { fetched: number; inserted: number; updated: number; unchanged: number; dropped?: number; deleted?: number };
  /** Types the run skipped and why (error code); absent when none was skipped. */
  skipped?: SkippedType[];
  /** Types read only in part (a shortfall against the server's count); absent when none. */
  incomplete?: SkippedType[];
}

export interface SkippedType {
  resourceType: ResourceType;
  /** The stable error code, e.g. VENDOR_SCOPE_NOT_GRANTED. */
  reason: string;
  /** The failure's message: identifiers only, never PHI. */
  detail: string;
}

export interface BuildRosterInput {
  tenantId: string;
  integrationId: string;
  /** The run's roster id (the workflow's id and first run id): positions refer to it. */
  rosterId: string;
  groupId?: string;
  /** A Patient search (query string without `?`) when there is no Group. */
  search?: string;
}

export interface PatientBatchInput {
  tenantId: string;
  integrationId: string;
  rosterId: string;
  resourceType: ResourceType;
  /** Roster positions [from, to). */
  from: number;
  to: number;
  since: string | null;
  overlapSeconds: number;
  /** The vendor honours `_lastUpdated` on patient searches. */
  lastUpdated: boolean;
  pageSize: number;
}

export interface PatientBatchResult {
  /** The next roster position to read (== `to` when the batch is done). */
  position: number;
  patients: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  dropped: number;
  /** Deletions learned (a Patient read answered 410 or 404). */
  deleted: number;
  maxLastUpdated: string | null;
}
