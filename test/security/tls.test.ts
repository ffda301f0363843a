/**
 * Transport security through the vendor wrapper (DESIGN §4 invariant 5, issue 3 item 9), with real TLS
 * on 127.0.0.1 and certificates from generated CAs: the right CA works for the token request and the
 * search alike, a wrong CA or name fails as a non-retryable VENDOR_TLS_FAILED without leaking anything,
 * mutual TLS works only with the right client certificate, anything below TLS 1.2 is refused, and no
 * request — so no access token — reaches a server whose handshake failed.
 */
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/audit/chain.js';
import { TlsPolicyError, VendorNetworkError, VendorTlsError } from '../../lib/errors/index.js';
import { parseSearchBundle } from '../../lib/fhir/search-bundle.js';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type PemPair,
} from '../../lib/crypto/tls-certs.js';
import type { VendorTls } from '../../lib/vendors/tls-options.js';
import type { CallContext, IntegrationCredentials } from '../../lib/vendors/vendor-call.js';
import { VendorClient } from '../../lib/vendors/vendor-client.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson, createTestClient, type SandboxRef, type SandboxTestClient } from '../../sandbox/test-client.js';
import { rejection } from '../helpers.js';

const ctx = (): CallContext => ({ correlationId: randomUUID(), purpose: 'test.tls' });

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let serverCert: PemPair;
let clientCert: PemPair;
let strangerClientCert: PemPair;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  ca = await createCertificateAuthority('vendor test CA');
  otherCa = await createCertificateAuthority('some other CA');
  serverCert = await issueCertificate(ca, {
    commonName: 'localhost',
    altNames: ['localhost', '127.0.0.1'],
    usage: 'server',
  });
  clientCert = await issueCertificate(ca, { commonName: 'connector-client', usage: 'client' });
  strangerClientCert = await issueCertificate(otherCa, { commonName: 'connector-client', usage: 'client' });
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

interface Harness {
  client: VendorClient;
  events: AuditEvent[];
  assertions: string[];
}

function harness(opts: {
  integrationId: string;
  baseUrl: string;
  tokenUrl: string;
  tc: SandboxTestClient;
  tls?: VendorTls;
  timeoutMs?: number;
}): Harness {
  const events: AuditEvent[] = [];
  const assertions: string[] = [];
  const cred: IntegrationCredentials = {
    tenantId: 'tenant-tls',
    integrationId: opts.integrationId,
    vendor: 'sandbox',
    baseUrl: opts.baseUrl,
    tokenUrl: opts.tokenUrl,
    clientId: opts.tc.clientId,
    scopes: ['system/Patient.rs'],
    signAssertion: async () => {
      const a = await opts.tc.assertion();
      assertions.push(a);
      return a;
    },
    ...(opts.tls ? { tls: opts.tls } : {}),
  };
  const client = new VendorClient({
    credentials: async () => cred,
    audit: async (e) => {
      events.push(structuredClone(e));
    },
    timeoutMs: opts.timeoutMs ?? 5_000,
    maxResponseBytes: 8 * 1024 * 1024,
    actor: 'worker:test',
  });
  closers.push(async () => client.agents.closeAll());
  return { client, events, assertions };
}

/** Whatever a failure exposes: message, serialized fields, audit rows. */
function exposed(err: unknown, events: AuditEvent[]): string {
  return `${(err as Error).message} ${JSON.stringify(err)} ${JSON.stringify(events)}`;
}

function expectNoSecrets(text: string, secrets: string[]): void {
  expect(text).not.toContain('BEGIN');
  for (const s of secrets) {
    expect(s.length).toBeGreaterThan(10);
    expect(text.includes(s), 'a secret leaked').toBe(false);
  }
}

async function stats(sb: SandboxRef): Promise<{ tokenRequests: number; searchRequests: number }> {
  return adminJson(sb, '/admin/stats');
}

