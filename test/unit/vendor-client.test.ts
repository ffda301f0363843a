import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/audit/chain.js';
import {
  EhrError,
  ResponseTooLargeError,
  TlsPolicyError,
  VendorAuthError,
  VendorHttpError,
  VendorNetworkError,
} from '../../lib/errors/index.js';
import { parseSearchBundle } from '../../lib/fhir/search-bundle.js';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { VendorClient } from '../../lib/vendors/vendor-client.js';
import type { CallContext, IntegrationCredentials, VendorClientDeps } from '../../lib/vendors/vendor-call.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson } from '../../sandbox/test-client.js';
import { rejection } from '../helpers.js';

const INTEGRATION = 'itg-vendor-client';
const ctx = (purpose = 'test.read'): CallContext => ({ correlationId: randomUUID(), purpose });

/** Checks a secret is absent without printing it on failure. */
function expectAbsent(haystack: string, secret: string, what: string): void {
  expect(secret.length).toBeGreaterThan(10);
  expect(haystack.includes(secret), `${what} leaked`).toBe(false);
}

interface Harness {
  client: VendorClient;
  events: AuditEvent[];
  assertions: string[];
}

function harness(
  credentials: Omit<IntegrationCredentials, 'signAssertion'> & { sign(): Promise<string> },
  overrides: Partial<VendorClientDeps> = {},
): Harness {
  const events: AuditEvent[] = [];
  const assertions: string[] = [];
  const cred: IntegrationCredentials = {
    tenantId: credentials.tenantId,
    integrationId: credentials.integrationId,
    vendor: credentials.vendor,
    baseUrl: credentials.baseUrl,
    tokenUrl: credentials.tokenUrl,
    clientId: credentials.clientId,
    scopes: credentials.scopes,
    signAssertion: async () => {
      const a = await credentials.sign();
      assertions.push(a);
      return a;
    },
  };
  const client = new VendorClient({
    credentials: async () => cred,
    audit: async (e) => {
      events.push(structuredClone(e));
    },
    timeoutMs: 5_000,
    maxResponseBytes: 8 * 1024 * 1024,
    actor: 'worker:test',
    ...overrides,
  });
  return { client, events, assertions };
}

