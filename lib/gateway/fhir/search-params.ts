/**
 * The gateway's search parameters, parsed strictly: a parameter it does not implement (or a modifier, or a
 * `_lastUpdated` prefix it does not implement) is a 400 naming it, never ignored.
 *
 *   _id            comma-separated ids (any of them), at most once
 *   patient        comma-separated patient ids or `Patient/<id>` references, at most once; only on types that
 *                  belong to a patient (not on Patient — use _id — nor the directory types)
 *   _lastUpdated   [eq|gt|ge|lt|le]<FHIR date or dateTime>, repeatable (all must hold); a date or a time without
 *                  seconds covers its whole range (`eq2026-03` is March 2026); dates without a zone are UTC
 *   _count         page size, 1.. (more than MAX_COUNT is served as MAX_COUNT); default DEFAULT_COUNT
 *   _cursor        the opaque `next` link cursor, bound to the search it came from
 */
import { createHash } from 'node:crypto';
import type { ResourceType } from '../../domain.js';
import type { LastUpdatedBound } from '../../store/record-reads.js';

export const DEFAULT_COUNT = 100;
export const MAX_COUNT = 1000;
/** Values in one `_id` or `patient` list. */
const MAX_LIST = 100;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Types that belong to no one patient (or are the patient): no `patient` search parameter. */
const WITHOUT_PATIENT_PARAM: ReadonlySet<ResourceType> = new Set<ResourceType>([
  'Patient',
  'Location',
  'Medication',
  'Organization',
  'Practitioner',
  'PractitionerRole',
]);

export function hasPatientParam(type: ResourceType): boolean {
  return !WITHOUT_PATIENT_PARAM.has(type);
}

/** The search parameters a type supports (paging parameters aside), as the CapabilityStatement lists them. */
export function searchParamsOf(type: ResourceType): string[] {
  return hasPatientParam(type) ? ['_id', '_lastUpdated', 'patient'] : ['_id', '_lastUpdated'];
}

export class SearchParamError extends Error {
  constructor(
    readonly parameter: string,
    readonly problem: string,
  ) {
    super(`search parameter ${parameter}: ${problem}`);
  }
}

export interface Cursor {
  after: string[];
}

export interface ParsedSearch {
  ids?: string[];
  patientIds?: string[];
  lastUpdated: LastUpdatedBound[];
  count: number;
  cursor?: Cursor;
  /** The query with `_cursor` removed and `_count` as served: the base of the self and next links. */
  linkQuery: URLSearchParams;
}

function once(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw new SearchParamError(name, 'may appear only once');
  if (values.length === 1 && values[0] === '') throw new SearchParamError(name, 'is empty');
  return values[0];
}