describe('VendorClient → TLS sandbox', () => {
  let sb: SandboxHandle;
  let ref: SandboxRef;
  let tc: SandboxTestClient;

  beforeAll(async () => {
    sb = await startSandbox({ seed: 11, size: 20, tls: { certPem: serverCert.certPem, keyPem: serverCert.keyPem } });
    closers.push(() => sb.close());
    ref = { ...sb, tls: { caPem: ca.certPem } };
    tc = await createTestClient(ref, { scopes: ['system/Patient.rs'] });
  });

  const h = (tlsOpts?: VendorTls, id = `itg-${randomUUID()}`): Harness =>
    harness({
      integrationId: id,
      baseUrl: sb.fhirBaseUrl,
      tokenUrl: sb.tokenUrl,
      tc,
      ...(tlsOpts ? { tls: tlsOpts } : {}),
    });

  it('with the vendor CA trusted: token request and search succeed over https', async () => {
    const x = h({ caPem: ca.certPem });
    const res = await x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=2`, ctx());
    expect(res.status).toBe(200);
    expect(parseSearchBundle('Patient', res.body).resources).toHaveLength(2);
    expect(x.events.map((e) => `${e.action}:${e.outcome}:${String(e.details.status)}`)).toEqual([
      'vendor.token_request:success:200',
      'vendor.call:success:200',
    ]);
  });

  it('system roots only (no CA configured): the dev CA is not trusted', async () => {
    const before = await stats(ref);
    const x = h();
    const err = await rejection(x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(err).toBeInstanceOf(VendorTlsError);
    expect(await stats(ref)).toEqual(before);
  });

  it('a wrong CA fails as VENDOR_TLS_FAILED, non-retryable, audited, nothing leaked, nothing sent', async () => {
    const before = await stats(ref);
    const x = h({ caPem: otherCa.certPem });
    const err = await rejection(
      x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=1&name=secret-search-value`, ctx()),
    );
    expect(err).toBeInstanceOf(VendorTlsError);
    expect(err).toMatchObject({
      code: 'VENDOR_TLS_FAILED',
      retryable: false,
      method: 'POST',
      path: '/oauth/token',
      reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(x.events).toHaveLength(1);
    expect(x.events[0]).toMatchObject({
      action: 'vendor.token_request',
      outcome: 'failure',
      details: { status: 0, errorCode: 'VENDOR_TLS_FAILED' },
    });
    const text = exposed(err, x.events);
    expectNoSecrets(text, [x.assertions[0]!, sb.adminToken]);
    expect(text).not.toContain('secret-search-value');
    // The handshake failed before any HTTP request: the sandbox saw no token request.
    expect(await stats(ref)).toEqual(before);
  });

  it('a CA bundle can be added to the system roots instead of replacing them', async () => {
    const x = h({ caPem: ca.certPem, includeSystemRoots: true });
    expect((await x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx())).status).toBe(200);
  });

  it('verification cannot be switched off, not even by NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    const quiet = process.emitWarning;
    process.emitWarning = () => undefined;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const x = h({ caPem: otherCa.certPem });
      expect(await rejection(x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()))).toBeInstanceOf(
        VendorTlsError,
      );
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
      process.emitWarning = quiet;
    }
  });

  it('a certificate for another name is refused (hostname verification is on)', async () => {
    const wrongName = await issueCertificate(ca, {
      commonName: 'vendor.example.com',
      altNames: ['vendor.example.com'],
      usage: 'server',
    });
    const other = await startSandbox({
      seed: 11,
      size: 5,
      tls: { certPem: wrongName.certPem, keyPem: wrongName.keyPem },
    });
    closers.push(() => other.close());
    const x = harness({
      integrationId: 'itg-name',
      baseUrl: other.fhirBaseUrl,
      tokenUrl: other.tokenUrl,
      tc,
      tls: { caPem: ca.certPem },
    });
    const err = await rejection(x.client.get('itg-name', `${other.fhirBaseUrl}/Patient`, ctx()));
    expect(err).toMatchObject({ code: 'VENDOR_TLS_FAILED', reason: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('the access token is never sent to a server whose handshake fails', async () => {
    // Token from the good sandbox; resources on a server with a certificate from a CA we do not trust.
    const impostorCert = await issueCertificate(otherCa, {
      commonName: 'localhost',
      altNames: ['localhost', '127.0.0.1'],
      usage: 'server',
    });
    const seen: http.IncomingHttpHeaders[] = [];
    const rawBytes: number[] = [];
    const impostor = https.createServer({ cert: impostorCert.certPem, key: impostorCert.keyPem }, (req, res) => {
      seen.push(req.headers);
      res.end('{}');
    });
    impostor.on('secureConnection', (s: tls.TLSSocket) => s.on('data', (d: Buffer) => rawBytes.push(d.length)));
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => impostor.close(r)));
    const base = `https://127.0.0.1:${(impostor.address() as AddressInfo).port}/fhir`;

    const x = harness({
      integrationId: 'itg-impostor',
      baseUrl: base,
      tokenUrl: sb.tokenUrl,
      tc,
      tls: { caPem: ca.certPem },
    });
    const err = await rejection(x.client.get('itg-impostor', `${base}/Patient`, ctx()));
    expect(err).toBeInstanceOf(VendorTlsError);
    const token = await x.client.tokens.accessToken('itg-impostor'); // cached: it was issued before the GET
    expect(x.events.map((e) => `${e.action}:${e.outcome}`)).toEqual([
      'vendor.token_request:success',
      'vendor.call:failure',
    ]);
    expect(seen).toHaveLength(0);
    expect(rawBytes).toHaveLength(0);
    expectNoSecrets(exposed(err, x.events), [token]);

    // Control: a client that trusts the impostor's CA does reach it, so "nothing seen" is meaningful.
    const control = harness({
      integrationId: 'itg-control',
      baseUrl: base,
      tokenUrl: sb.tokenUrl,
      tc,
      tls: { caPem: `${ca.certPem}${otherCa.certPem}` },
    });
    await control.client.get('itg-control', `${base}/Patient`, ctx());
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toMatch(/^Bearer /);
  });
});