// ---------------------------------------------------------------------------------------------
// Against the sandbox vendor: real SMART Backend Services tokens signed with a real key.
// ---------------------------------------------------------------------------------------------
describe('VendorClient against the sandbox', () => {
  let sb: SandboxHandle;
  let clientId: string;
  let kid: string;
  let privateKey: CryptoKey;

  beforeAll(async () => {
    sb = await startSandbox({ seed: 7, size: 50 });
    const pair = await generateKeyPair('ES384', { extractable: true });
    privateKey = pair.privateKey;
    kid = `kid-${randomUUID()}`;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES384', use: 'sig' };
    ({ client_id: clientId } = await adminJson<{ client_id: string }>(sb, '/admin/clients', {
      jwks: { keys: [publicJwk] },
      scopes: ['system/Patient.rs', 'system/Observation.rs'],
    }));
  });
  afterAll(async () => {
    await sb?.close();
  });

  function sandboxHarness(
    scopes = ['system/Patient.rs'],
    key: CryptoKey = privateKey,
    overrides: Partial<VendorClientDeps> = {},
  ): Harness {
    return harness(
      {
        tenantId: 'tenant-test',
        integrationId: INTEGRATION,
        vendor: 'sandbox',
        baseUrl: sb.fhirBaseUrl,
        tokenUrl: sb.tokenUrl,
        clientId,
        scopes,
        sign: () => signClientAssertion({ clientId, audience: sb.tokenUrl, kid, alg: 'ES384', privateKey: key }),
      },
      overrides,
    );
  }

  it('GETs a page and writes one audit event per HTTP exchange, the token cached in between', async () => {
    const h = sandboxHarness();
    const first = ctx('sync.page');
    const res = await h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=3&_lastUpdated=ge2000-01-01`, first);
    expect(res.status).toBe(200);
    const page = parseSearchBundle('Patient', res.body);
    expect(page.resources).toHaveLength(3);
    expect(page.nextUrl).toBeDefined();

    expect(h.events.map((e) => e.action)).toEqual(['vendor.token_request', 'vendor.call']);
    const [tokenEvent, callEvent] = h.events as [AuditEvent, AuditEvent];
    expect(tokenEvent).toMatchObject({
      actor: 'worker:test',
      outcome: 'success',
      tenantId: 'tenant-test',
      integrationId: INTEGRATION,
      details: { vendor: 'sandbox', method: 'POST', path: '/oauth/token', status: 200, purpose: 'auth.token' },
    });
    expect(tokenEvent.correlationId).not.toBe(first.correlationId);
    expect(callEvent).toMatchObject({
      outcome: 'success',
      correlationId: first.correlationId,
      details: { method: 'GET', path: '/fhir/Patient', status: 200, bytes: res.body.byteLength, purpose: 'sync.page' },
    });
    expect(callEvent.details).not.toHaveProperty('errorCode');

    // Second call: the next page, with the cached token: exactly one more event.
    const second = await h.client.get(INTEGRATION, page.nextUrl!, ctx('sync.page'));
    expect(second.status).toBe(200);
    expect(h.events).toHaveLength(3);
    expect(h.events[2]).toMatchObject({
      action: 'vendor.call',
      outcome: 'success',
      details: { path: '/fhir/Patient', status: 200 },
    });
    expect(h.assertions).toHaveLength(1);

    // Nothing secret or query-like in the audit trail.
    const serialized = JSON.stringify(h.events);
    expectAbsent(serialized, await h.client.tokens.accessToken(INTEGRATION), 'access token');
    expectAbsent(serialized, h.assertions[0]!, 'client assertion');
    expectAbsent(serialized, sb.adminToken, 'admin token');
    expect(serialized).not.toContain('_lastUpdated');
    expect(serialized).not.toContain('_cursor');
    expect(serialized).not.toContain('?');
  });

  it('after the vendor expires its tokens, the next GET refreshes once and succeeds', async () => {
    const h = sandboxHarness();
    await h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx());
    const before = await adminJson<{ tokenRequests: number }>(sb, '/admin/stats');
    const { expired } = await adminJson<{ expired: number }>(sb, '/admin/tokens/expire', { client_id: clientId });
    expect(expired).toBeGreaterThanOrEqual(1);

    const res = await h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx());
    expect(res.status).toBe(200);
    expect(h.events.map((e) => `${e.action}:${String(e.details.status)}`)).toEqual([
      'vendor.token_request:200',
      'vendor.call:200',
      'vendor.call:401',
      'vendor.token_request:200',
      'vendor.call:200',
    ]);
    expect(h.events[2]?.outcome).toBe('failure');
    expect(h.events.filter((e) => e.action === 'vendor.token_request')).toHaveLength(2);
    const after = await adminJson<{ tokenRequests: number }>(sb, '/admin/stats');
    expect(after.tokenRequests - before.tokenRequests).toBe(1);
    expect(h.assertions).toHaveLength(2);
    expect(h.assertions[0]).not.toBe(h.assertions[1]);
  });

  it('a 403 (scope not granted) is non-retryable and audited as a failure', async () => {
    const h = sandboxHarness(['system/Patient.rs']);
    const err = await rejection(h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Observation?_count=1`, ctx()));
    expect(err).toBeInstanceOf(VendorHttpError);
    expect(err).toMatchObject({ status: 403, retryable: false, code: 'VENDOR_HTTP_403' });
    expect(h.events.at(-1)).toMatchObject({
      action: 'vendor.call',
      outcome: 'failure',
      details: { status: 403, errorCode: 'VENDOR_HTTP_403' },
    });
  });

  it('a 404 is non-retryable', async () => {
    const h = sandboxHarness();
    const err = await rejection(h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient/does-not-exist`, ctx()));
    expect(err).toMatchObject({ status: 404, retryable: false, code: 'VENDOR_HTTP_404' });
    expect(h.events.at(-1)).toMatchObject({
      outcome: 'failure',
      details: { status: 404, path: '/fhir/Patient/does-not-exist' },
    });
  });

  it('injected 500 is retryable; injected 429 carries Retry-After', async () => {
    const h = sandboxHarness();
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 500, resourceType: 'Patient' });
    const e500 = await rejection(h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(e500).toBeInstanceOf(VendorHttpError);
    expect(e500).toMatchObject({ status: 500, retryable: true, code: 'VENDOR_UNAVAILABLE' });

    await adminJson(sb, '/admin/faults', {
      kind: 'status',
      status: 429,
      retryAfterSeconds: 3,
      resourceType: 'Patient',
    });
    const e429 = await rejection(h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(e429).toMatchObject({ status: 429, retryable: true, retryAfterMs: 3_000, code: 'VENDOR_RATE_LIMITED' });
    expect(h.events.filter((e) => e.action === 'vendor.call').map((e) => e.details.errorCode)).toEqual([
      'VENDOR_UNAVAILABLE',
      'VENDOR_RATE_LIMITED',
    ]);
  });

  it('a refused client assertion is a non-retryable VendorAuthError, audited', async () => {
    const stranger = await generateKeyPair('ES384');
    const h = sandboxHarness(['system/Patient.rs'], stranger.privateKey);
    const err = await rejection(h.client.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(err).toBeInstanceOf(VendorAuthError);
    expect((err as VendorAuthError).retryable).toBe(false);
    expect((err as Error).message).toContain('invalid_client');
    expect(h.events).toHaveLength(1);
    expect(h.events[0]).toMatchObject({ action: 'vendor.token_request', outcome: 'failure', details: { status: 401 } });
    expectAbsent((err as Error).message + JSON.stringify(h.events), h.assertions[0]!, 'client assertion');
  });

  it('refuses a next link on another origin, or outside the base path, before any request', async () => {
    const h = sandboxHarness();
    const port = new URL(sb.url).port;
    for (const url of [
      `https://evil.example.com/fhir/Patient?_cursor=x`,
      `http://localhost:${port}/fhir/Patient`, // same server, different origin
      `http://127.0.0.1:${Number(port) + 1}/fhir/Patient`,
      `${sb.url}/admin/stats`,
    ]) {
      const err = await rejection(h.client.get(INTEGRATION, url, ctx()));
      expect(err, url).toBeInstanceOf(VendorAuthError);
      expect((err as VendorAuthError).retryable).toBe(false);
    }
    expect(h.events).toHaveLength(0);
    expect(h.assertions).toHaveLength(0);
  });

  it('refuses a path that merely shares a prefix with the base path', async () => {
    const h = sandboxHarness();
    const err = await rejection(h.client.get(INTEGRATION, `${sb.url}/fhir-admin/secrets`, ctx()));
    expect(err).toBeInstanceOf(VendorAuthError);
  });

  it('fails closed when the audit sink throws', async () => {
    const { client: failing } = sandboxHarness(undefined, undefined, {
      audit: async (e) => {
        if (e.action === 'vendor.call') throw new Error('audit store unavailable');
      },
    });
    await expect(failing.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx())).rejects.toThrow(
      'audit store unavailable',
    );

    const { client: failingTokenAudit } = sandboxHarness(undefined, undefined, {
      audit: async () => {
        throw new Error('audit store unavailable');
      },
    });
    const before = await adminJson<{ searchRequests: number }>(sb, '/admin/stats');
    await expect(failingTokenAudit.get(INTEGRATION, `${sb.fhirBaseUrl}/Patient?_count=1`, ctx())).rejects.toThrow(
      'audit store unavailable',
    );
    const after = await adminJson<{ searchRequests: number }>(sb, '/admin/stats');
    // The token exchange could not be audited, so no resource request followed it.
    expect(after.searchRequests).toBe(before.searchRequests);
  });
});