function idList(name: string, value: string, strip?: string): string[] {
  const ids = value.split(',').map((v) => (strip && v.startsWith(strip) ? v.slice(strip.length) : v));
  if (ids.length > MAX_LIST) throw new SearchParamError(name, `lists more than ${MAX_LIST} values`);
  for (const id of ids) if (!FHIR_ID.test(id)) throw new SearchParamError(name, 'is not a valid FHIR id');
  return [...new Set(ids)];
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** The instant range [start, end) a FHIR date or dateTime covers at its precision. */
function dateRange(value: string): { start: Date; end: Date } {
  const m = DATE.exec(value);
  if (!m) throw new SearchParamError('_lastUpdated', 'is not a FHIR date or dateTime with a zone');
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const iso = `${y}-${mo ?? '01'}-${d ?? '01'}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}.${(frac ?? '0').slice(0, 3).padEnd(3, '0')}${zone ?? 'Z'}`;
  const start = new Date(iso);
  const check = new Date(Date.UTC(Number(y), Number(mo ?? 1) - 1, Number(d ?? 1)));
  const validDay = check.getUTCMonth() === Number(mo ?? 1) - 1 && check.getUTCDate() === Number(d ?? 1);
  if (Number.isNaN(start.getTime()) || !validDay || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 59)
    throw new SearchParamError('_lastUpdated', 'is not a valid date');
  const end = new Date(start);
  if (frac !== undefined) end.setTime(start.getTime() + 1);
  else if (s !== undefined) end.setTime(start.getTime() + 1000);
  else if (mi !== undefined) end.setTime(start.getTime() + 60_000);
  else if (d !== undefined) end.setUTCDate(end.getUTCDate() + 1);
  else if (mo !== undefined) end.setUTCMonth(end.getUTCMonth() + 1);
  else end.setUTCFullYear(end.getUTCFullYear() + 1);
  return { start, end };
}

export function lastUpdatedBounds(value: string): LastUpdatedBound[] {
  const m = /^([a-z]{2})?(\d.*)$/.exec(value);
  if (!m) throw new SearchParamError('_lastUpdated', 'is not a FHIR date or dateTime with a zone');
  const prefix = m[1] ?? 'eq';
  const { start, end } = dateRange(m[2]!);
  switch (prefix) {
    case 'eq':
      return [
        { op: '>=', at: start.toISOString() },
        { op: '<', at: end.toISOString() },
      ];
    case 'ge':
      return [{ op: '>=', at: start.toISOString() }];
    case 'gt':
      return [{ op: '>=', at: end.toISOString() }];
    case 'lt':
      return [{ op: '<', at: start.toISOString() }];
    case 'le':
      return [{ op: '<', at: end.toISOString() }];
    default:
      throw new SearchParamError(`_lastUpdated prefix ${prefix}`, 'is not supported (eq, gt, ge, lt, le are)');
  }
}

function parseCount(value: string | undefined): number {
  if (value === undefined) return DEFAULT_COUNT;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new SearchParamError('_count', 'must be an integer >= 1');
  return Math.min(Number(value), MAX_COUNT);
}

/** What a cursor is bound to: the search's target and its filters (not its page size). */
function searchKey(target: string, query: URLSearchParams): string {
  const entries = [...query.entries()].filter(([k]) => k !== '_cursor' && k !== '_count').sort();
  return createHash('sha256')
    .update(JSON.stringify([target, entries]))
    .digest('base64url')
    .slice(0, 16);
}

export function encodeCursor(target: string, query: URLSearchParams, after: string[]): string {
  return Buffer.from(JSON.stringify({ v: 1, q: searchKey(target, query), a: after }), 'utf8').toString('base64url');
}

function decodeCursor(target: string, query: URLSearchParams, token: string, parts: number): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new SearchParamError('_cursor', 'is not a cursor of this server');
  }
  const c = parsed as { v?: unknown; q?: unknown; a?: unknown };
  const after = c.a;
  if (c.v !== 1 || !Array.isArray(after) || after.length !== parts || !after.every((a) => typeof a === 'string'))
    throw new SearchParamError('_cursor', 'is not a cursor of this server');
  if (c.q !== searchKey(target, query)) throw new SearchParamError('_cursor', 'belongs to another search');
  return { after: after as string[] };
}

/**
 * Parses a search's query. `target` names what is searched (e.g. `Observation`, `Patient/p-1/$everything`);
 * `allowed` the filter parameters it takes besides `_count` and `_cursor`; `cursorParts` the keyset's width.
 */
export function parseSearch(
  target: string,
  query: URLSearchParams,
  allowed: readonly string[],
  cursorParts: number,
): ParsedSearch {
  for (const name of new Set(query.keys())) {
    if (name !== '_count' && name !== '_cursor' && !allowed.includes(name))
      throw new SearchParamError(name, `is not supported here (supported: ${[...allowed, '_count'].join(', ')})`);
  }
  const idValue = once(query, '_id');
  const patientValue = once(query, 'patient');
  const count = parseCount(once(query, '_count'));
  const cursorValue = once(query, '_cursor');
  const lastUpdated = query.getAll('_lastUpdated').flatMap((v) => {
    if (v === '') throw new SearchParamError('_lastUpdated', 'is empty');
    return lastUpdatedBounds(v);
  });
  const linkQuery = new URLSearchParams([...query.entries()].filter(([k]) => k !== '_cursor' && k !== '_count'));
  linkQuery.set('_count', String(count));
  return {
    ...(idValue !== undefined ? { ids: idList('_id', idValue) } : {}),
    ...(patientValue !== undefined ? { patientIds: idList('patient', patientValue, 'Patient/') } : {}),
    lastUpdated,
    count,
    ...(cursorValue !== undefined ? { cursor: decodeCursor(target, query, cursorValue, cursorParts) } : {}),
    linkQuery,
  };
}
