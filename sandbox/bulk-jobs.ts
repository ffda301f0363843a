/**
 * Bulk Data export jobs: what a kick-off asked for, a snapshot of the matching records taken at its
 * transactionTime (typed arrays: a million records cost ~16 MB, not a million objects), the output,
 * error and deleted files cut from it, and NDJSON generated lazily for streaming downloads.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ResourceType } from '../lib/domain.js';
import { newBulkBehaviour, newBulkLog, type BulkBehaviour, type BulkLog } from './bulk-behaviour.js';
import { operationOutcome } from './faults.js';
import type { ExportLevel } from './read-paths.js';
import type { StoreChanges } from './store-changes.js';
import type { Bound, RecordRef, RecordStore } from './store.js';

const SNAPSHOT_PAGE = 10_000;
const LINES_PER_CHUNK = 256;
const DELETED_PER_BUNDLE = 100;

export interface TypeSnapshot {
  count: number;
  index: Int32Array;
  version: Int32Array;
  ms: Float64Array;
}

export interface ExportRequest {
  level: ExportLevel;
  requestUrl: string;
  clientId: string;
  types: ResourceType[];
  sinceMs: number | undefined;
  /** Per type, alternatives (OR) of `_lastUpdated` bounds from `_typeFilter`; absent: no filter. */
  typeFilters: Map<ResourceType, Array<{ lower?: Bound; upper?: Bound }>>;
}

export interface BulkFile {
  name: string;
  kind: 'output' | 'error' | 'deleted';
  /** The `type` the manifest gives: the resource type, OperationOutcome or Bundle. */
  type: string;
  resourceType?: ResourceType;
  from: number;
  to: number;
  count: number;
  /** Line (1-based) after which a malformed line is inserted, when the job was asked to break one. */
  malformedAfter?: number;
  downloads: number;
}

export interface BulkJob extends ExportRequest {
  id: string;
  kickoffMs: number;
  transactionTimeMs: number;
  snapshots: Map<ResourceType, TypeSnapshot>;
  deleted: RecordRef[];
  pollsLeft: number;
  lastPollMs: number | undefined;
  state: 'preparing' | 'complete' | 'cancelled';
  completedMs?: number;
  expiresMs?: number;
  files: BulkFile[];
  /** Behaviour captured at kick-off (so a test's later changes do not rewrite a job in flight). */
  behaviour: BulkBehaviour;
}

export interface BulkState {
  jobs: Map<string, BulkJob>;
  behaviour: BulkBehaviour;
  log: BulkLog;
  /** Origin of the second listener (another host for files and status URLs); '' until it listens. */
  otherOrigin: string;
}

export function newBulkState(): BulkState {
  return { jobs: new Map(), behaviour: newBulkBehaviour(), log: newBulkLog(), otherOrigin: '' };
}

function matchesFilters(filters: Array<{ lower?: Bound; upper?: Bound }> | undefined, ms: number): boolean {
  if (!filters) return true;
  return filters.some(
    (f) =>
      (!f.lower || (f.lower.inclusive ? ms >= f.lower.ms : ms > f.lower.ms)) &&
      (!f.upper || (f.upper.inclusive ? ms <= f.upper.ms : ms < f.upper.ms)),
  );
}

/** Every live record of the type changed after `sinceMs` and at or before `untilMs`, in search order. */
function snapshotType(store: RecordStore, type: ResourceType, req: ExportRequest, untilMs: number): TypeSnapshot {
  let cap = 1024;
  let index = new Int32Array(cap);
  let version = new Int32Array(cap);
  let ms = new Float64Array(cap);
  let count = 0;
  const filters = req.typeFilters.get(type);
  let after: { ms: number; id: string } | undefined;
  for (;;) {
    const page = store.search(type, {
      count: SNAPSHOT_PAGE,
      upper: { ms: untilMs, inclusive: true },
      ...(req.sinceMs !== undefined ? { lower: { ms: req.sinceMs, inclusive: false } } : {}),
      ...(after ? { after } : {}),
    });
    for (const r of page.records) {
      if (!matchesFilters(filters, r.lastUpdatedMs)) continue;
      if (count === cap) {
        cap *= 2;
        const [i2, v2, m2] = [new Int32Array(cap), new Int32Array(cap), new Float64Array(cap)];
        i2.set(index);
        v2.set(version);
        m2.set(ms);
        [index, version, ms] = [i2, v2, m2];
      }
      index[count] = r.index;
      version[count] = r.version;
      ms[count] = r.lastUpdatedMs;
      count++;
    }
    const last = page.records[page.records.length - 1];
    if (!page.hasMore || !last) break;
    after = { ms: last.lastUpdatedMs, id: last.id };
  }
  return { count, index, version, ms };
}

