import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedVendorDataError } from '../../lib/errors/index.js';
import { parseSearchBundle } from '../../lib/fhir/search-bundle.js';

// Synthetic data only.
function patient(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'Patient', id, meta: { versionId: '2', lastUpdated: '2024-05-01T10:00:00.000Z' }, ...extra };
}

function bundle(entries: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'Bundle', type: 'searchset', entry: entries, ...extra };
}

const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

function malformed(body: Buffer | unknown, type: 'Patient' | 'Observation' = 'Patient'): MalformedVendorDataError {
  const buf = Buffer.isBuffer(body) ? body : bytes(body);
  try {
    parseSearchBundle(type, buf);
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedVendorDataError);
    const e = err as MalformedVendorDataError;
    expect(e.retryable).toBe(false);
    expect(e.code).toBe('VENDOR_DATA_MALFORMED');
    return e;
  }
  throw new Error('the page was accepted');
}

describe('parseSearchBundle', () => {
  it('parses a valid page with its next link', () => {
    const next = 'https://vendor.example.com/fhir/Patient?_count=2&_cursor=abc';
    const page = parseSearchBundle(
      'Patient',
      bytes(
        bundle(
          [
            {
              fullUrl: 'https://vendor.example.com/fhir/Patient/p-1',
              resource: patient('p-1'),
              search: { mode: 'match' },
            },
            { resource: { resourceType: 'Patient', id: 'p-2', meta: { lastUpdated: '2024-05-02T00:00:00Z' } } },
          ],
          {
            link: [
              { relation: 'self', url: 'https://vendor.example.com/fhir/Patient?_count=2' },
              { relation: 'next', url: next },
            ],
          },
        ),
      ),
    );
    expect(page.nextUrl).toBe(next);
    expect(page.resources.map((r) => r.id)).toEqual(['p-1', 'p-2']);
    expect(page.resources[0]).toMatchObject({ versionId: '2', lastUpdated: '2024-05-01T10:00:00.000Z' });
    // Without versionId, lastUpdated stands in as the version.
    expect(page.resources[1]).toMatchObject({ versionId: '2024-05-02T00:00:00Z', lastUpdated: '2024-05-02T00:00:00Z' });
    expect(page.resources[0]?.resource).toEqual(patient('p-1'));
  });

  it('parses the last page (no next link) and an empty page', () => {
    expect(parseSearchBundle('Patient', bytes(bundle([patient('a')].map((resource) => ({ resource })))))).toMatchObject(
      { nextUrl: undefined },
    );
    expect(parseSearchBundle('Patient', bytes({ resourceType: 'Bundle', type: 'searchset', total: 0 }))).toEqual({
      resources: [],
      nextUrl: undefined,
      total: 0,
    });
  });

  it('ignores include-mode and outcome entries, even of other types', () => {
    const page = parseSearchBundle(
      'Observation',
      bytes(
        bundle([
          {
            resource: { resourceType: 'Observation', id: 'o-1', meta: { lastUpdated: '2024-01-01T00:00:00Z' } },
            search: { mode: 'match' },
          },
          { resource: { resourceType: 'Patient', id: 'p-1' }, search: { mode: 'include' } },
          { resource: { resourceType: 'OperationOutcome' }, search: { mode: 'outcome' } },
        ]),
      ),
    );
    expect(page.resources.map((r) => r.id)).toEqual(['o-1']);
  });

  it('rejects invalid JSON', () => {
    malformed(Buffer.from('{"resourceType":"Bundle",'));
    malformed(Buffer.from(''));
    malformed(Buffer.from('<html>502 Bad Gateway</html>'));
  });

  it('rejects a body that is not a Bundle', () => {
    for (const body of [
      null,
      42,
      'Bundle',
      [],
      { resourceType: 'OperationOutcome', issue: [] },
      { type: 'searchset' },
    ]) {
      malformed(body);
    }
  });

  it('rejects a Bundle that is not a searchset', () => {
    for (const type of ['batch-response', 'collection', 'history', undefined])
      malformed({ resourceType: 'Bundle', type, entry: [] });
  });

  it('rejects a non-array entry', () => {
    malformed({ resourceType: 'Bundle', type: 'searchset', entry: { resource: patient('a') } });
  });

  it('rejects entries without a resource', () => {
    malformed(bundle([{ fullUrl: 'x' }]));
    malformed(bundle(['just a string']));
    malformed(bundle([null]));
  });

  it('rejects a match entry of the wrong resourceType', () => {
    const err = malformed(
      bundle([{ resource: patient('ok') }, { resource: { ...patient('x'), resourceType: 'Observation' } }]),
    );
    expect(err.message).toContain('entry 1');
  });

  it('rejects a missing or invalid id', () => {
    malformed(bundle([{ resource: { resourceType: 'Patient', meta: { lastUpdated: '2024-01-01T00:00:00Z' } } }]));
    for (const id of ['', 'has space', 'slash/id', 'x'.repeat(65), 42])
      malformed(bundle([{ resource: patient('a', { id }) }]));
  });

  it('rejects a missing or invalid meta.lastUpdated', () => {
    malformed(bundle([{ resource: { resourceType: 'Patient', id: 'a' } }]));
    malformed(bundle([{ resource: { resourceType: 'Patient', id: 'a', meta: {} } }]));
    malformed(bundle([{ resource: { resourceType: 'Patient', id: 'a', meta: { lastUpdated: 'not a date' } } }]));
    malformed(bundle([{ resource: { resourceType: 'Patient', id: 'a', meta: { lastUpdated: 1714557600000 } } }]));
  });

  it('rejects a next link without a url', () => {
    malformed(bundle([], { link: [{ relation: 'next' }] }));
  });

  it('says nothing about the resource contents in its message', () => {
    const err = malformed(
      bundle([{ resource: { resourceType: 'Observation', id: 'o', name: [{ family: 'Synthetic-Secretname' }] } }]),
    );
    expect(err.message).not.toContain('Synthetic-Secretname');
  });

  it('does not silently drop a match entry whose search element has no mode', () => {
    const page = parseSearchBundle('Patient', bytes(bundle([{ resource: patient('a'), search: { score: 0.9 } }])));
    expect(page.resources.map((r) => r.id)).toEqual(['a']);
  });

  it('rejects a lastUpdated that is not a FHIR instant', () => {
    malformed(bundle([{ resource: patient('a', { meta: { lastUpdated: '12' } }) }]));
  });
});

