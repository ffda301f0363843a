/**
 * How Bulk Data export misbehaves on request (set through `PUT /admin/bulk/behaviour`, partial
 * updates; `DELETE` resets), and what the sandbox records for tests to observe: kick-offs, polls and
 * their spacing, DELETEs on status URLs, downloads per file and whether a bearer token came along.
 */
import { z } from 'zod';
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';

export const BulkBehaviourPatch = z
  .object({
    /** 202 answers (with X-Progress and Retry-After) before the manifest. */
    preparePolls: z.number().int().min(0).max(10_000),
    retryAfterSeconds: z.number().int().min(0).max(3600),
    /** Retry-After as an HTTP-date instead of delta-seconds. */
    retryAfterAsDate: z.boolean(),
    /** A poll earlier than the last Retry-After allows gets 429 (with Retry-After). */
    enforcePollSpacing: z.boolean(),
    /** The next N status polls answer this 5xx with a transient OperationOutcome. */
    pollErrors: z.number().int().min(0).max(1000),
    downloadErrors: z.number().int().min(0).max(1000),
    errorStatus: z.number().int().min(500).max(599),
    /** The manifest lists an error file of OperationOutcomes. */
    errorFile: z.boolean(),
    /** deleted[]: only for `_since` exports (as the IG says), always, or never. */
    deleted: z.enum(['since-only', 'always', 'never']),
    /** Output files (and error/deleted files) are served from the second listener: another origin. */
    filesOnOtherHost: z.boolean(),
    statusOnOtherHost: z.boolean(),
    requiresAccessToken: z.boolean(),
    /** A malformed line is inserted after this line of the first file of the type (any type if absent). */
    malformedLine: z
      .object({ type: z.enum(RESOURCE_TYPES).optional(), afterLine: z.number().int().min(0).max(10_000_000) })
      .strict()
      .nullable(),
    /** The completed status answer is 200 with a body that is not JSON. */
    manifestNotJson: z.boolean(),
    /** Kick-offs are refused with this 4xx and an OperationOutcome. */
    kickoffStatus: z.number().int().min(400).max(499).nullable(),
    /** Overrides of the personality's file size and file lifetime. */
    resourcesPerFile: z.number().int().min(1).max(10_000_000).nullable(),
    fileTtlSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * 86_400)
      .nullable(),
  })
  .strict()
  .partial();
export type BulkBehaviourPatch = z.infer<typeof BulkBehaviourPatch>;

export interface BulkBehaviour {
  preparePolls: number;
  retryAfterSeconds: number;
  retryAfterAsDate: boolean;
  enforcePollSpacing: boolean;
  pollErrors: number;
  downloadErrors: number;
  errorStatus: number;
  errorFile: boolean;
  deleted: 'since-only' | 'always' | 'never';
  filesOnOtherHost: boolean;
  statusOnOtherHost: boolean;
  requiresAccessToken: boolean;
  malformedLine: { type?: ResourceType; afterLine: number } | null;
  manifestNotJson: boolean;
  kickoffStatus: number | null;
  resourcesPerFile: number | null;
  fileTtlSeconds: number | null;
}

export function newBulkBehaviour(): BulkBehaviour {
  return {
    preparePolls: 1,
    retryAfterSeconds: 1,
    retryAfterAsDate: false,
    enforcePollSpacing: false,
    pollErrors: 0,
    downloadErrors: 0,
    errorStatus: 503,
    errorFile: false,
    deleted: 'since-only',
    filesOnOtherHost: false,
    statusOnOtherHost: false,
    requiresAccessToken: true,
    malformedLine: null,
    manifestNotJson: false,
    kickoffStatus: null,
    resourcesPerFile: null,
    fileTtlSeconds: null,
  };
}

export interface BulkLog {
  kickoffs: Array<{ atMs: number; level: string; status: number; jobId?: string; params: Record<string, string> }>;
  polls: Array<{ jobId: string; atMs: number; status: number; sinceLastMs: number | null; host: string }>;
  deletes: Array<{ jobId: string; atMs: number; status: number }>;
  downloads: Array<{ jobId: string; file: string; atMs: number; status: number; bearer: boolean; host: string }>;
}

export function newBulkLog(): BulkLog {
  return { kickoffs: [], polls: [], deletes: [], downloads: [] };
}

const LOG_MAX = 100_000;
export function logPush<T>(list: T[], entry: T): void {
  list.push(entry);
  if (list.length > LOG_MAX) list.splice(0, list.length - LOG_MAX);
}
