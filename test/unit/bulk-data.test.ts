/**
 * Bulk Data on our side, without a server: NDJSON split into lines whatever the chunking, Retry-After in
 * both forms, the manifest checked before anything is downloaded, where files may come from, and each
 * kind of line read or refused on its own.
 */
import { describe, expect, it } from 'vitest';
import { BulkExportError } from '../../lib/errors/index.js';
import { outcomeIssueCodes, parseDeletedLine, parseOutputLine } from '../../lib/sync/bulk-lines.js';
import { kickoffUrl, parseManifest, progressText } from '../../lib/sync/bulk-manifest.js';
import { fileOrigin, isVendorOrigin } from '../../lib/vendors/bulk-hosts.js';
import { parseRetryAfterMs } from '../../lib/vendors/http-policy.js';
import { ndjsonLines, type NdjsonLine } from '../../lib/vendors/ndjson-lines.js';

async function split(chunks: Array<string | Buffer>, cap = 1024): Promise<NdjsonLine[]> {
  async function* source(): AsyncGenerator<Uint8Array> {
    for (const c of chunks) yield typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
  }
  const out: NdjsonLine[] = [];
  for await (const line of ndjsonLines(source(), cap)) {
    // A line's bytes are its text, undecoded (the bulk reader stores them as they are).
    const { bytes, ...rest } = line;
    expect(bytes?.toString('utf8')).toBe(line.text);
    out.push(rest as NdjsonLine);
  }
  return out;
}

