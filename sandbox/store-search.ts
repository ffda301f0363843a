/**
 * Search over one type's records (store.ts) in (lastUpdated, id) order: the base records not in the
 * overlay, then the overlay log. Seeking is arithmetic on the index (base) or a binary search (log), so a
 * page costs O(page) and a total O(overlay), never a scan of the dataset. Apart from the store because
 * this is the ordering argument, which the writes only have to keep true (a sorted log).
 */
import type { ResourceType } from '../lib/domain.js';
import { BASE_STEP_MS, BASE_LAST_UPDATED_MS, baseLastUpdatedMs, resourceId } from './data.js';
import type { Bound, LogEntry, RecordRef, SearchQuery, SearchResult, TypeRecords } from './store.js';

/** Up to `q.count` records after the cursor within the bounds, whether more follow, and the total within the bounds. */
export function searchRecords(seed: number, type: ResourceType, recs: TypeRecords, q: SearchQuery): SearchResult {
  const want = q.count + 1;
  const out: RecordRef[] = [];
  const startMs = Math.max(q.lower?.ms ?? -Infinity, q.after?.ms ?? -Infinity);
  const afterStart = (ms: number, id: string): boolean =>
    (!q.lower || (q.lower.inclusive ? ms >= q.lower.ms : ms > q.lower.ms)) &&
    (!q.after || ms > q.after.ms || (ms === q.after.ms && id > q.after.id));
  const beforeEnd = (ms: number): boolean => !q.upper || (q.upper.inclusive ? ms <= q.upper.ms : ms < q.upper.ms);

  for (let i = firstBaseIndex(startMs); i < recs.baseCount && out.length < want; i++) {
    const ms = baseLastUpdatedMs(i);
    if (!beforeEnd(ms)) break;
    if (recs.overlay.has(i)) continue;
    const id = resourceId(seed, type, i);
    if (afterStart(ms, id)) out.push({ type, index: i, id, version: 1, lastUpdatedMs: ms });
  }
  for (let p = firstLogPosition(recs.log, startMs); p < recs.log.length && out.length < want; p++) {
    const entry = recs.log[p] as LogEntry;
    if (!beforeEnd(entry.lastUpdatedMs)) break;
    if (!recs.isCurrent(entry) || entry.deleted) continue;
    const id = resourceId(seed, type, entry.index);
    if (afterStart(entry.lastUpdatedMs, id))
      out.push({ type, id, index: entry.index, version: entry.version, lastUpdatedMs: entry.lastUpdatedMs });
  }
  const hasMore = out.length > q.count;
  if (hasMore) out.length = q.count;
  return { records: out, hasMore, total: countMatches(recs, q.lower, q.upper) };
}

/** How many current records of the type lie within the bounds (Bundle.total: the cursor is ignored). */
function countMatches(recs: TypeRecords, lower: Bound | undefined, upper: Bound | undefined): number {
  const inRange = (ms: number): boolean =>
    (!lower || (lower.inclusive ? ms >= lower.ms : ms > lower.ms)) &&
    (!upper || (upper.inclusive ? ms <= upper.ms : ms < upper.ms));
  // Base indices in [from, to) are exactly those whose base lastUpdated satisfies the bounds.
  let from = lower ? firstBaseIndex(lower.ms) : 0;
  if (lower && !lower.inclusive && baseLastUpdatedMs(from) === lower.ms) from++;
  let to = recs.baseCount;
  if (upper) {
    let last = Math.floor((upper.ms - BASE_LAST_UPDATED_MS) / BASE_STEP_MS);
    if (!upper.inclusive && baseLastUpdatedMs(last) === upper.ms) last--;
    to = Math.max(0, Math.min(to, last + 1));
  }
  let total = Math.max(0, to - from);
  for (const [index, state] of recs.overlay) {
    if (index < recs.baseCount && index >= from && index < to) total--;
    if (!state.deleted && inRange(state.lastUpdatedMs)) total++;
  }
  return total;
}

/** First base index whose lastUpdated is >= ms. */
function firstBaseIndex(ms: number): number {
  if (ms === -Infinity) return 0;
  return Math.max(0, Math.ceil((ms - BASE_LAST_UPDATED_MS) / BASE_STEP_MS));
}

/** First log position whose lastUpdated is >= ms (binary search: the log is sorted). */
export function firstLogPosition(log: readonly LogEntry[], ms: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((log[mid] as LogEntry).lastUpdatedMs < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
