import { describe, expect, it } from 'vitest';
import { MalformedVendorDataError } from '../../lib/errors/index.js';
import { UNKNOWN_CAPABILITIES, parseCapabilityStatement } from '../../lib/fhir/capabilities.js';
import { parseHistoryDeletions } from '../../lib/fhir/history-bundle.js';
import { planRead, readStrategyOf } from '../../lib/sync/read-strategy.js';

const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

function statement(resources: unknown[], serverParams: unknown[] = []): Buffer {
  return bytes({
    resourceType: 'CapabilityStatement',
    rest: [{ mode: 'server', searchParam: serverParams, resource: resources }],
  });
}

describe('server capabilities', () => {
  it('reads _sort, _lastUpdated and type history per type from the CapabilityStatement', () => {
    const caps = parseCapabilityStatement(
      statement([
        {
          type: 'Observation',
          searchParam: [{ name: '_lastUpdated' }, { name: '_sort' }],
          interaction: [{ code: 'search-type' }, { code: 'history-type' }],
        },
        { type: 'Patient', searchParam: [{ name: '_lastUpdated' }], interaction: [{ code: 'read' }] },
      ]),
    );
    expect(caps).toEqual({
      known: true,
      sortable: ['Observation'],
      typeHistory: ['Observation'],
      lastUpdated: ['Observation', 'Patient'],
    });
  });

  it('a server-wide _sort parameter makes every type sortable', () => {
    const caps = parseCapabilityStatement(statement([{ type: 'Patient' }, { type: 'Condition' }], [{ name: '_sort' }]));
    expect(caps.sortable).toEqual(['Patient', 'Condition']);
    expect(caps.lastUpdated).toBeNull();
  });

  it('anything unreadable offers nothing optional', () => {
    expect(parseCapabilityStatement(Buffer.from('<html>'))).toEqual(UNKNOWN_CAPABILITIES);
    expect(parseCapabilityStatement(bytes({ resourceType: 'Bundle' }))).toEqual(UNKNOWN_CAPABILITIES);
    expect(parseCapabilityStatement(bytes({ resourceType: 'CapabilityStatement' }))).toEqual(UNKNOWN_CAPABILITIES);
  });
});

describe('deletions in a type history', () => {
  it('takes DELETE entries and 410 responses, with their time when given, and nothing else', () => {
    const page = parseHistoryDeletions(
      'Observation',
      bytes({
        resourceType: 'Bundle',
        type: 'history',
        link: [{ relation: 'next', url: 'https://fhir.example/Observation/_history?page=2' }],
        entry: [
          { request: { method: 'DELETE', url: 'Observation/o-1/_history/3' }, response: { status: '204' } },
          {
            fullUrl: 'https://fhir.example/Observation/o-2',
            request: { method: 'PUT', url: 'Observation/o-2' },
            response: { status: '410 Gone', lastModified: '2026-01-02T03:04:05Z' },
          },
          { resource: { resourceType: 'Observation', id: 'o-3' }, request: { method: 'PUT', url: 'Observation/o-3' } },
        ],
      }),
    );
    expect(page.deletions).toEqual([
      { resourceId: 'o-1', deletedAt: undefined },
      { resourceId: 'o-2', deletedAt: '2026-01-02T03:04:05Z' },
    ]);
    expect(page.nextUrl).toBe('https://fhir.example/Observation/_history?page=2');
  });

  it('refuses what is not a history Bundle, and a deletion without an id', () => {
    expect(() => parseHistoryDeletions('Observation', bytes({ resourceType: 'Bundle', type: 'searchset' }))).toThrow(
      MalformedVendorDataError,
    );
    const noId = { resourceType: 'Bundle', type: 'history', entry: [{ request: { method: 'DELETE', url: 'x' } }] };
    expect(() => parseHistoryDeletions('Observation', bytes(noId))).toThrow(/names no resource id/);
  });
});

