/**
 * What crosses between the Bulk Data workflow (workflows/bulk-export.ts) and its activities: identifiers,
 * counts, URLs the vendor gave us and line numbers — never a line's content.
 */
import type { ResourceType } from '../lib/domain.js';
import type { BulkLevel, BulkManifest } from '../lib/sync/bulk-manifest.js';
import type { MalformedLines } from '../lib/sync/bulk-lines.js';

export type { BulkFileRef, BulkLevel, BulkManifest } from '../lib/sync/bulk-manifest.js';
export type { MalformedLines } from '../lib/sync/bulk-lines.js';

interface IntegrationRef {
  tenantId: string;
  integrationId: string;
}

export interface BulkKickoffInput extends IntegrationRef {
  level: BulkLevel;
  groupId?: string;
  types: ResourceType[];
  /** The oldest checkpoint of the types (null: a full export); sent only where the vendor honours `_since`. */
  since: string | null;
  typeFilter?: string[];
}

export interface BulkKickoffResult {
  statusUrl: string;
  /** The `_since` actually sent (null when none: a full export, or a vendor without incremental export). */
  sinceSent: string | null;
}

export interface BulkStatusInput extends IntegrationRef {
  statusUrl: string;
}

export type BulkPollResult =
  /** 202: still preparing. `retryAfterMs` from Retry-After (seconds or HTTP-date), `progress` from X-Progress. */
  | { state: 'in-progress'; retryAfterMs: number | null; progress: string | null }
  /** 429, a transient 5xx or a network failure: poll again after a back-off (or the vendor's Retry-After). */
  | { state: 'retry'; code: string; retryAfterMs: number | null }
  | { state: 'complete'; manifest: BulkManifest };

interface FileInput extends IntegrationRef {
  /** The file's place in the manifest's list: how reports name it (its URL may carry a signature). */
  fileIndex: number;
  url: string;
  requiresAccessToken: boolean;
  transactionTime: string;
}

export interface BulkOutputFileInput extends FileInput {
  resourceType: ResourceType;
}

export interface BulkOutputFileResult {
  /** Lines of the file (blank ones included). */
  lines: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  dropped: number;
  malformed: MalformedLines;
}

export interface BulkErrorFileResult {
  lines: number;
  /** OperationOutcome issue codes and how often each occurred (e.g. { processing: 3 }). */
  byCode: Record<string, number>;
  malformed: MalformedLines;
}

export interface BulkDeletedFileInput extends FileInput {
  /** Deletions of these types are applied; others are counted as ignored. */
  types: ResourceType[];
}

export interface BulkDeletedFileResult {
  lines: number;
  /** Per resource type: deletions listed, stored records removed, tombstones written. */
  byType: Partial<Record<ResourceType, { listed: number; removed: number; tombstoned: number }>>;
  /** Deletions of types outside the export's types. */
  ignored: number;
  malformed: MalformedLines;
}

export interface BulkCheckpointInput extends IntegrationRef {
  resourceType: ResourceType;
  /** The manifest's transactionTime: the next export's `_since`. */
  highWater: string;
  kickoffs: number;
}
