/**
 * Running a parsed search the way the personality's server would: system-wide, patient-scoped or by
 * `_id`; the read paths it refuses; and the consistency behaviours a test can switch on — a result-set
 * cap that lies in `Bundle.total` (while `_summary=count` tells the truth) and a search cache that
 * answers identical searches from memory for a while unless the request says `Cache-Control: no-cache`.
 */
import type { ResourceType } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import { BadRequest, type ParsedSearch } from './search-params.js';
import type { RecordRef, SearchQuery, SearchResult } from './store.js';

export interface SearchBehaviour {
  /** Searches return at most this many results in all and say `total: cap` (null: no cap). */
  capResults: number | null;
  /** Identical searches within this many seconds are answered from the cache (null: no cache). */
  cacheSeconds: number | null;
  cache: Map<string, { atMs: number; status: number; body: string }>;
  cacheHits: number;
}

export function newSearchBehaviour(): SearchBehaviour {
  return { capResults: null, cacheSeconds: null, cache: new Map(), cacheHits: 0 };
}

/** Throws BadRequest for a search the personality's vendor refuses. */
export function assertReadPathAllowed(ctx: SandboxContext, type: ResourceType, parsed: ParsedSearch): void {
  const reads = ctx.reads;
  if (parsed.sort !== undefined && !reads.sortLastUpdated)
    throw new BadRequest('_sort is not supported by this server', 'not-supported');
  if (parsed.patient !== undefined && type === 'Patient')
    throw new BadRequest('unsupported search parameter patient', 'not-supported');
  const scoped = parsed.patient !== undefined || parsed.ids !== undefined;
  if (scoped || reads.systemSearch === 'all') return;
  if (reads.systemSearch === 'patient-only' && type === 'Patient') return;
  throw new BadRequest(
    type === 'Patient'
      ? 'a Patient search needs _id (read the roster from the Group)'
      : `a ${type} search needs the patient parameter`,
    'required',
  );
}

function inBounds(q: SearchQuery, ms: number): boolean {
  return (
    (!q.lower || (q.lower.inclusive ? ms >= q.lower.ms : ms > q.lower.ms)) &&
    (!q.upper || (q.upper.inclusive ? ms <= q.upper.ms : ms < q.upper.ms))
  );
}

/** A search over a small known set of records (one patient's, or listed ids): filter, order, page. */
function searchAmong(refs: RecordRef[], q: SearchQuery, offset: number): SearchResult {
  const matches = refs
    .filter((r) => !r.deleted && inBounds(q, r.lastUpdatedMs))
    .sort((a, b) => a.lastUpdatedMs - b.lastUpdatedMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const after = q.after;
  const rest = after
    ? matches.filter((r) => r.lastUpdatedMs > after.ms || (r.lastUpdatedMs === after.ms && r.id > after.id))
    : matches.slice(offset);
  return { records: rest.slice(0, q.count), hasMore: rest.length > q.count, total: matches.length };
}

function candidates(ctx: SandboxContext, type: ResourceType, parsed: ParsedSearch): RecordRef[] | undefined {
  let refs: RecordRef[] | undefined;
  if (parsed.patient !== undefined) {
    const patient = ctx.patients.patientOf(parsed.patient);
    const indices = patient === undefined ? [] : ctx.patients.recordsOf(type, patient);
    refs = indices.map((i) => ctx.store.ref(type, i)).filter((r): r is RecordRef => r !== undefined);
  }
  if (parsed.ids !== undefined) {
    const wanted = new Set(parsed.ids);
    const byId = parsed.ids.map((id) => ctx.store.lookup(type, id)).filter((r): r is RecordRef => r !== undefined);
    refs = refs ? refs.filter((r) => wanted.has(r.id)) : [...new Map(byId.map((r) => [r.id, r])).values()];
  }
  return refs;
}

/** The page the search answers, with the cap applied (served: records earlier pages already gave). */
export function runSearch(ctx: SandboxContext, type: ResourceType, parsed: ParsedSearch): SearchResult {
  const refs = candidates(ctx, type, parsed);
  const cap = ctx.searchBehaviour.capResults;
  const left = cap === null ? Infinity : Math.max(0, cap - parsed.served);
  const query = { ...parsed.query, count: Math.min(parsed.query.count, left) };
  const result = refs ? searchAmong(refs, query, parsed.offset) : ctx.store.searchAt(type, query, parsed.offset);
  if (cap === null) return result;
  return {
    records: result.records,
    hasMore: result.hasMore && left > result.records.length,
    total: Math.min(result.total, cap),
  };
}

/** The true number of matches (`_summary=count` is never capped). */
export function countMatches(ctx: SandboxContext, type: ResourceType, parsed: ParsedSearch): number {
  const refs = candidates(ctx, type, parsed);
  const q = { ...parsed.query, count: 0 };
  return refs ? searchAmong(refs, q, 0).total : ctx.store.search(type, q).total;
}

/** A cached answer for this exact request, when the cache is on, fresh, and not bypassed. */
export function cachedAnswer(
  ctx: SandboxContext,
  key: string,
  cacheControl: string | undefined,
): { status: number; body: string } | undefined {
  const b = ctx.searchBehaviour;
  if (b.cacheSeconds === null || /no-cache|no-store|max-age=0/i.test(cacheControl ?? '')) return undefined;
  const hit = b.cache.get(key);
  if (!hit || Date.now() - hit.atMs > b.cacheSeconds * 1000) return undefined;
  b.cacheHits++;
  return hit;
}

export function remember(ctx: SandboxContext, key: string, status: number, body: string): void {
  const b = ctx.searchBehaviour;
  if (b.cacheSeconds === null) return;
  if (b.cache.size > 10_000) b.cache.clear();
  b.cache.set(key, { atMs: Date.now(), status, body });
}
