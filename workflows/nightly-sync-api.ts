/** The nightly sync's input, progress, report, signals and query (workflows/nightly-sync.ts is the playbook). */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { SkippedType, SyncPlan } from '../activities/types.js';
import type { ResourceType } from '../lib/domain.js';

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
  /**
   * How long a vendor page may go without a heartbeat before it is retried elsewhere (a dead worker), in seconds;
   * default the preset's 20 s. For tests that kill workers.
   */
  pageHeartbeatTimeoutSeconds?: number;
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
  /** Deletions learned from the vendor (tombstones written); absent in runs recorded before deletions. */
  deleted?: number;
  done: boolean;
  /** Set when the type was skipped: the stable error code (e.g. VENDOR_SCOPE_NOT_GRANTED). */
  skippedReason?: string;
  /** The failure's message (identifiers only), for people reading the report. */
  skippedDetail?: string;
  /** Set when the type was read only in part (e.g. SYNC_SHORTFALL): checkpoint kept, the next run reads it again. */
  incompleteReason?: string;
  incompleteDetail?: string;
}

export type SyncStatus = 'planning' | 'running' | 'paused' | 'completed' | 'incomplete' | 'cancelled';

export interface SyncTotals {
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  dropped: number;
  deleted?: number;
}

export interface SyncProgress {
  status: SyncStatus;
  currentResourceType: ResourceType | null;
  types: TypeProgress[];
  totals: SyncTotals;
  continuedAsNew: number;
  pausedBy?: string;
  cancelledBy?: string;
  /** patient strategy: the roster's size and the position reached in the current type. */
  roster?: { size: number; position: number };
}

/** A search window of the current type: a capped server is read in consecutive windows, each counted. */
export interface SearchWindow {
  since: string | null;
  /** Overlap applied to `since` (0 for a window continuing where the previous one stopped). */
  overlapSeconds: number;
  fetched: number;
  /** What the server counted for the window (`_summary=count`); null: it would not say. */
  expected: number | null;
}

/**
 * A capped type the server cannot sort, read in counted `_lastUpdated` windows (activities/sync-windows.ts):
 * where the unread range starts and what the run learned. Instants and counts only.
 */
export interface CappedRead {
  /** Start (`ge`) of the range not yet read; null: from the beginning. */
  from: string | null;
  /** Most matches one search serves whole (observed from the capped search, lowered if a window says less). */
  limit: number;
  /** Width (ms) of the last window that fitted. */
  hintMs: number | null;
  /** Count probes and windows this run (bounded per type per run). */
  probes: number;
  windows: number;
  /** Newest lastUpdated among windows read whole in time order, before any gap: the checkpoint may move to it. */
  wholeHighWater: string | null;
  /** The first window that could not be read whole (its instant and counts). */
  gap?: string;
  done: boolean;
}

export interface SyncState {
  plan: SyncPlan;
  typeIndex: number;
  cursor: string | null;
  highWater: string | null;
  paused: boolean;
  progress: SyncProgress;
  /** search with a read plan: the current type's window. */
  window?: SearchWindow;
  /** search with a read plan: the current type is capped, unsortable, and read in counted windows. */
  capped?: CappedRead;
  /** search with a read plan: the current type's pages are done and its history (deletions) is being read. */
  readingHistory?: boolean;
  /** bulk: the export has been applied to the progress (what follows is the types' history). */
  exported?: boolean;
  /**
   * bulk: the types whose export completed but whose checkpoint waits for their history pass (deletions read),
   * and where it then moves: the export's transactionTime.
   */
  heldCheckpoints?: { types: ResourceType[]; highWater: string; kickoffs: number };
  /**
   * patient strategy: the run's roster; `rechecks` stored patients off the roster follow its members and are read
   * for the Patient type only (to learn of deletions).
   */
  roster?: { id: string; size: number; rechecks?: number };
}

export interface SyncReport {
  outcome: 'completed' | 'incomplete' | 'cancelled';
  totals: SyncProgress['totals'];
  types: TypeProgress[];
  /** Types not synced this run, with the reason; the next run tries them again from their checkpoint. */
  skipped: SkippedType[];
  /** Types read only in part (a shortfall against the server's count); the next run reads them again. */
  incomplete?: SkippedType[];
  continuedAsNew: number;
}

export interface OperatorSignal {
  by?: string;
  reason?: string;
}

export const pauseSignal = defineSignal<[OperatorSignal?]>('pause');
export const resumeSignal = defineSignal<[OperatorSignal?]>('resume');
export const cancelSignal = defineSignal<[OperatorSignal?]>('cancel');
export const progressQuery = defineQuery<SyncProgress>('progress');