describe('NDJSON lines', () => {
  it('are the same lines however the body is cut into chunks, CRLF and a missing final newline included', async () => {
    const text = '{"a":1}\r\n{"b":"é✓"}\n\n{"c":3}';
    const whole = await split([text]);
    expect(whole).toEqual([
      { number: 1, text: '{"a":1}' },
      { number: 2, text: '{"b":"é✓"}' },
      { number: 3, text: '' },
      { number: 4, text: '{"c":3}' },
    ]);
    // Byte by byte: multi-byte characters are cut in the middle and still come out whole.
    const bytes = Buffer.from(text, 'utf8');
    const oneByOne = await split([...bytes].map((b) => Buffer.from([b])));
    expect(oneByOne).toEqual(whole);
  });

  it('drops a line longer than the cap as it streams, reports it by number, and goes on', async () => {
    const long = 'x'.repeat(100);
    const lines = await split(['{"ok":1}\n', long.slice(0, 40), long.slice(40), '\n{"ok":2}\n'], 64);
    expect(lines).toEqual([
      { number: 1, text: '{"ok":1}' },
      { number: 2, oversize: true },
      { number: 3, text: '{"ok":2}' },
    ]);
    expect(await split([long], 64)).toEqual([{ number: 1, oversize: true }]);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2024-05-01T10:00:00Z');
  it('reads delta-seconds and an HTTP-date, and ignores anything else', () => {
    expect(parseRetryAfterMs('7', now)).toBe(7000);
    expect(parseRetryAfterMs('Wed, 01 May 2024 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs('Wed, 01 May 2024 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs(null, now)).toBeUndefined();
    // A hostile value cannot park the export for days.
    expect(parseRetryAfterMs('999999', now)).toBe(600_000);
  });
});

const BASE = 'https://ehr.example.com/fhir/r4';
const access = { baseUrl: BASE, fileHosts: ['files.example.net', 'cdn.example.org:8443'] };
const manifest = (m: Record<string, unknown>): Buffer =>
  Buffer.from(JSON.stringify({ transactionTime: '2024-05-01T10:00:00.123+02:00', request: 'x', ...m }));

describe('manifest', () => {
  it('keeps what the IG describes: transactionTime as UTC, counts, and requiresAccessToken (absent: true)', () => {
    const m = parseManifest(
      manifest({
        output: [
          { type: 'Patient', url: `${BASE}/files/p1.ndjson`, count: 3 },
          { type: 'Observation', url: 'https://files.example.net/o1.ndjson?sig=abc' },
        ],
        error: [{ type: 'OperationOutcome', url: 'https://cdn.example.org:8443/e.ndjson' }],
        deleted: [{ type: 'Bundle', url: `${BASE}/files/d.ndjson` }],
      }),
      access,
    );
    expect(m.transactionTime).toBe('2024-05-01T08:00:00.123Z');
    expect(m.requiresAccessToken).toBe(true);
    expect(m.output.map((f) => [f.type, f.count])).toEqual([
      ['Patient', 3],
      ['Observation', null],
    ]);
    expect(m.output[1]!.url).toBe('https://files.example.net/o1.ndjson?sig=abc');
    expect(m.error).toHaveLength(1);
    expect(m.deleted).toHaveLength(1);
    expect(parseManifest(manifest({ requiresAccessToken: false, output: [] }), access).requiresAccessToken).toBe(false);
  });

  it.each([
    ['a body that is not JSON', Buffer.from('<html>done</html>'), 'BULK_MANIFEST_INVALID', /not JSON/],
    ['no transactionTime', Buffer.from(JSON.stringify({ output: [] })), 'BULK_MANIFEST_INVALID', /transactionTime/],
    ['output not a list', manifest({ output: {} }), 'BULK_MANIFEST_INVALID', /output is not an array/],
    [
      'a negative count',
      manifest({ output: [{ type: 'Patient', url: `${BASE}/f`, count: -1 }] }),
      'BULK_MANIFEST_INVALID',
      /count/,
    ],
    [
      'a paged manifest',
      manifest({ link: [{ relation: 'next', url: `${BASE}/m2` }] }),
      'BULK_MANIFEST_INVALID',
      /paged/,
    ],
    [
      'an output URL on a host the integration does not allow',
      manifest({ output: [{ type: 'Patient', url: 'https://evil.example.com/p.ndjson' }] }),
      'BULK_HOST_REFUSED',
      /output\[0\] is on evil\.example\.com/,
    ],
    [
      'a plain-http file URL off loopback',
      manifest({ deleted: [{ type: 'Bundle', url: 'http://files.example.net/d.ndjson' }] }),
      'BULK_HOST_REFUSED',
      /deleted\[0\]/,
    ],
  ])('refuses %s, non-retryably, naming the step', (_what, body, code, message) => {
    let err: unknown;
    try {
      parseManifest(body, access);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BulkExportError);
    expect(err).toMatchObject({ code, step: 'manifest', retryable: false });
    expect((err as Error).message).toMatch(message);
  });

  it('shows X-Progress only as plain, short text', () => {
    expect(progressText('42% <script>alert(1)</script>')).toBe('42% scriptalert(1)/script');
    expect(progressText('x'.repeat(500))).toHaveLength(80);
    expect(progressText(null)).toBeNull();
  });
});

describe('where files and status URLs may be', () => {
  it('files: the vendor origin or an allowed host (port-exact when the entry names one), https or loopback', () => {
    const base = `${BASE}`;
    expect(fileOrigin(new URL('https://ehr.example.com/other/f.ndjson'), base, [])).toBe('vendor');
    expect(fileOrigin(new URL('https://FILES.example.net/f'), base, ['files.example.net'])).toBe('file-host');
    expect(fileOrigin(new URL('https://cdn.example.org:8443/f'), base, ['cdn.example.org:8443'])).toBe('file-host');
    expect(fileOrigin(new URL('https://cdn.example.org:9443/f'), base, ['cdn.example.org:8443'])).toBe('refused');
    expect(fileOrigin(new URL('https://files.example.net.evil.com/f'), base, ['files.example.net'])).toBe('refused');
    expect(fileOrigin(new URL('http://files.example.net/f'), base, ['files.example.net'])).toBe('refused');
    expect(fileOrigin(new URL('https://u:p@files.example.net/f'), base, ['files.example.net'])).toBe('refused');
    expect(fileOrigin(new URL('http://127.0.0.1:9/f'), 'http://127.0.0.1:8/fhir', ['127.0.0.1:9'])).toBe('file-host');
  });

  it('status URLs: only on the vendor origin, any path (the token goes there on every poll)', () => {
    expect(isVendorOrigin(new URL(`${BASE}/$export-poll-status?job=1`), BASE)).toBe(true);
    expect(isVendorOrigin(new URL('https://ehr.example.com/bulk/status/1'), BASE)).toBe(true);
    expect(isVendorOrigin(new URL('https://status.example.com/fhir/r4/status'), BASE)).toBe(false);
    expect(isVendorOrigin(new URL('https://ehr.example.com:8443/fhir/r4/status'), BASE)).toBe(false);
  });
});

describe('kick-off URL', () => {
  it('names the level, the types, _since and each _typeFilter', () => {
    const group = kickoffUrl(`${BASE}/`, {
      level: 'group',
      groupId: 'g-1',
      types: ['Patient', 'Observation'],
      since: '2024-05-01T08:00:00.000Z',
      typeFilter: ['Observation?category=laboratory', 'Patient?active=true'],
    });
    expect(group.pathname).toBe('/fhir/r4/Group/g-1/$export');
    expect(group.searchParams.get('_type')).toBe('Patient,Observation');
    expect(group.searchParams.get('_since')).toBe('2024-05-01T08:00:00.000Z');
    expect(group.searchParams.getAll('_typeFilter')).toEqual([
      'Observation?category=laboratory',
      'Patient?active=true',
    ]);
    const system = kickoffUrl(BASE, { level: 'system', types: ['Patient'], since: null });
    expect(system.pathname).toBe('/fhir/r4/$export');
    expect(system.searchParams.has('_since')).toBe(false);
    expect(kickoffUrl(BASE, { level: 'patient', types: [], since: null }).pathname).toBe('/fhir/r4/Patient/$export');
    expect(() => kickoffUrl(BASE, { level: 'group', groupId: '../x', types: [], since: null })).toThrow(
      BulkExportError,
    );
  });
});

describe('file lines', () => {
  const T = '2024-05-01T08:00:00.000Z';
  it('output: a resource of the file type with an id; versionId and lastUpdated fall back sensibly', () => {
    const line = JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { versionId: '3', lastUpdated: T } });
    expect(parseOutputLine(line, 'Patient', T)).toMatchObject({ id: 'p1', versionId: '3', lastUpdated: T });
    const bare = parseOutputLine('{"resourceType":"Patient","id":"p2"}', 'Patient', T);
    expect(bare).toMatchObject({ id: 'p2', versionId: T, lastUpdated: T });
    for (const bad of [
      '{"resourceType":"Patient","id":"p1",',
      '[1,2]',
      '{"resourceType":"Observation","id":"o1"}',
      '{"resourceType":"Patient","id":"has space"}',
      '{"resourceType":"Patient","id":"p3","meta":{"lastUpdated":"yesterday"}}',
    ])
      expect(parseOutputLine(bad, 'Patient', T)).toBeUndefined();
  });

  it('deleted: Bundles of DELETE requests, relative or absolute', () => {
    const line = JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'DELETE', url: 'Patient/p1' } },
        { request: { method: 'DELETE', url: `${BASE}/Observation/o-9` } },
      ],
    });
    expect(parseDeletedLine(line)).toEqual([
      { resourceType: 'Patient', id: 'p1' },
      { resourceType: 'Observation', id: 'o-9' },
    ]);
    expect(parseDeletedLine('{"resourceType":"Bundle","entry":[{"request":{"method":"PUT","url":"Patient/p"}}]}')).toBe(
      undefined,
    );
    expect(parseDeletedLine('not json')).toBeUndefined();
  });

  it('error: only the issue codes of an OperationOutcome, never its text', () => {
    const line = JSON.stringify({
      resourceType: 'OperationOutcome',
      issue: [
        { severity: 'error', code: 'processing', diagnostics: 'Patient Jane Doe could not be exported' },
        { severity: 'error', code: 'Not A Code!' },
      ],
    });
    expect(outcomeIssueCodes(line)).toEqual(['processing', 'unknown']);
    expect(outcomeIssueCodes('{"resourceType":"Patient"}')).toBeUndefined();
  });
});
