/**
 * The gateway's search parameters: `_lastUpdated` ranges by precision and prefix, parameters it does not implement
 * named in the error (never ignored), page sizes capped, and cursors bound to the search they came from.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_COUNT,
  SearchParamError,
  encodeCursor,
  lastUpdatedBounds,
  parseSearch,
  searchParamsOf,
} from '../../lib/gateway/fhir/search-params.js';

const parse = (query: string, type = 'Observation') =>
  parseSearch(type, new URLSearchParams(query), ['_id', '_lastUpdated', 'patient'], 1);

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SearchParamError) return err.parameter;
    throw err;
  }
  throw new Error('not refused');
}

describe('_lastUpdated', () => {
  it('covers the whole range of a date at its precision, per prefix', () => {
    expect(lastUpdatedBounds('2026-03')).toEqual([
      { op: '>=', at: '2026-03-01T00:00:00.000Z' },
      { op: '<', at: '2026-04-01T00:00:00.000Z' },
    ]);
    expect(lastUpdatedBounds('gt2026-12-31')).toEqual([{ op: '>=', at: '2027-01-01T00:00:00.000Z' }]);
    expect(lastUpdatedBounds('le2026')).toEqual([{ op: '<', at: '2027-01-01T00:00:00.000Z' }]);
    expect(lastUpdatedBounds('lt2026-01-02T10:00+02:00')).toEqual([{ op: '<', at: '2026-01-02T08:00:00.000Z' }]);
    expect(lastUpdatedBounds('ge2026-01-02T10:00:05.123Z')).toEqual([{ op: '>=', at: '2026-01-02T10:00:05.123Z' }]);
    expect(lastUpdatedBounds('eq2026-01-02T10:00:05Z')).toEqual([
      { op: '>=', at: '2026-01-02T10:00:05.000Z' },
      { op: '<', at: '2026-01-02T10:00:06.000Z' },
    ]);
  });

  it('refuses prefixes it does not implement, invalid dates and times without a zone', () => {
    expect(refusal(() => lastUpdatedBounds('ne2026'))).toBe('_lastUpdated prefix ne');
    expect(refusal(() => lastUpdatedBounds('ap2026'))).toBe('_lastUpdated prefix ap');
    expect(refusal(() => lastUpdatedBounds('2026-02-30'))).toBe('_lastUpdated');
    expect(refusal(() => lastUpdatedBounds('2026-01-02T10:00'))).toBe('_lastUpdated');
    expect(refusal(() => lastUpdatedBounds('yesterday'))).toBe('_lastUpdated');
  });
});

describe('parseSearch', () => {
  it('names every parameter it does not implement, modifiers included, and repeated single parameters', () => {
    expect(refusal(() => parse('code=1'))).toBe('code');
    expect(refusal(() => parse('_id:not=1'))).toBe('_id:not');
    expect(refusal(() => parse('_format=json'))).toBe('_format');
    expect(refusal(() => parse('_id=a&_id=b'))).toBe('_id');
    expect(refusal(() => parse('patient='))).toBe('patient');
    expect(refusal(() => parse('_id=a%20b'))).toBe('_id');
    expect(refusal(() => parse('_count=-1'))).toBe('_count');
  });

  it('reads lists, strips Patient/ references, caps _count and keeps the link query without the cursor', () => {
    const s = parse('_id=a,b,a&patient=Patient/p-1,p-2&_lastUpdated=ge2026&_lastUpdated=lt2027&_count=50000');
    expect(s.ids).toEqual(['a', 'b']);
    expect(s.patientIds).toEqual(['p-1', 'p-2']);
    expect(s.lastUpdated).toHaveLength(2);
    expect(s.count).toBe(MAX_COUNT);
    expect(s.linkQuery.get('_count')).toBe(String(MAX_COUNT));
  });

  it('accepts a cursor only for the search it came from, whatever the page size', () => {
    const query = new URLSearchParams('_id=a,b&_count=1');
    const cursor = encodeCursor('Observation', query, ['a']);
    expect(parse(`_id=a,b&_count=5&_cursor=${cursor}`).cursor).toEqual({ after: ['a'] });
    expect(refusal(() => parse(`_id=a&_cursor=${cursor}`))).toBe('_cursor');
    expect(refusal(() => parse(`_id=a,b&_cursor=${cursor}`, 'Encounter'))).toBe('_cursor');
    expect(refusal(() => parse('_cursor=not-a-cursor'))).toBe('_cursor');
  });

  it('offers patient= only on types that belong to a patient', () => {
    expect(searchParamsOf('Observation')).toContain('patient');
    expect(searchParamsOf('Patient')).not.toContain('patient');
    expect(searchParamsOf('Practitioner')).not.toContain('patient');
  });
});
