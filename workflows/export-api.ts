/** What a batch export (workflows/export.ts) shows its callers: input, progress query, shred signal, result. */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export interface ExportInput {
  tenantId: string;
  purpose: string;
  /** Absent: every type the purpose allows that the tenant has records of. */
  types?: string[];
  /** Records last updated at or after this instant (ISO 8601); absent: all. */
  since?: string | null;
  /** Absolute directory on the worker's host; the job writes into `<to>/<jobId>`. */
  to: string;
  /** Seconds the files and their key are kept before crypto-shredding (the CLI's --retain-days × 86,400). */
  retainSeconds: number;
  /** Who asked (the actor of every audit event of the job). */
  requestedBy: string;
  /** Set by `ehrctl export run`; scheduled runs make one from the workflow's start time. */
  jobId?: string;
  /** While a legal hold defers the shredding, how often to look again (default a day). */
  holdRecheckSeconds?: number;
}

export type ExportPhase = 'starting' | 'writing' | 'retained' | 'shred-deferred' | 'shredded' | 'failed';

export interface ExportTypeProgress {
  resourceType: string;
  done: boolean;
  count?: number;
  bytes?: number;
}

export interface ExportProgress {
  jobId: string;
  phase: ExportPhase;
  directory?: string;
  types: ExportTypeProgress[];
  retainUntil?: string;
  /** The incident whose legal hold defers the shredding. */
  deferredBy?: string;
}

export interface ExportResult {
  jobId: string;
  directory: string;
  files: Array<{ resourceType: string; count: number; bytes: number }>;
  manifestSha256: string;
  retainUntil: string;
  /** Files removed when the key was destroyed. */
  filesRemoved: number;
}

export const exportProgressQuery = defineQuery<ExportProgress>('exportProgress');
/** Ends the retention period now: the job key is destroyed and the files removed (legal holds still apply). */
export const exportShredSignal = defineSignal('exportShred');