describe('read strategy and plan', () => {
  const integration = (vendor: string, over: Record<string, unknown> = {}) => ({
    vendor,
    readStrategy: null,
    readOptions: {},
    ...over,
  });

  it('follows the vendor profile unless the integration names a strategy', () => {
    expect(readStrategyOf(integration('epic')).strategy).toBe('bulk');
    expect(readStrategyOf(integration('athenahealth')).strategy).toBe('patient');
    expect(readStrategyOf(integration('sandbox')).strategy).toBe('search');
    expect(readStrategyOf(integration('epic', { readStrategy: 'patient' })).strategy).toBe('patient');
    expect(readStrategyOf(integration('sandbox', { readOptions: { overlapSeconds: 9 } })).overlapSeconds).toBe(9);
  });

  it('sorts and reads history only where the server offers them, history since the stored checkpoint', () => {
    const plan = planRead({
      integration: integration('sandbox'),
      capabilities: { known: true, sortable: ['Observation'], typeHistory: ['Patient'], lastUpdated: null },
      types: [
        { resourceType: 'Patient', since: null },
        { resourceType: 'Observation', since: null },
      ],
      checkpoints: new Map([['Patient', '2026-01-01T00:00:00.000Z']]),
    });
    expect(plan.strategy).toBe('search');
    expect(plan.sortable).toEqual(['Observation']);
    expect(plan.typeHistory).toEqual([{ resourceType: 'Patient', since: '2026-01-01T00:00:00.000Z' }]);
  });

  it('patient and bulk strategies read history where the server offers it (patient: not of directory types)', () => {
    const input = (vendor: string, readStrategy: 'patient' | 'bulk') => ({
      integration: integration(vendor, { readStrategy }),
      capabilities: {
        known: true,
        sortable: [],
        typeHistory: ['Patient', 'Observation', 'Practitioner'],
        lastUpdated: null,
      },
      types: (['Patient', 'Condition', 'Observation', 'Practitioner'] as const).map((resourceType) => ({
        resourceType,
        since: null,
      })),
      checkpoints: new Map([
        ['Patient', '2026-01-01T00:00:00.000Z'],
        ['Condition', '2026-01-02T00:00:00.000Z'],
        ['Practitioner', '2026-01-03T00:00:00.000Z'],
      ]),
    });
    // Observation has no checkpoint yet (a first read has nothing stored to delete); Condition has no history.
    expect(planRead(input('sandbox', 'patient')).typeHistory).toEqual([
      { resourceType: 'Patient', since: '2026-01-01T00:00:00.000Z' },
    ]);
    // An export's manifest may carry no deleted[] (HAPI's never does): the bulk strategy reads history too, each type
    // since its checkpoint from before the export, directory types included (an export reads them).
    expect(planRead(input('sandbox', 'bulk')).typeHistory).toEqual([
      { resourceType: 'Patient', since: '2026-01-01T00:00:00.000Z' },
      { resourceType: 'Practitioner', since: '2026-01-03T00:00:00.000Z' },
    ]);
  });

  it('bulk takes the first level the vendor offers, and a patient roster defaults to a Patient search', () => {
    const epic = planRead({
      integration: integration('epic', { readOptions: { groupId: 'g-1' } }),
      capabilities: UNKNOWN_CAPABILITIES,
      types: [{ resourceType: 'Patient', since: null }],
      checkpoints: new Map(),
    });
    expect(epic.bulk).toEqual({ level: 'group', groupId: 'g-1', incremental: false });
    const athena = planRead({
      integration: integration('athenahealth'),
      capabilities: UNKNOWN_CAPABILITIES,
      types: [{ resourceType: 'Patient', since: null }],
      checkpoints: new Map(),
    });
    expect(athena.roster).toEqual({ search: '_count=500' });
    expect(athena.skip).toBeUndefined();
    const withDirectory = planRead({
      integration: integration('athenahealth'),
      capabilities: UNKNOWN_CAPABILITIES,
      types: [
        { resourceType: 'Patient', since: null },
        { resourceType: 'Practitioner', since: null },
      ],
      checkpoints: new Map(),
    });
    expect(withDirectory.skip).toEqual([
      expect.objectContaining({ resourceType: 'Practitioner', reason: 'TYPE_NOT_PATIENT_SCOPED' }),
    ]);
    expect(athena.typeHistory).toEqual([]);
  });
});
