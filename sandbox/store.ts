/**
 * Records = generated base records (by index) + an overlay of modified/created ones.
 *
 * Order within a type is (lastUpdated, id). Base lastUpdated is strictly increasing with the index, and every
 * overlay timestamp is strictly increasing and later than every base one, so the ordered stream is: base
 * indices not in the overlay, then the overlay log. Seeking to a lastUpdated is arithmetic on the index
 * (base) or a binary search (overlay log), so a page costs O(page), never a scan of the dataset. The
 * search itself is store-search.ts; this file holds the records and their writes.
 */
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import { baseLastUpdatedMs, computeLayout, parseResourceId, resourceId } from './data.js';
import { generateResource, type FhirResource, type GenerationContext } from './resources.js';
import { firstLogPosition, searchRecords } from './store-search.js';

// store-changes.ts finds a log position here, as before the search got a file of its own.
export { firstLogPosition } from './store-search.js';

export interface RecordRef {
  type: ResourceType;
  index: number;
  id: string;
  version: number;
  lastUpdatedMs: number;
  /** Set on the version that deleted the record (reads answer 410, searches omit it). */
  deleted?: true;
}

export interface Bound {
  ms: number;
  inclusive: boolean;
}

export interface SearchQuery {
  lower?: Bound;
  upper?: Bound;
  /** Keyset cursor: only records strictly after (ms, id). */
  after?: { ms: number; id: string };
  count: number;
}

export interface SearchResult {
  records: RecordRef[];
  hasMore: boolean;
  /** Matches of lower/upper (cursor ignored). */
  total: number;
}

interface OverlayState {
  version: number;
  lastUpdatedMs: number;
  deleted?: true;
}
export interface LogEntry extends OverlayState {
  index: number;
}

/** Writes stamped at a transaction's start and made visible only at its commit (store-changes.ts). */
export interface PendingWrite {
  type: ResourceType;
  index: number;
  lastUpdatedMs: number;
  deleted?: true;
}

export class TypeRecords {
  readonly overlay = new Map<number, OverlayState>();
  /** Append-only, sorted by lastUpdatedMs; an entry is stale when the overlay holds a newer version. */
  readonly log: LogEntry[] = [];
  created = 0;
  lastOverlayMs = 0;
  modifyCalls = 0;
  constructor(readonly baseCount: number) {}
  get size(): number {
    return this.baseCount + this.created;
  }
  isCurrent(entry: LogEntry): boolean {
    return this.overlay.get(entry.index)?.version === entry.version;
  }
}

export class RecordStore {
  readonly ctx: GenerationContext;
  private readonly types = new Map<ResourceType, TypeRecords>();
  /**
   * Content written through the FHIR write routes (or a conflicting edit), per record: it replaces the generated
   * content from the version it was written at on (a later generated modification bumps the version, keeps it).
   */
  private readonly written = new Map<string, Record<string, unknown>>();
  private readonly baseMaxMs: number;

  constructor(
    readonly seed: number,
    size: number,
    private readonly now: () => number = Date.now,
  ) {
    const layout = computeLayout(size);
    let maxCount = 0;
    for (const type of RESOURCE_TYPES) {
      this.types.set(type, new TypeRecords(layout[type]));
      maxCount = Math.max(maxCount, layout[type]);
    }
    this.baseMaxMs = baseLastUpdatedMs(Math.max(0, maxCount - 1));
    this.ctx = { seed, patientCount: layout.Patient };
  }

  /** @internal store-changes.ts and the history route read the per-type state. */
  recs(type: ResourceType): TypeRecords {
    return this.types.get(type) as TypeRecords;
  }

  baseCount(type: ResourceType): number {
    return this.recs(type).baseCount;
  }

  /** Current number of records of the type (base + created). */
  count(type: ResourceType): number {
    return this.recs(type).size;
  }

  /** The current version of a record (deleted ones included, flagged). */
  ref(type: ResourceType, index: number): RecordRef | undefined {
    const recs = this.recs(type);
    const over = recs.overlay.get(index);
    if (over) return { type, index, id: resourceId(this.seed, type, index), ...over };
    if (index >= 0 && index < recs.baseCount) {
      return {
        type,
        index,
        id: resourceId(this.seed, type, index),
        version: 1,
        lastUpdatedMs: baseLastUpdatedMs(index),
      };
    }
    return undefined;
  }

  lookup(type: ResourceType, id: string): RecordRef | undefined {
    const parsed = parseResourceId(this.seed, id);
    if (!parsed || parsed.type !== type) return undefined;
    return this.ref(type, parsed.index);
  }

  render(ref: RecordRef): FhirResource {
    const content = this.written.get(`${ref.type}/${ref.index}`);
    if (!content) return generateResource(this.ctx, ref.type, ref.index, ref.version, ref.lastUpdatedMs);
    const meta = { versionId: String(ref.version), lastUpdated: new Date(ref.lastUpdatedMs).toISOString() };
    return { ...content, resourceType: ref.type, id: ref.id, meta } as FhirResource;
  }

  /** How many records carry written content. */
  get writtenCount(): number {
    return this.written.size;
  }

  /**
   * Writes a record's content (without id and meta) as a new version: of an existing record (`index`), or of a
   * new one (created like the admin API creates them). Visible at once to reads, searches, history and exports.
   */
  writeContent(type: ResourceType, content: Record<string, unknown>, index?: number): RecordRef {
    const { id: _id, meta: _meta, ...rest } = content;
    if (index === undefined) {
      const created = this.create(type, 1)[0] as RecordRef;
      this.written.set(`${type}/${created.index}`, rest);
      return created;
    }
    const current = this.ref(type, index) as RecordRef;
    this.written.set(`${type}/${index}`, rest);
    return this.write(type, index, current.version + 1);
  }