describe('VendorClient → mutual TLS sandbox', () => {
  let sb: SandboxHandle;
  let ref: SandboxRef;
  let tc: SandboxTestClient;

  beforeAll(async () => {
    sb = await startSandbox({
      seed: 12,
      size: 50,
      tls: { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPem: ca.certPem, requireClientCert: true },
    });
    closers.push(() => sb.close());
    ref = { ...sb, tls: { caPem: ca.certPem, certPem: clientCert.certPem, keyPem: clientCert.keyPem } };
    tc = await createTestClient(ref, { scopes: ['system/Patient.rs'] });
  });

  const h = (tlsOpts: VendorTls): Harness =>
    harness({ integrationId: `itg-${randomUUID()}`, baseUrl: sb.fhirBaseUrl, tokenUrl: sb.tokenUrl, tc, tls: tlsOpts });

  it('succeeds with the right client certificate (token and search)', async () => {
    const x = h({ caPem: ca.certPem, clientCertPem: clientCert.certPem, clientKeyPem: clientCert.keyPem });
    const res = await x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=2`, ctx());
    expect(parseSearchBundle('Patient', res.body).resources).toHaveLength(2);
    expect(x.events.map((e) => e.outcome)).toEqual(['success', 'success']);
  });

  it('fails without a client certificate: the server refuses the handshake, no request is seen', async () => {
    const before = await stats(ref);
    const x = h({ caPem: ca.certPem });
    const err = await rejection(x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    expect(err).toMatchObject({
      code: 'VENDOR_TLS_FAILED',
      retryable: false,
      reason: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    });
    expect(x.events.at(-1)).toMatchObject({ outcome: 'failure', details: { errorCode: 'VENDOR_TLS_FAILED' } });
    expect(await stats(ref)).toEqual(before);
  });

  it('fails with a client certificate from another CA; no request is seen', async () => {
    const before = await stats(ref);
    const x = h({
      caPem: ca.certPem,
      clientCertPem: strangerClientCert.certPem,
      clientKeyPem: strangerClientCert.keyPem,
    });
    const err = await rejection(x.client.get('itg', `${sb.fhirBaseUrl}/Patient?_count=1`, ctx()));
    // Node's TLS server refuses a TLS 1.3 client certificate by closing the connection without an alert,
    // so the client sees a reset rather than a certificate alert; either way the call fails, audited.
    expect(err instanceof VendorTlsError || err instanceof VendorNetworkError).toBe(true);
    expect((err as { code: string }).code).toMatch(/^VENDOR_(TLS_FAILED|NETWORK)$/);
    expect(x.events.at(-1)).toMatchObject({
      action: 'vendor.token_request',
      outcome: 'failure',
      details: { status: 0 },
    });
    expectNoSecrets(exposed(err, x.events), [x.assertions[0]!]);
    expect(await stats(ref)).toEqual(before);
  });
});

describe('https timeouts', () => {
  it('a silent https vendor and a stalled body both time out as retryable VendorNetworkError', async () => {
    const stalled = https.createServer({ cert: serverCert.certPem, key: serverCert.keyPem }, (req, res) => {
      if (req.url === '/oauth/token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'tok-not-a-secret-000', expires_in: 300 }));
      } else if (req.url === '/fhir/Slow') {
        /* never answers */
      } else {
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        res.write('{"resourceType":"Bundle",');
      }
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    closers.push(
      () =>
        new Promise((r) => {
          stalled.closeAllConnections();
          stalled.close(r);
        }),
    );
    const base = `https://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
    const tc = { clientId: 'c', assertion: async () => 'a' } as unknown as SandboxTestClient;
    const x = harness({
      integrationId: 'itg-slow',
      baseUrl: `${base}/fhir`,
      tokenUrl: `${base}/oauth/token`,
      tc,
      tls: { caPem: ca.certPem },
      timeoutMs: 300,
    });
    for (const p of ['/fhir/Slow', '/fhir/Stall']) {
      const started = Date.now();
      const err = await rejection(x.client.get('itg-slow', `${base}${p}`, ctx()));
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(err).toBeInstanceOf(VendorNetworkError);
      expect(err).toMatchObject({ retryable: true, reason: 'timed out' });
    }
  });
});

