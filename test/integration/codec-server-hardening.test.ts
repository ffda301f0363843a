/**
 * The codec server's edges, probed as an outsider would: every refusal is audited by the route the
 * router matched (not by how the URL was spelled), a large body is refused before it is read unless
 * the caller is authorised, /encode needs its own role, and every answer carries the security headers
 * a PHI-serving endpoint owes the browser. Real HTTPS, real JWTs, real audit rows in PostgreSQL.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../../lib/config/schema.js';
import { toWire } from '../../lib/crypto/codec-wire.js';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import type { Pool } from '../../lib/store/pool.js';
import { uniqueId } from '../harness.js';
import type { HttpsResult, TestCodecServer } from './codec-support.js';
import { httpsCall, postWithoutFinishing, startTestCodecServer } from './codec-support.js';
import { testConfig, testPool } from './support.js';

const UI_ORIGIN = 'http://127.0.0.1:18235';
const MIB = 1024 * 1024;
let pool: Pool;
let config: Config;
let server: TestCodecServer;
let encrypted: Payload[];

beforeAll(async () => {
  pool = testPool();
  config = testConfig();
  // Every anonymous refusal audited here (window 0), so each probe can be matched to its row.
  server = await startTestCodecServer(config, pool, UI_ORIGIN, { anonymousRefusalWindowMs: 0 });
  encrypted = await (
    await openPayloadCodec(config, { pool, actor: 'test:codec-hardening' })
  ).encode([defaultPayloadConverter.toPayload({ probe: 1 })]);
});

afterAll(async () => {
  await server?.close();
  await pool?.end();
});

interface Row {
  actor: string;
  action: string;
  outcome: string;
  details: Record<string, unknown>;
}

async function rowsWhere(where: string, param: string): Promise<Row[]> {
  const res = await pool.query<Row>(
    `SELECT actor, action, outcome, details FROM audit_events WHERE action LIKE 'codec.%' AND ${where} ORDER BY seq`,
    [param],
  );
  return res.rows;
}

const call = (path: string, headers: Record<string, string> = {}, body: unknown = toWire(encrypted), method = 'POST') =>
  httpsCall(`${server.url}${path}`, server.caPem, { method, headers, body });

describe('refusals are audited by the route the router matched', () => {
  it('audits a refusal per request for every spelling of /decode and /encode, and credentialed probes of unknown routes', async () => {
    const sub = uniqueId('prober');
    const bearer = { authorization: `Bearer ${await server.token({ sub, roles: ['viewer'] })}` };
    const probes: Array<[path: string, status: number, route: string | null, action: string]> = [
      ['/%64ecode', 403, '/decode', 'codec.decode'],
      ['/%64%65%63%6F%64%65', 403, '/decode', 'codec.decode'],
      ['/%64ecode?variant=query', 403, '/decode', 'codec.decode'],
      ['/%65ncode', 403, '/encode', 'codec.encode'],
      ['/Decode', 404, null, 'codec.unknown-route'],
      ['/DECODE', 404, null, 'codec.unknown-route'],
      ['/decode/', 404, null, 'codec.unknown-route'],
      ['//decode', 404, null, 'codec.unknown-route'],
      ['/decode;x', 404, null, 'codec.unknown-route'],
      ['/decode%2F', 404, null, 'codec.unknown-route'],
    ];
    for (const [path, status] of probes) expect((await call(path, bearer)).status, path).toBe(status);

    const rows = await rowsWhere('actor = $1', sub);
    expect(rows.map((r) => [r.details['path'], r.details['status'], r.details['route'], r.action])).toEqual(
      probes.map(([path, status, route, action]) => [path.split('?')[0], status, route, action]),
    );
    expect(rows.every((r) => r.outcome === 'failure')).toBe(true);
    // The query string is never audited: it may carry a token.
    expect(JSON.stringify(rows)).not.toContain('variant=query');
  });

  it('audits an anonymous refusal of an encoded route under the route it reached', async () => {
    const namespace = uniqueId('ns-anon');
    const res = await call('/%64ecode', { 'x-namespace': namespace });
    expect(res.status).toBe(401);
    const rows = await rowsWhere(`details->>'namespace' = $1`, namespace);
    expect(rows).toEqual([
      expect.objectContaining({
        actor: 'anonymous',
        action: 'codec.decode',
        details: expect.objectContaining({ route: '/decode', path: '/%64ecode', status: 401 }),
      }),
    ]);
  });

  it('writes one row per window for refusals of callers who proved nothing, with the count of those left out', async () => {
    const limited = await startTestCodecServer(config, pool, UI_ORIGIN, { anonymousRefusalWindowMs: 400 });
    try {
      const first = uniqueId('ns-burst');
      for (let i = 0; i < 3; i++) {
        const res = await httpsCall(`${limited.url}/decode`, limited.caPem, {
          headers: { 'x-namespace': first },
          body: toWire(encrypted),
        });
        expect(res.status).toBe(401);
      }
      await sleep(500);
      const next = uniqueId('ns-burst');
      expect(
        (
          await httpsCall(`${limited.url}/decode`, limited.caPem, {
            headers: { 'x-namespace': next },
            body: toWire(encrypted),
          })
        ).status,
      ).toBe(401);
      expect((await rowsWhere(`details->>'namespace' = $1`, first)).map((r) => r.details['suppressedBefore'])).toEqual([
        0,
      ]);
      expect((await rowsWhere(`details->>'namespace' = $1`, next)).map((r) => r.details['suppressedBefore'])).toEqual([
        2,
      ]);
    } finally {
      await limited.close();
    }
  });
});

describe('a body is read only for an authorised caller', () => {
  const probe = (path: string, headers: Record<string, string> = {}, timeoutMs = 10_000) =>
    postWithoutFinishing(`${server.url}${path}`, server.caPem, {
      headers,
      declaredBytes: 15 * MIB,
      sentBytes: 4 * 1024,
      timeoutMs,
    });

  it('refuses an unauthenticated, unauthorised or misrouted 15 MiB POST without waiting for its body', async () => {
    const noRole = { authorization: `Bearer ${await server.token({ roles: ['viewer'] })}` };
    const cases: Array<[string, Record<string, string>, number]> = [
      ['/decode', {}, 401],
      ['/%64ecode', {}, 401],
      ['/decode', noRole, 403],
      ['/encode', noRole, 403],
      ['/nowhere', noRole, 404],
      ['/login', {}, 413],
    ];
    for (const [path, headers, status] of cases) {
      const res = await probe(path, headers);
      expect(res, path).not.toBe('no-answer');
      expect((res as HttpsResult).status, path).toBe(status);
      expect((res as HttpsResult).headers.connection, path).toBe('close');
    }
  });

  it('reads a large body for a caller holding the role (the control: the same probe then waits for the body)', async () => {
    const res = await probe('/decode', { authorization: `Bearer ${await server.token()}` }, 1_500);
    expect(res).toBe('no-answer');
    const codec = await openPayloadCodec(config, { pool, actor: 'test:codec-hardening' });
    const many = await codec.encode(Array.from({ length: 200 }, (_, i) => defaultPayloadConverter.toPayload({ i })));
    const body = toWire(many);
    expect(JSON.stringify(body).length).toBeGreaterThan(16 * 1024);
    const decoded = await call('/decode', { authorization: `Bearer ${await server.token()}` }, body);
    expect(decoded.status).toBe(200);
    expect((decoded.body as { payloads: unknown[] }).payloads).toHaveLength(200);
  });
});

describe('/encode needs the encode role', () => {
  it('refuses a decoder and an anonymous caller, and encodes for the role, audited either way', async () => {
    const decoder = uniqueId('decoder-only');
    const plain = toWire([defaultPayloadConverter.toPayload({ minted: true })]);
    const refused = await call(
      '/encode',
      { authorization: `Bearer ${await server.token({ sub: decoder, roles: ['phi-decoder'] })}` },
      plain,
    );
    expect(refused.status).toBe(403);
    expect((refused.body as { reason: string }).reason).toContain('payload-encoder');
    expect((await call('/encode', {}, plain)).status).toBe(401);
    expect((await rowsWhere('actor = $1', decoder)).map((r) => [r.action, r.outcome, r.details['status']])).toEqual([
      ['codec.encode', 'failure', 403],
    ]);

    const encoder = uniqueId('encoder');
    const ok = await call(
      '/encode',
      {
        authorization: `Bearer ${await server.token({ sub: encoder, roles: ['payload-encoder'] })}`,
        'x-namespace': 'default',
      },
      plain,
    );
    expect(ok.status).toBe(200);
    const rows = await rowsWhere('actor = $1', encoder);
    expect(rows).toEqual([
      expect.objectContaining({
        action: 'codec.encode',
        outcome: 'success',
        details: expect.objectContaining({ payloadCount: 1, encryptedCount: 1, namespace: 'default' }),
      }),
    ]);
    expect((rows[0]!.details['keyIds'] as string[]).length).toBe(1);
  });
});

describe('security headers on every answer', () => {
  const expectHardened = (res: HttpsResult, what: string, hsts = true) => {
    expect(res.headers['x-content-type-options'], what).toBe('nosniff');
    expect(res.headers['cache-control'], what).toBe('no-store');
    expect(res.headers['content-security-policy'], what).toContain("default-src 'none'");
    expect(res.headers['content-security-policy'], what).toContain("frame-ancestors 'none'");
    expect(res.headers['x-frame-options'], what).toBe('DENY');
    expect(res.headers['referrer-policy'], what).toBe('no-referrer');
    expect(res.headers['cross-origin-resource-policy'], what).toBe('same-origin');
    if (hsts) expect(res.headers['strict-transport-security'], what).toMatch(/^max-age=\d{8,}; includeSubDomains$/);
    else expect(res.headers['strict-transport-security'], what).toBeUndefined();
  };

  it('sends them on decoded payloads, refusals, preflights, errors and health checks', async () => {
    const token = await server.token();
    const decoded = await call('/decode', { authorization: `Bearer ${token}`, origin: UI_ORIGIN });
    expect(decoded.status).toBe(200);
    expectHardened(decoded, 'decode 200');
    expectHardened(await call('/decode'), 'decode 401');
    expectHardened(await call('/nowhere', { authorization: `Bearer ${token}` }), 'unknown route 404');
    expectHardened(
      await call('/decode', { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, 'x'),
      'text/plain 415',
    );
    expectHardened(await call('/login', {}, { token: 'x'.repeat(9000) }), 'login 413');
    const preflight = await call(
      '/decode',
      { origin: UI_ORIGIN, 'access-control-request-method': 'POST' },
      undefined,
      'OPTIONS',
    );
    expect(preflight.status).toBe(204);
    expectHardened(preflight, 'preflight 204');
    expectHardened(await call('/healthz', {}, undefined, 'GET'), 'healthz');
  });

  it('leaves HSTS off for a localhost name (it would bind every port of localhost, the dev UI included)', async () => {
    const res = await call('/healthz', { host: `localhost:${server.port}` }, undefined, 'GET');
    expect(res.status).toBe(200);
    expectHardened(res, 'healthz via localhost', false);
  });
});
