/**
 * What the Bulk Data workflow (bulk-export.ts) keeps as it goes: per type counts, malformed lines by file
 * and line number, the error files' issue codes, the progress a query shows, and which types may move their
 * checkpoint. Deterministic workflow code: @temporalio/workflow and types only.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type {
  BulkDeletedFileResult,
  BulkErrorFileResult,
  BulkFileRef,
  BulkManifest,
  BulkOutputFileResult,
  MalformedLines,
} from '../activities/bulk-types.js';
import type { ResourceType } from '../lib/domain.js';

export interface BulkTypeResult {
  resourceType: ResourceType;
  files: number;
  /** Resources the manifest announced for the type (null when a file of it gave no count). */
  expected: number | null;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  dropped: number;
  /** Stored records removed by the deleted files, and tombstones written. */
  deleted: number;
  tombstoned: number;
  malformedLines: number;
  /** The checkpoint it advanced to (the transactionTime), or null when it did not. */
  checkpoint: string | null;
  /**
   * True when the type was complete but its checkpoint was left for the parent to move (to `checkpoint`) once it has
   * read the type's deletions from its history: moved here, a failed history pass would lose them for good.
   */
  checkpointHeld?: boolean;
  /** Why the checkpoint stayed: a stable code, and identifiers-only words. */
  incomplete?: 'BULK_MALFORMED_LINES' | 'BULK_COUNT_SHORT' | 'BULK_DELETIONS_UNREADABLE';
  incompleteDetail?: string;
}

export interface MalformedFile extends MalformedLines {
  kind: 'output' | 'error' | 'deleted';
  fileIndex: number;
  resourceType?: ResourceType;
}

export interface BulkExportResult {
  transactionTime: string;
  kickoffs: number;
  /** The `_since` sent on the last kick-off (null: a full export). */
  sinceSent: string | null;
  polls: number;
  types: BulkTypeResult[];
  /** Malformed lines by file (its index in the manifest's list) and line number; never their content. */
  malformed: MalformedFile[];
  errors: { files: number; outcomes: number; byCode: Record<string, number> };
  /** Output files of types we did not ask for: not downloaded. */
  ignoredFiles: Array<{ fileIndex: number; type: string }>;
  /** Deletions listed for types outside the export. */
  deletionsIgnored: number;
  /** A round abandoned because a file expired: what it had stored before the new kick-off. */
  abandoned?: { fetched: number; inserted: number; updated: number };
}

export interface BulkProgress {
  phase: 'kick-off' | 'preparing' | 'downloading' | 'checkpoints' | 'done';
  kickoffs: number;
  polls: number;
  /** The vendor's X-Progress, made safe (letters, digits, a little punctuation). */
  vendorProgress: string | null;
  files: { total: number; done: number };
  fetched: number;
}

function emptyType(resourceType: ResourceType): BulkTypeResult {
  return {
    resourceType,
    files: 0,
    expected: 0,
    fetched: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    dropped: 0,
    deleted: 0,
    tombstoned: 0,
    malformedLines: 0,
    checkpoint: null,
  };
}

export class BulkTally {
  readonly progress: BulkProgress = {
    phase: 'kick-off',
    kickoffs: 0,
    polls: 0,
    vendorProgress: null,
    files: { total: 0, done: 0 },
    fetched: 0,
  };
  result: BulkExportResult;
  private deletionsUnreadable = false;

  constructor(private readonly types: readonly ResourceType[]) {
    this.result = this.fresh(0, null);
  }

  private fresh(kickoffs: number, sinceSent: string | null): BulkExportResult {
    return {
      transactionTime: '',
      kickoffs,
      sinceSent,
      polls: 0,
      types: this.types.map(emptyType),
      malformed: [],
      errors: { files: 0, outcomes: 0, byCode: {} },
      ignoredFiles: [],
      deletionsIgnored: 0,
    };
  }

  /** A kick-off: a new round; what an abandoned earlier round stored is kept aside. */
  startRound(sinceSent: string | null): void {
    const earlier = this.result;
    this.result = this.fresh(earlier.kickoffs + 1, sinceSent);
    this.progress.kickoffs = this.result.kickoffs;
    this.progress.files = { total: 0, done: 0 };
    this.progress.vendorProgress = null;
    this.deletionsUnreadable = false;
    if (earlier.kickoffs > 0) {
      const sum = (key: 'fetched' | 'inserted' | 'updated'): number =>
        earlier.types.reduce((n, t) => n + t[key], earlier.abandoned?.[key] ?? 0);
      this.result.abandoned = { fetched: sum('fetched'), inserted: sum('inserted'), updated: sum('updated') };
    }
  }