export function createJob(
  state: BulkState,
  store: RecordStore,
  changes: StoreChanges,
  req: ExportRequest,
  nowMs: number,
): BulkJob {
  const snapshots = new Map<ResourceType, TypeSnapshot>();
  for (const type of req.types) snapshots.set(type, snapshotType(store, type, req, nowMs));
  const behaviour = { ...state.behaviour };
  const deleted =
    behaviour.deleted === 'never' || (behaviour.deleted === 'since-only' && req.sinceMs === undefined)
      ? []
      : req.types.flatMap((t) => changes.deletedBetween(t, req.sinceMs, nowMs));
  const job: BulkJob = {
    ...req,
    id: randomUUID(),
    kickoffMs: nowMs,
    transactionTimeMs: nowMs,
    snapshots,
    deleted,
    pollsLeft: behaviour.preparePolls,
    lastPollMs: undefined,
    state: 'preparing',
    files: [],
    behaviour,
  };
  state.jobs.set(job.id, job);
  return job;
}

/** Cuts the job's files: one or more output files per type, then error and deleted files. */
export function completeJob(job: BulkJob, nowMs: number, ttlSeconds: number, perFile: number): void {
  const b = job.behaviour;
  for (const [type, snap] of job.snapshots) {
    for (let from = 0, part = 1; from < snap.count; from += perFile, part++) {
      const to = Math.min(snap.count, from + perFile);
      const file: BulkFile = {
        name: `${type}-${part}.ndjson`,
        kind: 'output',
        type,
        resourceType: type,
        from,
        to,
        count: to - from,
        downloads: 0,
      };
      if (b.malformedLine && (b.malformedLine.type ?? type) === type && part === 1) {
        file.malformedAfter = Math.min(b.malformedLine.afterLine, file.count);
      }
      job.files.push(file);
    }
  }
  if (b.errorFile) {
    const name = 'errors-1.ndjson';
    job.files.push({ name, kind: 'error', type: 'OperationOutcome', from: 0, to: 2, count: 2, downloads: 0 });
  }
  const deletedBundles = Math.ceil(job.deleted.length / DELETED_PER_BUNDLE);
  if (deletedBundles > 0) {
    const name = 'deleted-1.ndjson';
    job.files.push({
      name,
      kind: 'deleted',
      type: 'Bundle',
      from: 0,
      to: deletedBundles,
      count: deletedBundles,
      downloads: 0,
    });
  }
  job.state = 'complete';
  job.completedMs = nowMs;
  job.expiresMs = nowMs + (b.fileTtlSeconds ?? ttlSeconds) * 1000;
}

function* lines(store: RecordStore, job: BulkJob, file: BulkFile): Generator<string> {
  if (file.kind === 'error') {
    for (let i = 0; i < file.count; i++) {
      const oo = operationOutcome('processing', `sandbox: ${i + 1} resource(s) could not be exported`);
      yield JSON.stringify({ ...oo, id: `export-error-${i + 1}` });
    }
    return;
  }
  if (file.kind === 'deleted') {
    for (let i = file.from; i < file.to; i++) {
      const refs = job.deleted.slice(i * DELETED_PER_BUNDLE, (i + 1) * DELETED_PER_BUNDLE);
      yield JSON.stringify({
        resourceType: 'Bundle',
        id: `deleted-${job.id.slice(0, 8)}-${i + 1}`,
        meta: { lastUpdated: new Date(job.transactionTimeMs).toISOString() },
        type: 'transaction',
        entry: refs.map((r) => ({ request: { method: 'DELETE', url: `${r.type}/${r.id}` } })),
      });
    }
    return;
  }
  const type = file.resourceType as ResourceType;
  const snap = job.snapshots.get(type) as TypeSnapshot;
  for (let p = file.from; p < file.to; p++) {
    const ref = {
      type,
      index: snap.index[p] as number,
      id: '',
      version: snap.version[p] as number,
      lastUpdatedMs: snap.ms[p] as number,
    };
    yield JSON.stringify(store.render(ref));
    if (file.malformedAfter === p - file.from + 1) yield `{"resourceType":"${type}","id":"broken-line",`;
  }
}

/** The file's NDJSON as a stream of chunks of whole lines, generated as the client reads. */
export function ndjsonStream(store: RecordStore, job: BulkJob, file: BulkFile): Readable {
  const source = lines(store, job, file);
  function* chunks(): Generator<string> {
    let batch: string[] = [];
    for (const line of source) {
      batch.push(line);
      if (batch.length === LINES_PER_CHUNK) {
        yield `${batch.join('\n')}\n`;
        batch = [];
      }
    }
    if (batch.length > 0) yield `${batch.join('\n')}\n`;
  }
  return Readable.from(chunks(), { objectMode: false });
}