describe('parseSearchBundle on truncated bodies (property)', () => {
  const fhirId = fc.stringMatching(/^[A-Za-z0-9\-.]{1,64}$/);
  const instant = fc
    .integer({ min: Date.parse('2000-01-01T00:00:00Z'), max: Date.parse('2030-01-01T00:00:00Z') })
    .map((ms) => new Date(ms).toISOString());
  const resource = fc.record({
    id: fhirId,
    versionId: fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: undefined }),
    lastUpdated: instant,
    family: fc.string({ unit: 'grapheme', maxLength: 20 }),
  });
  const validBundle = fc
    .record({
      resources: fc.array(resource, { maxLength: 6 }),
      next: fc.option(fc.webUrl(), { nil: undefined }),
      total: fc.nat(),
    })
    .map(({ resources, next, total }) => ({
      resourceType: 'Bundle',
      type: 'searchset',
      total,
      ...(next ? { link: [{ relation: 'next', url: next }] } : {}),
      entry: resources.map((r) => ({
        resource: {
          resourceType: 'Patient',
          id: r.id,
          meta: { ...(r.versionId ? { versionId: r.versionId } : {}), lastUpdated: r.lastUpdated },
          name: [{ family: r.family }],
        },
        search: { mode: 'match' },
      })),
    }));

  it('either parses identically (full body only) or throws MalformedVendorDataError', () => {
    fc.assert(
      fc.property(
        validBundle.chain((b) => {
          const body = bytes(b);
          return fc.tuple(fc.constant(body), fc.integer({ min: 0, max: body.length }));
        }),
        ([body, cut]) => {
          const full = parseSearchBundle('Patient', body);
          let result: ReturnType<typeof parseSearchBundle> | undefined;
          try {
            result = parseSearchBundle('Patient', body.subarray(0, cut));
          } catch (err) {
            expect(err).toBeInstanceOf(MalformedVendorDataError);
            expect((err as MalformedVendorDataError).retryable).toBe(false);
            return;
          }
          expect(cut).toBe(body.length);
          expect(result).toEqual(full);
        },
      ),
      { numRuns: 300 },
    );
  });
});
