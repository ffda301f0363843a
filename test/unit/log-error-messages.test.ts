/**
 * Error messages are built from identifiers only (DESIGN §4 invariants 1, 11, 12): every EhrError
 * subclass, given synthetic PHI-like input where it takes strings, says only what its documented
 * fields say — and the places that build those strings from vendor data (URLs, bundles) pass
 * identifiers, not content.
 */
import { describe, expect, it } from 'vitest';
import * as errors from '../../lib/errors/index.js';
import { EhrError, MalformedVendorDataError } from '../../lib/errors/index.js';
import { parseSearchBundle } from '../../lib/fhir/search-bundle.js';
import { errorForStatus, safePath } from '../../lib/vendors/http-policy.js';

type Ctor = new (...args: never[]) => EhrError;

function isEhrErrorClass(value: unknown): value is Ctor {
  return typeof value === 'function' && value.prototype instanceof EhrError;
}

/** Each subclass with synthetic arguments: strings here are what the caller documents (ids, reasons). */
const SAMPLES: Record<string, unknown[]> = {
  ConfigError: ['DATABASE_URL', 'is required but not set'],
  InfrastructureUnavailableError: ['postgres', '127.0.0.1:5432', 'start the dev stack'],
  NotFoundError: ['integration', 'i-1'],
  ConflictError: ['integration', 'i-1'],
  InvalidArgumentError: ['--types', 'unsupported resource type(s) Foo'],
  PolicyViolationError: ['minimum-necessary', 'Observation is outside integration i-1'],
  VendorHttpError: [404, 'GET', '/fhir/Patient'],
  VendorNetworkError: ['GET', '/fhir/Patient', 'ECONNRESET'],
  VendorTlsError: ['GET', '/fhir/Patient', 'CERT_HAS_EXPIRED'],
  VendorAuthError: ['i-1', 'token endpoint answered 401'],
  TlsPolicyError: ['vendor.example'],
  ResponseTooLargeError: ['/fhir/Patient', 1024],
  MalformedVendorDataError: ['Patient', 'entry 3 has no valid id'],
  DecryptionError: ['authentication tag mismatch'],
  AuditWriteError: ['records.stored', 'connection lost'],
  IntegrationRevokedError: ['i-1', 'revoked'],
  ScopeNotGrantedError: ['i-1', 'Observation'],
  ScopeNotAdvertisedError: ['i-1', 'Specimen'],
  CircuitOpenError: ['i-1', 30_000, 'VENDOR_HTTP_503'],
  ScopeUnderIncidentError: ['audit export', 'inc-1', 'tenant:t-1'],
  SecretRefRefusedError: ['--client-secret-ref', 'outside-secret-roots', 'must name a file under a secret root'],
  KeyRotationRolledBackError: ['keys/t-1/dek/2026-12-05T00:00:00Z', 'retireTenantDek failed (TEST_FAULT)'],
  ReadPlanError: ['i-1', "Group $export needs the vendor's Group id", 'ehrctl integrations update i-1 --group-id <id>'],
  ClientIdPendingError: ['i-1'],
  BulkExportError: ['BULK_KICKOFF_REFUSED', 'kick-off', 'the vendor answered 403', 'forbidden'],
  BulkFileExpiredError: [2, 410],
  AlertHookError: [503, 'the hook answered 503'],
  GatewayRefusalError: [401, 'invalid_token', 'token-expired', 'consumer-1', 't-1'],
  WriteBackContendedError: ['change-1', 3],
  OutboxTransitionError: ['change-1', 'sent', 'cancel'],
};

const subclasses: Array<[string, Ctor]> = Object.entries(errors as Record<string, unknown>).flatMap(([name, value]) =>
  isEhrErrorClass(value) ? [[name, value] as [string, Ctor]] : [],
);

describe('EhrError messages', () => {
  it('has a sample for every EhrError subclass (add one when adding an error)', () => {
    const missing = subclasses.map(([name]) => name).filter((name) => !(name in SAMPLES));
    expect(missing).toEqual([]);
  });

  it.each(subclasses.filter(([name]) => name in SAMPLES))('%s says only its documented fields', (name, Ctor) => {
    const args = SAMPLES[name]!;
    const err = new Ctor(...(args as never[]));
    // Strip every argument and the fixed template: nothing of substance may remain.
    let rest = err.message;
    for (const arg of [...args].sort((a, b) => String(b).length - String(a).length))
      rest = rest.split(String(arg)).join(' ');
    const words = rest.match(/[A-Za-z0-9]{4,}/g) ?? [];
    // What remains is the class's own wording: it does not vary with input.
    const other = new Ctor(...(args.map((a) => (typeof a === 'string' ? `${a}-x` : a)) as never[]));
    let otherRest = other.message;
    for (const arg of args
      .map((a) => (typeof a === 'string' ? `${a}-x` : a))
      .sort((a, b) => String(b).length - String(a).length)) {
      otherRest = otherRest.split(String(arg)).join(' ');
    }
    expect(otherRest.match(/[A-Za-z0-9]{4,}/g) ?? []).toEqual(words);
    expect(err.code).toMatch(/^[A-Z0-9_]+$/);
  });
});

describe('vendor-derived error text', () => {
  it('puts the path of a vendor URL into HTTP errors, never its query string', () => {
    const url = new URL(
      'https://vendor.example/fhir/Patient?family=Synthfamily&birthdate=1970-01-01&identifier=SYN-MRN-00000001',
    );
    const err = errorForStatus(new Response(null, { status: 404 }), 'GET', safePath(url));
    expect(err.message).toBe('vendor answered 404 to GET /fhir/Patient');
    for (const phi of ['Synthfamily', '1970-01-01', 'SYN-MRN-00000001', '?']) expect(err.message).not.toContain(phi);
  });

  it('describes a malformed page by position and shape, never by the content of its resources', () => {
    const phi = {
      name: [{ family: 'Synthfamily' }],
      birthDate: '1970-01-01',
      identifier: [{ value: 'SYN-MRN-00000001' }],
    };
    const pages: unknown[] = [
      {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [
          {
            resource: {
              resourceType: 'Patient',
              id: 'p 1 Synthfamily',
              meta: { lastUpdated: '2024-01-01T00:00:00Z' },
              ...phi,
            },
          },
        ],
      },
      {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [
          {
            resource: { resourceType: 'Observation', id: 'o-1', meta: { lastUpdated: '2024-01-01T00:00:00Z' }, ...phi },
          },
        ],
      },
      {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [{ resource: { resourceType: 'Patient', id: 'p-1', meta: { lastUpdated: 'Synthfamily' }, ...phi } }],
      },
      { resourceType: 'Synthfamily', ...phi },
      '{"resourceType":"Bundle","entry":[{"family":"Synthfamily"',
    ];
    for (const page of pages) {
      const body = Buffer.from(typeof page === 'string' ? page : JSON.stringify(page), 'utf8');
      let err: unknown;
      try {
        parseSearchBundle('Patient', body);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MalformedVendorDataError);
      const message = (err as Error).message;
      for (const value of ['Synthfamily', '1970-01-01', 'SYN-MRN-00000001']) expect(message).not.toContain(value);
    }
  });
});