describe('protocol versions', () => {
  it('a server that speaks only TLS 1.0/1.1 is refused before any request', async () => {
    const requests: string[] = [];
    const legacy = https.createServer(
      // SECLEVEL=0: OpenSSL 3 in Node 20 will not negotiate TLS 1.0/1.1 otherwise.
      {
        cert: serverCert.certPem,
        key: serverCert.keyPem,
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      },
      (req, res) => {
        requests.push(req.url ?? '');
        res.end('{}');
      },
    );
    await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => legacy.close(r)));
    const port = (legacy.address() as AddressInfo).port;

    // Positive control: the server really does complete a TLS 1.1 handshake with a client that allows it.
    const negotiated = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: ca.certPem,
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      });
      s.once('secureConnect', () => {
        resolve(s.getProtocol() ?? '');
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(negotiated).toBe('TLSv1.1');

    const tc = { clientId: 'c', assertion: async () => 'assertion-not-a-secret' } as unknown as SandboxTestClient;
    const x = harness({
      integrationId: 'itg-legacy',
      baseUrl: `https://127.0.0.1:${port}/fhir`,
      tokenUrl: `https://127.0.0.1:${port}/oauth/token`,
      tc,
      tls: { caPem: ca.certPem },
    });
    const err = await rejection(x.client.get('itg-legacy', `https://127.0.0.1:${port}/fhir/Patient`, ctx()));
    expect(err).toMatchObject({ code: 'VENDOR_TLS_FAILED', retryable: false });
    expect((err as VendorTlsError).reason).toMatch(/^ERR_SSL_|^TLS_PROTOCOL_VERSION$/);
    expect(requests).toHaveLength(0);
  });

  it('a TLS floor below 1.2 cannot be configured', async () => {
    const x = harness({
      integrationId: 'itg-floor',
      baseUrl: 'https://127.0.0.1:1/fhir',
      tokenUrl: 'https://127.0.0.1:1/oauth/token',
      tc: { clientId: 'c', assertion: async () => 'a' } as unknown as SandboxTestClient,
      tls: { minVersion: 'TLSv1.1' as 'TLSv1.2' },
    });
    await expect(x.client.get('itg-floor', 'https://127.0.0.1:1/fhir/Patient', ctx())).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('plain http to a non-loopback host is still refused before anything is sent', async () => {
    const tc = { clientId: 'c', assertion: async () => 'a' } as unknown as SandboxTestClient;
    const x = harness({
      integrationId: 'itg-http',
      baseUrl: 'http://vendor.example.com/fhir',
      tokenUrl: 'http://vendor.example.com/oauth/token',
      tc,
    });
    await expect(x.client.get('itg-http', 'http://vendor.example.com/fhir/Patient', ctx())).rejects.toBeInstanceOf(
      TlsPolicyError,
    );
    expect(x.events).toHaveLength(0);
  });
});