// ---------------------------------------------------------------------------------------------
// Against throwaway loopback servers, for behaviours the sandbox does not produce.
// ---------------------------------------------------------------------------------------------
interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Stub {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

const stubs: Stub[] = [];

/** A loopback server: /oauth/token issues a random token, every other path goes to `handler`. */
async function stub(
  handler: (req: SeenRequest, res: http.ServerResponse) => void,
  tokenStatus = 200,
  tokenBody?: string,
): Promise<Stub> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(r);
      if (r.url === '/oauth/token') {
        res.writeHead(tokenStatus, { 'content-type': 'application/json' });
        res.end(
          tokenBody ??
            (tokenStatus === 200
              ? JSON.stringify({
                  access_token: randomBytes(24).toString('base64url'),
                  token_type: 'bearer',
                  expires_in: 300,
                })
              : JSON.stringify({ error: 'invalid_client' })),
        );
        return;
      }
      handler(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: Stub = {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  stubs.push(s);
  return s;
}

function stubHarness(
  s: Pick<Stub, 'url'>,
  overrides: Partial<VendorClientDeps> = {},
  tokenUrl = `${s.url}/oauth/token`,
): Harness {
  return harness(
    {
      tenantId: 'tenant-test',
      integrationId: INTEGRATION,
      vendor: 'stub',
      baseUrl: `${s.url}/fhir`,
      tokenUrl,
      clientId: 'stub-client',
      scopes: ['system/Patient.rs'],
      sign: async () => `stub-assertion-${randomBytes(16).toString('hex')}`,
    },
    overrides,
  );
}

const resourceRequests = (s: Stub) => s.seen.filter((r) => r.url !== '/oauth/token');
const tokenRequests = (s: Stub) => s.seen.filter((r) => r.url === '/oauth/token');

describe('VendorClient against loopback stubs', () => {
  afterEach(async () => {
    await Promise.all(stubs.splice(0).map((s) => s.close()));
  });

  it('sends x-correlation-id equal to ctx.correlationId, and the bearer token', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.end('{}');
    });
    const h = stubHarness(s);
    const c = ctx();
    await h.client.get(INTEGRATION, `${s.url}/fhir/Patient/p-1`, c);
    const [resource] = resourceRequests(s);
    expect(resource?.headers['x-correlation-id']).toBe(c.correlationId);
    expect(resource?.headers.authorization).toMatch(/^Bearer [A-Za-z0-9_-]+$/);
    expect(resource?.headers.accept).toBe('application/fhir+json');
    const [token] = tokenRequests(s);
    expect(token?.headers['x-correlation-id']).toBe(h.events[0]?.correlationId);
    expect(token?.headers['x-correlation-id']).not.toBe(c.correlationId);
    const form = new URLSearchParams(token?.body);
    expect(form.get('grant_type')).toBe('client_credentials');
    expect(form.get('client_assertion')).toBe(h.assertions[0]);
    expect(form.get('scope')).toBe('system/Patient.rs');
  });

  it('refuses plain http to a non-loopback host with TlsPolicyError, before any request', async () => {
    const h = stubHarness({ url: 'http://vendor.example.com' });
    const err = await rejection(h.client.get(INTEGRATION, 'http://vendor.example.com/fhir/Patient', ctx()));
    expect(err).toBeInstanceOf(TlsPolicyError);
    expect((err as TlsPolicyError).retryable).toBe(false);
    expect(h.events).toHaveLength(0);
  });

  it('refuses a plain-http remote base URL before requesting a token', async () => {
    const s = await stub((_req, res) => res.end('{}'));
    const h = stubHarness({ url: 'http://vendor.example.com' }, {}, `${s.url}/oauth/token`);
    await expect(h.client.get(INTEGRATION, 'http://vendor.example.com/fhir/Patient', ctx())).rejects.toBeInstanceOf(
      TlsPolicyError,
    );
    expect(s.seen).toHaveLength(0);
  });

  it('refuses a response over maxResponseBytes with a declared content-length', async () => {
    const big = Buffer.alloc(64 * 1024, 0x61);
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': String(big.length) });
      res.end(big);
    });
    const h = stubHarness(s, { maxResponseBytes: 16 * 1024 });
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    expect((err as ResponseTooLargeError).retryable).toBe(false);
    expect(h.events.at(-1)).toMatchObject({
      outcome: 'failure',
      details: { status: 200, errorCode: 'VENDOR_RESPONSE_TOO_LARGE' },
    });
  });

  it('refuses a chunked response (no content-length) once it crosses maxResponseBytes', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      let sent = 0;
      const push = (): void => {
        // Stops on its own well past the cap; the client must give up long before.
        if (res.destroyed || sent > 4 * 1024 * 1024) return void res.end();
        sent += 16 * 1024;
        res.write(Buffer.alloc(16 * 1024, 0x62), () => setImmediate(push));
      };
      push();
    });
    const h = stubHarness(s, { maxResponseBytes: 100 * 1024 });
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    expect(h.events.at(-1)).toMatchObject({ outcome: 'failure', details: { errorCode: 'VENDOR_RESPONSE_TOO_LARGE' } });
  });

  it('accepts a response exactly at maxResponseBytes', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.alloc(1000, 0x63));
    });
    const h = stubHarness(s, { maxResponseBytes: 1000 });
    const res = await h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx());
    expect(res.body.byteLength).toBe(1000);
  });

  it('times out a slow response as a retryable VendorNetworkError', async () => {
    const s = await stub(() => {
      /* never answers */
    });
    const h = stubHarness(s, { timeoutMs: 300 });
    const started = Date.now();
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(err).toBeInstanceOf(VendorNetworkError);
    expect(err).toMatchObject({ retryable: true, code: 'VENDOR_NETWORK', reason: 'timed out' });
    expect(h.events.at(-1)).toMatchObject({ outcome: 'failure', details: { status: 0, errorCode: 'VENDOR_NETWORK' } });
  });

  it('times out a body that stalls after the headers', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.write('{"resourceType":"Bundle",');
    });
    const h = stubHarness(s, { timeoutMs: 300 });
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(VendorNetworkError);
    expect((err as VendorNetworkError).retryable).toBe(true);
  });

  it('a refused connection is a retryable VendorNetworkError', async () => {
    const s = await stub(() => undefined);
    const h = stubHarness(s);
    await h.client.tokens.accessToken(INTEGRATION);
    await s.close();
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(VendorNetworkError);
    expect((err as VendorNetworkError).retryable).toBe(true);
  });

  it.each([
    [500, undefined, true, undefined],
    [502, undefined, true, undefined],
    [503, '7', true, 7_000],
    [429, '3', true, 3_000],
    [429, 'Wed, 21 Oct 2015 07:28:00 GMT', true, 0],
    [400, undefined, false, undefined],
    [403, undefined, false, undefined],
    [404, undefined, false, undefined],
    [422, undefined, false, undefined],
  ])(
    'status %i (Retry-After %s) → retryable %s, retryAfterMs %s',
    async (status, retryAfter, retryable, retryAfterMs) => {
      const s = await stub((_req, res) => {
        res.writeHead(status, {
          'content-type': 'application/fhir+json',
          ...(retryAfter ? { 'retry-after': retryAfter } : {}),
        });
        res.end('{"resourceType":"OperationOutcome"}');
      });
      const h = stubHarness(s);
      const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient?name=secret-search-value`, ctx()));
      expect(err).toBeInstanceOf(VendorHttpError);
      expect(err).toMatchObject({ status, retryable, retryAfterMs, path: '/fhir/Patient' });
      expect((err as Error).message).not.toContain('secret-search-value');
      expect(JSON.stringify(h.events)).not.toContain('secret-search-value');
      expect(resourceRequests(s)).toHaveLength(1);
      expect(h.events.filter((e) => e.action === 'vendor.call')).toHaveLength(1);
      expect(h.events.at(-1)).toMatchObject({
        outcome: 'failure',
        details: { status, errorCode: (err as EhrError).code },
      });
    },
  );

  it('a server that always answers 401 gives VendorAuthError after exactly one refresh', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end('{"resourceType":"OperationOutcome"}');
    });
    const h = stubHarness(s);
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(VendorAuthError);
    expect(tokenRequests(s)).toHaveLength(2);
    expect(resourceRequests(s)).toHaveLength(2);
    // The two GETs used two different tokens.
    const auths = resourceRequests(s).map((r) => r.headers.authorization);
    expect(auths[0]).not.toBe(auths[1]);
    expect(h.events.map((e) => `${e.action}:${e.outcome}:${String(e.details.status)}`)).toEqual([
      'vendor.token_request:success:200',
      'vendor.call:failure:401',
      'vendor.token_request:success:200',
      'vendor.call:failure:401',
    ]);
    const serialized = JSON.stringify(h.events) + (err as Error).message;
    for (const a of auths) expectAbsent(serialized, a!.slice('Bearer '.length), 'access token');
  });

  it('a token endpoint answering 500 is retryable', async () => {
    const s = await stub((_req, res) => res.end('{}'), 500);
    const h = stubHarness(s);
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(VendorHttpError);
    expect(err).toMatchObject({ status: 500, retryable: true });
    expect(resourceRequests(s)).toHaveLength(0);
    expect(h.events).toHaveLength(1);
  });

  it('an unreadable token response is a retryable VendorAuthError', async () => {
    const s = await stub((_req, res) => res.end('{}'), 200, '{"token_type":"bearer"}');
    const h = stubHarness(s);
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(VendorAuthError);
    expect((err as VendorAuthError).retryable).toBe(true);
    expect(resourceRequests(s)).toHaveLength(0);
  });

  it('does not follow redirects (the bearer token stays home)', async () => {
    const elsewhere = await stub((_req, res) => res.end('{}'));
    const s = await stub((_req, res) => {
      res.writeHead(302, { location: `${elsewhere.url}/fhir/Patient` });
      res.end();
    });
    const h = stubHarness(s);
    const err = await rejection(h.client.get(INTEGRATION, `${s.url}/fhir/Patient`, ctx()));
    expect(err).toBeInstanceOf(EhrError);
    expect(elsewhere.seen).toHaveLength(0);
    expect(h.events.at(-1)?.outcome).toBe('failure');
  });
});