  manifest(m: BulkManifest): void {
    this.result.transactionTime = m.transactionTime;
    this.result.polls = this.progress.polls;
    this.progress.files.total = m.output.length + m.error.length + m.deleted.length;
    for (const file of m.output) {
      const t = this.type(file.type);
      if (!t) continue;
      t.files += 1;
      t.expected = t.expected === null || file.count === null ? null : t.expected + file.count;
    }
  }

  ignored(file: BulkFileRef, fileIndex: number): void {
    this.result.ignoredFiles.push({ fileIndex, type: file.type });
    this.progress.files.done += 1;
  }

  output(resourceType: ResourceType, fileIndex: number, r: BulkOutputFileResult): void {
    const t = this.type(resourceType)!;
    for (const key of ['fetched', 'inserted', 'updated', 'unchanged', 'dropped'] as const) t[key] += r[key];
    t.malformedLines += r.malformed.count;
    this.noteMalformed('output', fileIndex, r.malformed, resourceType);
    this.progress.fetched += r.fetched;
    this.progress.files.done += 1;
  }

  errors(fileIndex: number, r: BulkErrorFileResult): void {
    const e = this.result.errors;
    e.files += 1;
    for (const [code, n] of Object.entries(r.byCode)) {
      e.byCode[code] = (e.byCode[code] ?? 0) + n;
      e.outcomes += n;
    }
    this.noteMalformed('error', fileIndex, r.malformed);
    this.progress.files.done += 1;
  }

  deleted(fileIndex: number, r: BulkDeletedFileResult): void {
    for (const [type, counts] of Object.entries(r.byType)) {
      const t = this.type(type);
      if (!t || !counts) continue;
      t.deleted += counts.removed;
      t.tombstoned += counts.tombstoned;
    }
    this.result.deletionsIgnored += r.ignored;
    if (r.malformed.count > 0) this.deletionsUnreadable = true;
    this.noteMalformed('deleted', fileIndex, r.malformed);
    this.progress.files.done += 1;
  }

  /** Types whose checkpoint may move; the others are marked incomplete with their reason. */
  completeTypes(): ResourceType[] {
    const complete: ResourceType[] = [];
    for (const t of this.result.types) {
      if (t.malformedLines > 0) {
        t.incomplete = 'BULK_MALFORMED_LINES';
        t.incompleteDetail = `${t.malformedLines} malformed line(s) in its files`;
      } else if (this.deletionsUnreadable) {
        // A deleted-file line we could not read may have named a resource of any type.
        t.incomplete = 'BULK_DELETIONS_UNREADABLE';
        t.incompleteDetail = 'a deleted file had malformed lines';
      } else if (t.expected !== null && t.fetched < t.expected) {
        t.incomplete = 'BULK_COUNT_SHORT';
        t.incompleteDetail = `stored ${t.fetched} of the ${t.expected} the manifest announced`;
      } else complete.push(t.resourceType);
    }
    return complete;
  }

  checkpointed(type: ResourceType, highWater: string, held = false): void {
    const t = this.type(type)!;
    t.checkpoint = highWater;
    if (held) t.checkpointHeld = true;
  }

  private type(name: string): BulkTypeResult | undefined {
    return this.result.types.find((t) => t.resourceType === name);
  }

  private noteMalformed(
    kind: MalformedFile['kind'],
    fileIndex: number,
    m: MalformedLines,
    resourceType?: ResourceType,
  ): void {
    if (m.count === 0) return;
    this.result.malformed.push({ kind, fileIndex, ...(resourceType ? { resourceType } : {}), ...m });
  }
}

/**
 * Runs jobs with at most `limit` at once, in order. A job answering false, or the first failure, stops new
 * jobs from starting; the running ones finish; then the failure (if any) is thrown.
 */
export async function runBounded(jobs: Array<() => Promise<boolean>>, limit: number): Promise<void> {
  let next = 0;
  let stop = false;
  const failures: unknown[] = [];
  const lane = async (): Promise<void> => {
    while (!stop && next < jobs.length) {
      const job = jobs[next++]!;
      try {
        if (!(await job())) stop = true;
      } catch (err) {
        failures.push(err);
        stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, lane));
  if (failures.length > 0) throw failures[0];
}

export function exportFailure(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`bulk export: ${message}`, type);
}

export function isFailureOfType(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}
