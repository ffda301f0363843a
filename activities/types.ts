/** Shapes that cross the workflow/activity boundary: identifiers, counts, cursors — never PHI. */
import type { ResourceType } from '../lib/domain.js';

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
  /** Types left out of `resourceTypes` and why (VENDOR_SCOPE_NOT_ADVERTISED); absent when none. */
  skipped?: SkippedType[];
}

export interface SyncPageInput {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
  since: string | null;
  /** The vendor's opaque next-page URL, or null for the first page. */
  cursor: string | null;
  pageSize: number;
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
  outcome: 'completed' | 'cancelled';
  totals: { fetched: number; inserted: number; updated: number; unchanged: number; dropped?: number };
  /** Types the run skipped and why (error code); absent when none was skipped. */
  skipped?: SkippedType[];
}

export interface SkippedType {
  resourceType: ResourceType;
  /** The stable error code, e.g. VENDOR_SCOPE_NOT_GRANTED. */
  reason: string;
  /** The failure's message: identifiers only, never PHI. */
  detail: string;
}
