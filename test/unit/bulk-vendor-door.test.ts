/**
 * The vendor door's Bulk Data calls against loopback stubs: a kick-off's headers both ways and a refusal's
 * OperationOutcome code; file downloads streamed line by line with the bearer token only when the manifest
 * requires it, never to a host the integration does not allow; one audit event per download.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/audit/chain.js';
import { BulkExportError, VendorHttpError } from '../../lib/errors/index.js';
import { VendorClient } from '../../lib/vendors/vendor-client.js';
import type { IntegrationCredentials } from '../../lib/vendors/vendor-call.js';
import { rejection } from '../helpers.js';

const ID = 'itg-bulk-door';
const ctx = { correlationId: 'c0ffee00-0000-4000-8000-000000000001', purpose: 'bulk.test' };

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}
interface Stub {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}
const stubs: Stub[] = [];

async function stub(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Stub> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.url === '/oauth/token') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'tok-abcdefghijklmnop', token_type: 'bearer', expires_in: 300 }));
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const s: Stub = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
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

function door(vendor: Stub): { client: VendorClient; events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  const cred: IntegrationCredentials = {
    tenantId: 't-bulk',
    integrationId: ID,
    vendor: 'stub',
    baseUrl: `${vendor.url}/fhir`,
    tokenUrl: `${vendor.url}/oauth/token`,
    clientId: 'c',
    scopes: ['system/Patient.rs'],
    signAssertion: async () => 'assertion',
  };
  const client = new VendorClient({
    credentials: async () => cred,
    audit: async (e) => void events.push(structuredClone(e)),
    timeoutMs: 2_000,
    maxResponseBytes: 1024,
    actor: 'worker:test',
  });
  return { client, events };
}

afterEach(async () => {
  await Promise.all(stubs.splice(0).map((s) => s.close()));
});

async function collect(client: VendorClient, url: string, withToken: boolean, fileHosts: string[] = []) {
  return client.streamLines(ID, url, ctx, { withToken, fileHosts, maxLineBytes: 256 }, async (lines) => {
    const out: string[] = [];
    for await (const line of lines) out.push(line.text ?? `#${line.number} oversize`);
    return out;
  });
}

describe('Bulk Data through the vendor door', () => {
  it('kick-off: sends Prefer and Accept, returns Content-Location; a 4xx names the OperationOutcome code', async () => {
    let refuse = false;
    const vendor = await stub((_req, res) => {
      if (refuse) {
        res.writeHead(400, { 'content-type': 'application/fhir+json' });
        res.end(
          JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] }),
        );
        return;
      }
      res.writeHead(202, { 'content-location': `${vendor.url}/fhir/status/1` });
      res.end();
    });
    const { client } = door(vendor);
    const headers = { accept: 'application/fhir+json', prefer: 'respond-async' };
    const res = await client.request(ID, `${vendor.url}/fhir/$export`, ctx, {
      method: 'GET',
      headers,
      outcomeOnError: true,
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('content-location')).toBe(`${vendor.url}/fhir/status/1`);
    const kickoff = vendor.seen.find((s) => s.url === '/fhir/$export')!;
    expect(kickoff.headers.prefer).toBe('respond-async');
    expect(kickoff.headers.authorization).toBe('Bearer tok-abcdefghijklmnop');
    refuse = true;
    const err = await rejection(
      client.request(ID, `${vendor.url}/fhir/$export`, ctx, { method: 'GET', headers, outcomeOnError: true }),
    );
    expect(err).toBeInstanceOf(VendorHttpError);
    expect(err).toMatchObject({ status: 400, outcomeCode: 'not-supported', retryable: false });
    refuse = false;
    await client.request(ID, `${vendor.url}/fhir/status/1`, ctx, { method: 'DELETE', headers: {} });
    expect(vendor.seen.at(-1)).toMatchObject({ method: 'DELETE', url: '/fhir/status/1' });
  });

  it('streams a file far larger than the response cap, line by line, audited once with its bytes', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ resourceType: 'Patient', id: `p${i}` }));
    const vendor = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
      for (let i = 0; i < lines.length; i += 500) res.write(`${lines.slice(i, i + 500).join('\n')}\n`);
      res.end(`${'y'.repeat(300)}\n`);
    });
    const { client, events } = door(vendor);
    const got = await collect(client, `${vendor.url}/fhir/files/p.ndjson`, true);
    expect(got).toEqual([...lines, '#5001 oversize']);
    const download = events.filter((e) => e.details?.purpose === 'bulk.test');
    expect(download).toHaveLength(1);
    expect(download[0]!.details).toMatchObject({ method: 'GET', path: '/fhir/files/p.ndjson', status: 200 });
    expect(download[0]!.details!.bytes).toBeGreaterThan(100_000);
  });

  it('sends no bearer token when requiresAccessToken is false, and one when it is true, to an allowed file host', async () => {
    const files = await stub((_req, res) => res.end('{"resourceType":"Patient","id":"p1"}\n'));
    const vendor = await stub((_req, res) => res.end());
    const { client } = door(vendor);
    const host = new URL(files.url).host;
    expect(await collect(client, `${files.url}/f1.ndjson`, false, [host])).toHaveLength(1);
    expect(files.seen[0]!.headers.authorization).toBeUndefined();
    await collect(client, `${files.url}/f2.ndjson`, true, [host]);
    expect(files.seen[1]!.headers.authorization).toBe('Bearer tok-abcdefghijklmnop');
  });

  it('refuses a file on a host the integration does not allow, before any request (token or file)', async () => {
    const files = await stub((_req, res) => res.end('{}\n'));
    const vendor = await stub((_req, res) => res.end());
    const { client, events } = door(vendor);
    const err = await rejection(collect(client, `${files.url}/f.ndjson`, true, ['elsewhere.example.com']));
    expect(err).toBeInstanceOf(BulkExportError);
    expect(err).toMatchObject({ code: 'BULK_HOST_REFUSED', step: 'file', retryable: false });
    expect(files.seen).toHaveLength(0);
    expect(vendor.seen).toHaveLength(0);
    expect(events).toHaveLength(0);
  });

  it("a failure of the consumer (our side) is not reported as the vendor's network failing", async () => {
    const vendor = await stub((_req, res) => res.end('{"a":1}\n{"a":2}\n'));
    const { client, events } = door(vendor);
    const err = await rejection(
      client.streamLines(
        ID,
        `${vendor.url}/fhir/f.ndjson`,
        ctx,
        { withToken: true, fileHosts: [], maxLineBytes: 64 },
        () => Promise.reject(new RangeError('database went away')),
      ),
    );
    expect(err).toBeInstanceOf(RangeError);
    const download = events.find((e) => e.details?.purpose === 'bulk.test')!;
    expect(download.outcome).toBe('failure');
    expect(download.details).toMatchObject({ status: 200, errorCode: 'UNCLASSIFIED' });
  });
});
