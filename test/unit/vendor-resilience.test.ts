/**
 * Resilient vendor HTTP through the one door (lib/vendors/vendor-client.ts) against the sandbox: a 429
 * waits as the vendor's profile says, Retry-After as an HTTP-date reaches Temporal's nextRetryDelay,
 * the circuit breaker stops calls from reaching a failing vendor, and writes with the same
 * Idempotency-Key create once.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atActivityBoundary } from '../../activities/boundary.js';
import { CircuitOpenError, VendorHttpError, toApplicationFailure } from '../../lib/errors/index.js';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { CircuitBreakers } from '../../lib/vendors/circuit-breaker.js';
import { errorForStatus } from '../../lib/vendors/http-policy.js';
import { VendorClient } from '../../lib/vendors/vendor-client.js';
import type { CallContext, VendorClientDeps } from '../../lib/vendors/vendor-call.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson } from '../../sandbox/test-client.js';
import { rejection } from '../helpers.js';

const ctx = (purpose = 'test.resilience'): CallContext => ({ correlationId: randomUUID(), purpose });
const SCOPES = ['system/Patient.rs', 'system/Patient.cud'];

describe('resilient vendor HTTP against the sandbox', () => {
  let sb: SandboxHandle;
  let clientId: string;
  let kid: string;
  let privateKey: CryptoKey;

  beforeAll(async () => {
    sb = await startSandbox({ seed: 11, size: 40 });
    const pair = await generateKeyPair('ES384', { extractable: true });
    privateKey = pair.privateKey;
    kid = `kid-${randomUUID()}`;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES384', use: 'sig' };
    ({ client_id: clientId } = await adminJson<{ client_id: string }>(sb, '/admin/clients', {
      jwks: { keys: [publicJwk] },
      scopes: SCOPES,
    }));
  });
  afterAll(async () => {
    await sb.close();
  });

  function vendorClient(vendor: string, overrides: Partial<VendorClientDeps> = {}): VendorClient {
    return new VendorClient({
      credentials: async (integrationId) => ({
        tenantId: 'tenant-resilience',
        integrationId,
        vendor,
        baseUrl: sb.fhirBaseUrl,
        tokenUrl: sb.tokenUrl,
        clientId,
        scopes: SCOPES,
        signAssertion: () => signClientAssertion({ clientId, audience: sb.tokenUrl, kid, alg: 'ES384', privateKey }),
      }),
      audit: async () => undefined,
      timeoutMs: 5_000,
      maxResponseBytes: 8 * 1024 * 1024,
      actor: 'worker:test',
      ...overrides,
    });
  }

  it('a 429 without Retry-After from eClinicalWorks waits for the next one-minute window', async () => {
    const client = vendorClient('eclinicalworks');
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 429, resourceType: 'Patient' });
    const before = Date.now();
    const err = await rejection(client.get('itg-ecw', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    const after = Date.now();
    expect(err).toMatchObject({ status: 429, code: 'VENDOR_RATE_LIMITED', retryable: true });
    const delay = toApplicationFailure(err).nextRetryDelay as number;
    // The retry lands after the window that refused us has ended, and not much later.
    const nextWindow = (t: number) => (Math.floor(t / 60_000) + 1) * 60_000;
    expect(after + delay).toBeGreaterThanOrEqual(nextWindow(before));
    expect(before + delay).toBeLessThanOrEqual(nextWindow(after) + 1_250);
  });

  it('a vendor without a published window leaves a bare 429 to the retry preset, and Retry-After still wins', async () => {
    const client = vendorClient('sandbox');
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 429, resourceType: 'Patient' });
    const bare = await rejection(client.get('itg-sbx', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(toApplicationFailure(bare).nextRetryDelay).toBeUndefined();

    await adminJson(sb, '/admin/faults', {
      kind: 'status',
      status: 429,
      retryAfterSeconds: 7,
      resourceType: 'Patient',
    });
    const told = await rejection(
      vendorClient('eclinicalworks').get('itg-ecw', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()),
    );
    expect(toApplicationFailure(told).nextRetryDelay).toBe(7_000);
  });

  it('Retry-After as an HTTP-date reaches Temporal as nextRetryDelay through the activity boundary', async () => {
    const at = new Date(Math.ceil((Date.now() + 90_000) / 1000) * 1000);
    const res = new Response(null, { status: 503, headers: { 'retry-after': at.toUTCString() } });
    const activities = atActivityBoundary({
      syncPage: async () => {
        throw errorForStatus(res, 'GET', '/fhir/Patient');
      },
    });
    const failure = await rejection(activities.syncPage());
    expect(failure).toMatchObject({ type: 'VENDOR_UNAVAILABLE', nonRetryable: false });
    const delay = (failure as { nextRetryDelay: number }).nextRetryDelay;
    expect(delay).toBeGreaterThan(85_000);
    expect(delay).toBeLessThanOrEqual(91_000);
  });

  it('an open circuit breaker fails fast without reaching the vendor, then a probe closes it', async () => {
    const breaker = new CircuitBreakers({ preset: { failureThreshold: 2, coolDownMs: 300 } });
    const client = vendorClient('sandbox', { breaker });
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 503, resourceType: 'Patient', times: 2 });
    for (let i = 0; i < 2; i++) await rejection(client.get('itg-brk', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    const searches = (await adminJson<{ searchRequests: number }>(sb, '/admin/stats')).searchRequests;
    const fast = await rejection(client.get('itg-brk', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect(toApplicationFailure(fast)).toMatchObject({ type: 'VENDOR_CIRCUIT_OPEN', nonRetryable: false });
    expect((await adminJson<{ searchRequests: number }>(sb, '/admin/stats')).searchRequests).toBe(searches);
    await new Promise((r) => setTimeout(r, 350));
    expect((await client.get('itg-brk', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx())).status).toBe(200);
    expect(breaker.state('itg-brk')).toBe('closed');
  });

  it('a repeated Idempotency-Key returns the first result and creates nothing more', async () => {
    const client = vendorClient('sandbox');
    const resource = { resourceType: 'Patient', active: true, gender: 'unknown' };
    const key = `sync/t/i/2026/write-${randomUUID()}`;
    const first = await client.create('itg-w', 'Patient', resource, { ...ctx('write.create'), idempotencyKey: key });
    const again = await client.create('itg-w', 'Patient', resource, { ...ctx('write.create'), idempotencyKey: key });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    const id = (JSON.parse(first.body.toString('utf8')) as { id: string }).id;
    expect((JSON.parse(again.body.toString('utf8')) as { id: string }).id).toBe(id);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(await adminJson(sb, '/admin/writes')).toMatchObject({ created: 1, replayed: 1, resources: 1 });

    // The same key for a different request is refused, not silently replayed.
    const misuse = await rejection(
      client.create(
        'itg-w',
        'Patient',
        { ...resource, active: false },
        { ...ctx('write.create'), idempotencyKey: key },
      ),
    );
    expect(misuse).toBeInstanceOf(VendorHttpError);
    expect(misuse).toMatchObject({ status: 422, retryable: false });

    // An update with If-Match of the current version, retried with its key, bumps the version once.
    const updateKey = `${key}/update`;
    const update = () =>
      client.update(
        'itg-w',
        'Patient',
        id,
        { ...resource, id, active: false },
        { ...ctx('write.update'), idempotencyKey: updateKey, ifMatch: 'W/"1"' },
      );
    expect((await update()).headers.get('etag')).toBe('W/"2"');
    expect((await update()).headers.get('etag')).toBe('W/"2"');
    expect(await adminJson(sb, '/admin/writes')).toMatchObject({ created: 1, updated: 1, replayed: 2, resources: 1 });
  });
});

describe('vendor extra parameters', () => {
  it('go on FHIR requests (athenahealth practice as a query parameter, NextGen site as a header), never on token requests', async () => {
    const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
    const server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      req.resume();
      req.on('end', () => {
        if (req.url === '/oauth/token') {
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ access_token: `tok-${randomUUID()}`, expires_in: 300 }));
        } else {
          res
            .writeHead(200, { 'content-type': 'application/fhir+json' })
            .end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [] }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const clientFor = (vendor: string, vendorParams: Record<string, string>) =>
        new VendorClient({
          credentials: async (integrationId) => ({
            tenantId: 't-params',
            integrationId,
            vendor,
            vendorParams,
            baseUrl: `${base}/fhir`,
            tokenUrl: `${base}/oauth/token`,
            clientId: 'client-params',
            scopes: ['system/Patient.rs'],
            signAssertion: async () => 'not-a-real-assertion',
          }),
          audit: async () => undefined,
          timeoutMs: 5_000,
          maxResponseBytes: 1024 * 1024,
          actor: 'worker:test',
        });
      await clientFor('athenahealth', { practiceId: 'Organization/a-1.Practice-195900' }).get(
        'itg-athena',
        `${base}/fhir/Patient?_count=2`,
        ctx(),
      );
      await clientFor('nextgen', { siteId: 'site-42' }).get('itg-ng', `${base}/fhir/Patient?_count=2`, ctx());
      const [athenaToken, athenaPage, ngToken, ngPage] = seen;
      expect(new URL(athenaPage!.url, base).searchParams.get('ah-practice')).toBe('Organization/a-1.Practice-195900');
      expect(new URL(athenaPage!.url, base).searchParams.get('_count')).toBe('2');
      expect(athenaToken!.url).toBe('/oauth/token');
      expect(ngPage!.headers['x-ng-siteid']).toBe('site-42');
      expect(ngToken!.headers['x-ng-siteid']).toBeUndefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