  /**
   * The server's clock: now, but never before a write it has already stamped. Overlay stamps run ahead
   * of the wall clock when several writes land in one millisecond, and an export's transactionTime taken
   * from Date.now() alone would leave the last of them out of a `_since` export that follows them.
   */
  clockMs(): number {
    let ms = this.now();
    for (const recs of this.types.values()) ms = Math.max(ms, recs.lastOverlayMs);
    return ms;
  }

  /** A fresh overlay timestamp for the type: now, strictly after every earlier one and every base one. */
  nextOverlayMs(recs: TypeRecords): number {
    const ms = Math.max(this.now(), recs.lastOverlayMs + 1, this.baseMaxMs + 1);
    recs.lastOverlayMs = ms;
    return ms;
  }

  private write(type: ResourceType, index: number, version: number): RecordRef {
    return this.writeAt(type, index, version, this.nextOverlayMs(this.recs(type)));
  }

  /**
   * Makes a version current at `lastUpdatedMs`, keeping the log sorted by (lastUpdated, id): a write
   * stamped earlier than the newest (a transaction committing late) is inserted at its place.
   */
  writeAt(type: ResourceType, index: number, version: number, lastUpdatedMs: number, deleted = false): RecordRef {
    const recs = this.recs(type);
    const state: OverlayState = { version, lastUpdatedMs, ...(deleted ? { deleted: true as const } : {}) };
    recs.overlay.set(index, state);
    const entry: LogEntry = { index, ...state };
    const id = resourceId(this.seed, type, index);
    const last = recs.log[recs.log.length - 1];
    if (!last || last.lastUpdatedMs < lastUpdatedMs) recs.log.push(entry);
    else {
      let at = firstLogPosition(recs.log, lastUpdatedMs);
      while (at < recs.log.length) {
        const e = recs.log[at] as LogEntry;
        if (e.lastUpdatedMs > lastUpdatedMs || resourceId(this.seed, type, e.index) > id) break;
        at++;
      }
      recs.log.splice(at, 0, entry);
    }
    recs.lastOverlayMs = Math.max(recs.lastOverlayMs, lastUpdatedMs);
    return { type, index, id, ...state };
  }

  modifyByIds(type: ResourceType, ids: readonly string[]): { modified: RecordRef[]; unknown: string[] } {
    const found: RecordRef[] = [];
    const unknown: string[] = [];
    for (const id of ids) {
      const ref = this.lookup(type, id);
      if (ref) found.push(ref);
      else unknown.push(id);
    }
    if (unknown.length > 0) return { modified: [], unknown };
    const seen = new Set<number>();
    const modified: RecordRef[] = [];
    for (const ref of found) {
      if (seen.has(ref.index)) continue;
      seen.add(ref.index);
      const current = this.ref(type, ref.index) as RecordRef;
      modified.push(this.write(type, ref.index, current.version + 1));
    }
    return { modified, unknown };
  }

  /** Modifies `count` distinct records spread evenly over the type; successive calls start elsewhere. */
  modifySpread(type: ResourceType, count: number): RecordRef[] {
    const recs = this.recs(type);
    const n = recs.size;
    const k = Math.min(count, n);
    if (k <= 0) return [];
    const offset = (recs.modifyCalls++ * 7919) % n;
    const out: RecordRef[] = [];
    for (let j = 0; j < k; j++) {
      const index = (Math.floor((j * n) / k) + offset) % n;
      const current = this.ref(type, index) as RecordRef;
      out.push(this.write(type, index, current.version + 1));
    }
    return out;
  }

  create(type: ResourceType, count: number): RecordRef[] {
    const recs = this.recs(type);
    const out: RecordRef[] = [];
    for (let j = 0; j < count; j++) {
      const index = recs.baseCount + recs.created++;
      out.push(this.write(type, index, 1));
    }
    return out;
  }

  /** A page of the type's current records in (lastUpdated, id) order within the query's bounds (store-search.ts). */
  search(type: ResourceType, q: SearchQuery): SearchResult {
    return searchRecords(this.seed, type, this.recs(type), q);
  }

  /**
   * Offset paging (`_getpagesoffset`): the page starting `offset` matches in. Costs O(offset + count),
   * as it does at vendors that page this way; stable only while the matches do not change.
   */
  searchAt(type: ResourceType, q: SearchQuery, offset: number): SearchResult {
    if (offset === 0) return this.search(type, q);
    const wide = this.search(type, { ...q, count: offset + q.count });
    return { ...wide, records: wide.records.slice(offset) };
  }

  /** Every current record of the type in search order (O(n): for tests on small datasets). */
  manifest(type: ResourceType): RecordRef[] {
    const all: RecordRef[] = [];
    let after: SearchQuery['after'];
    for (;;) {
      const page = this.search(type, { count: 10_000, ...(after ? { after } : {}) });
      all.push(...page.records);
      const last = page.records[page.records.length - 1];
      if (!page.hasMore || !last) return all;
      after = { ms: last.lastUpdatedMs, id: last.id };
    }
  }

  /** Indices of the patients created through the admin API (beyond the base count). */
  createdPatientIndices(): number[] {
    const recs = this.recs('Patient');
    return Array.from({ length: recs.created }, (_, j) => recs.baseCount + j);
  }
}
