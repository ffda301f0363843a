/**
 * Parsing of FHIR search requests: `_count` (clamped to the page-size maximum), `_lastUpdated` bounds,
 * `_sort`, `_format`, `_summary=count`, `patient`, `_id`, and the paging parameters (`_cursor` keyset,
 * `_getpagesoffset` offset). Which parameters a personality accepts is decided by the caller.
 */
import type { Bound, SearchQuery } from './store.js';

export const DEFAULT_COUNT = 100;
const MAX_OFFSET = 10_000_000;
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

export class BadRequest extends Error {
  constructor(
    message: string,
    /** The OperationOutcome issue code ('invalid', 'required', 'not-supported'). */
    readonly code = 'invalid',
  ) {
    super(message);
  }
}

export type Query = Record<string, string | string[] | undefined>;

export function values(query: Query, name: string): string[] {
  const v = query[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function single(query: Query, name: string): string | undefined {
  const all = values(query, name);
  if (all.length > 1) throw new BadRequest(`${name} may appear only once`);
  return all[0];
}

/** The keyset cursor: the last record served (lastUpdated, id) and how many the search served so far. */
export function encodeCursor(ms: number, id: string, served = 0): string {
  return Buffer.from(`${ms}|${id}|${served}`, 'utf8').toString('base64url');
}

export function decodeCursor(raw: string): { ms: number; id: string; served: number } {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(raw) ? Buffer.from(raw, 'base64url').toString('utf8') : '';
  const match = /^(\d{1,16})\|([a-z0-9-]{1,64})(?:\|(\d{1,9}))?$/.exec(text);
  if (!match) throw new BadRequest('invalid _cursor');
  return { ms: Number(match[1]), id: match[2] as string, served: Number(match[3] ?? 0) };
}

export interface ParsedSearch {
  query: SearchQuery;
  lastUpdated: string[];
  sort: string | undefined;
  offset: number;
  /** How many records earlier pages of this search served (keyset paging; offset paging uses offset). */
  served: number;
  summaryCount: boolean;
  /** `patient` reference as given (`Patient/<id>` or `<id>`). */
  patient: string | undefined;
  ids: string[] | undefined;
}

/** Parses one `_lastUpdated` value (gt|ge|lt|le + instant) into the query's bounds. */
export function applyLastUpdated(q: { lower?: Bound; upper?: Bound }, value: string): void {
  const match = /^(gt|ge|lt|le)(.*)$/.exec(value);
  if (!match || !INSTANT.test(match[2] as string))
    throw new BadRequest('_lastUpdated must be gt|ge|lt|le followed by a date or instant');
  const ms = Date.parse(match[2] as string);
  if (Number.isNaN(ms)) throw new BadRequest('_lastUpdated is not a valid instant');
  const prefix = match[1] as string;
  const bound: Bound = { ms, inclusive: prefix === 'ge' || prefix === 'le' };
  if (prefix === 'gt' || prefix === 'ge') {
    if (!q.lower || bound.ms > q.lower.ms || (bound.ms === q.lower.ms && !bound.inclusive)) q.lower = bound;
  } else if (!q.upper || bound.ms < q.upper.ms || (bound.ms === q.upper.ms && !bound.inclusive)) {
    q.upper = bound;
  }
}

export function parseSearch(query: Query, maxPageSize: number, allowed: ReadonlySet<string>): ParsedSearch {
  for (const name of Object.keys(query)) {
    if (!allowed.has(name)) {
      throw new BadRequest(
        /^[A-Za-z_:.-]{1,40}$/.test(name) ? `unsupported search parameter ${name}` : 'unsupported search parameter',
        'not-supported',
      );
    }
  }
  const countRaw = single(query, '_count');
  let count = DEFAULT_COUNT;
  if (countRaw !== undefined) {
    if (!/^\d{1,9}$/.test(countRaw)) throw new BadRequest('_count must be a non-negative integer');
    count = Number(countRaw);
  }
  count = Math.min(count, maxPageSize);
  const sort = single(query, '_sort');
  if (sort !== undefined && sort !== '_lastUpdated')
    throw new BadRequest('only _sort=_lastUpdated is supported', 'not-supported');
  const format = single(query, '_format');
  if (format !== undefined && !['json', 'application/json', 'application/fhir+json'].includes(format)) {
    throw new BadRequest('only JSON is supported');
  }
  const summary = single(query, '_summary');
  if (summary !== undefined && summary !== 'count') throw new BadRequest('only _summary=count is supported');
  const q: SearchQuery = { count };
  const lastUpdated = values(query, '_lastUpdated').map((v) => v.replace(/ /g, '+'));
  for (const value of lastUpdated) applyLastUpdated(q, value);
  const cursor = single(query, '_cursor');
  let served = 0;
  if (cursor !== undefined) {
    const c = decodeCursor(cursor);
    q.after = { ms: c.ms, id: c.id };
    served = c.served;
  }
  const offsetRaw = single(query, '_getpagesoffset');
  if (offsetRaw !== undefined && (!/^\d{1,8}$/.test(offsetRaw) || Number(offsetRaw) > MAX_OFFSET))
    throw new BadRequest('_getpagesoffset must be a non-negative integer');
  const patient = single(query, 'patient');
  if (patient !== undefined && !/^(Patient\/)?[A-Za-z0-9.-]{1,64}$/.test(patient))
    throw new BadRequest('patient must be a Patient reference');
  const idRaw = single(query, '_id');
  const ids = idRaw === undefined ? undefined : idRaw.split(',').filter((s) => s.length > 0);
  if (ids && (ids.length === 0 || ids.length > 1000 || ids.some((id) => !/^[A-Za-z0-9.-]{1,64}$/.test(id))))
    throw new BadRequest('_id must be a comma-separated list of ids');
  const offset = offsetRaw === undefined ? 0 : Number(offsetRaw);
  return {
    query: q,
    lastUpdated,
    sort,
    offset,
    served: offsetRaw === undefined ? served : offset,
    summaryCount: summary === 'count',
    patient,
    ids,
  };
}
