/**
 * DESIGN §4 invariant 2: the codec server decodes only for an authenticated, authorised caller from
 * the configured UI origin, and audits every decode (and every refusal). Real HTTPS with a generated
 * CA, real JWTs, real audit rows in PostgreSQL; and a real sync's history is encrypted end to end.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../../lib/config/schema.js';
import { ENCRYPTED_ENCODING, convertPayloadsIn } from '../../lib/crypto/payload-codec.js';
import type { Pool } from '../../lib/store/pool.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { remoteDecoder } from '../../client/codec-client.js';
import { buildTimeline, formatTimeline } from '../../client/history-timeline.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import { toWire } from '../../lib/crypto/codec-wire.js';
import { uniqueId } from '../harness.js';
import type { TestCodecServer } from './codec-support.js';
import { httpsCall, startTestCodecServer } from './codec-support.js';
import type { RunningWorker } from './support.js';
import {
  registerSandboxTenant,
  startInProcessWorker,
  startTestSandbox,
  temporalClient,
  testConfig,
  testPool,
} from './support.js';

const UI_ORIGIN = 'http://127.0.0.1:18233';
let pool: Pool;
let config: Config;
let server: TestCodecServer;
let encrypted: Payload[];
const secretValue = { tenantId: 't-codec-test', note: 'Synthetic Name Codecson' };

beforeAll(async () => {
  pool = testPool();
  config = testConfig();
  server = await startTestCodecServer(config, pool, UI_ORIGIN);
  encrypted = await (
    await openPayloadCodec(config, { pool, actor: 'test:codec' })
  ).encode([defaultPayloadConverter.toPayload(secretValue)]);
});

afterAll(async () => {
  await server?.close();
  await pool?.end();
});

const decode = (headers: Record<string, string>, body: unknown = toWire(encrypted)) =>
  httpsCall(`${server.url}/decode`, server.caPem, { headers: { 'x-namespace': 'default', ...headers }, body });

async function auditRows(sub: string, outcome: 'success' | 'failure') {
  const res = await pool.query<{ actor: string; details: Record<string, unknown> }>(
    `SELECT actor, details FROM audit_events WHERE action = 'codec.decode' AND actor = $1
        AND outcome = $2 ORDER BY seq`,
    [sub, outcome],
  );
  return res.rows;
}

describe('codec server refusals', () => {
  it('refuses a request without a token (401) and audits the refusal', async () => {
    const res = await decode({});
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'unauthorized', reason: expect.stringContaining('no bearer token') });
    expect(JSON.stringify(res.body)).not.toContain('Codecson');
  });

  it('refuses a bad signature, an expired token, a wrong audience and a wrong issuer (401)', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    const cases: Array<[string, Promise<string>]> = [
      ['bad token signature', server.token({ key: other })],
      ['token expired', server.token({ expSeconds: -120 })],
      ['wrong audience', server.token({ aud: 'someone-else' })],
      ['wrong issuer', server.token({ iss: 'https://evil.invalid' })],
    ];
    for (const [reason, token] of cases) {
      const res = await decode({ authorization: `Bearer ${await token}` });
      expect(res.status, reason).toBe(401);
      expect((res.body as { reason: string }).reason, reason).toContain(reason);
    }
    expect((await decode({ authorization: 'Bearer not-a-jwt' })).status).toBe(401);
  });

  it('refuses a valid token without the decode role (403), audited with the caller', async () => {
    const sub = uniqueId('norole');
    const res = await decode({ authorization: `Bearer ${await server.token({ sub, roles: ['viewer'] })}` });
    expect(res.status).toBe(403);
    expect((res.body as { reason: string }).reason).toContain('phi-decoder');
    const rows = await auditRows(sub, 'failure');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).toMatchObject({ status: 403, namespace: 'default' });
  });

  it('refuses another Origin without CORS headers, and answers the UI origin with exact CORS', async () => {
    const token = await server.token();
    const wrong = await decode({ authorization: `Bearer ${token}`, origin: 'https://evil.example' });
    expect(wrong.status).toBe(403);
    expect(wrong.headers['access-control-allow-origin']).toBeUndefined();
    const wrongPreflight = await httpsCall(`${server.url}/decode`, server.caPem, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:18234', 'access-control-request-method': 'POST' },
    });
    expect(wrongPreflight.status).toBe(403);
    expect(wrongPreflight.headers['access-control-allow-origin']).toBeUndefined();

    const preflight = await httpsCall(`${server.url}/decode`, server.caPem, {
      method: 'OPTIONS',
      headers: {
        origin: UI_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace,authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/X-Namespace/i);
    expect(String(preflight.headers.vary)).toMatch(/Origin/);
  });

  it('refuses a forged session cookie', async () => {
    const res = await decode({ cookie: 'ehr_codec_session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl' });
    expect(res.status).toBe(401);
    expect((res.body as { reason: string }).reason).toContain('session cookie');
  });
});

describe('codec server decodes for an authorised caller', () => {
  it('decodes a payload produced by the codec and writes an audit event with the caller and no content', async () => {
    const sub = uniqueId('decoder');
    const res = await decode({ authorization: `Bearer ${await server.token({ sub })}`, origin: UI_ORIGIN });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    const payloads = (res.body as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads;
    expect(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(payloads[0]!.data, 'base64').toString())).toEqual(secretValue);
    const rows = await auditRows(sub, 'success');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).toMatchObject({ namespace: 'default', payloadCount: 1, encryptedCount: 1, via: 'bearer' });
    expect(JSON.stringify(rows[0]!.details)).not.toContain('Codecson');
  });

  it('logs in with a bearer token, sets a Secure HttpOnly SameSite=None Partitioned cookie, and accepts it instead of the header', async () => {
    const sub = uniqueId('cookie');
    const login = await httpsCall(`${server.url}/login`, server.caPem, {
      headers: { authorization: `Bearer ${await server.token({ sub })}`, origin: UI_ORIGIN },
    });
    expect(login.status).toBe(200);
    const setCookie = String(login.headers['set-cookie']);
    expect(setCookie).toMatch(/^ehr_codec_session=[\w-]+\.[\w-]+\.[\w-]+;/);
    for (const attr of ['Secure', 'HttpOnly', 'SameSite=None', 'Partitioned', 'Path=/'])
      expect(setCookie).toContain(attr);
    const cookie = setCookie.split(';')[0]!;
    const res = await decode({ cookie, origin: UI_ORIGIN });
    expect(res.status).toBe(200);
    expect((await auditRows(sub, 'success'))[0]!.details).toMatchObject({ via: 'session' });
  });

  it('encodes for a caller with the encode role (round trip through /encode and /decode)', async () => {
    const token = await server.token({ roles: ['payload-encoder', 'phi-decoder'] });
    const enc = await httpsCall(`${server.url}/encode`, server.caPem, {
      headers: { authorization: `Bearer ${token}` },
      body: toWire([defaultPayloadConverter.toPayload({ x: 1 })]),
    });
    expect(enc.status).toBe(200);
    const meta = (enc.body as { payloads: Array<{ metadata: Record<string, string> }> }).payloads[0]!.metadata;
    expect(Buffer.from(meta.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    const dec = await decode({ authorization: `Bearer ${token}` }, enc.body);
    expect(dec.status).toBe(200);
    expect((await httpsCall(`${server.url}/healthz`, server.caPem, { method: 'GET' })).status).toBe(200);
  });
});

describe('a real sync is encrypted in Temporal, and readable only through the codec server', () => {
  let sandbox: SandboxHandle;
  let worker: RunningWorker;
  let temporal: Awaited<ReturnType<typeof temporalClient>>;
  let raw: Awaited<ReturnType<typeof temporalClient>>;

  beforeAll(async () => {
    sandbox = await startTestSandbox({ size: 120 });
    worker = await startInProcessWorker(config);
    temporal = await temporalClient();
    raw = await temporalClient({ raw: true });
  });
  afterAll(async () => {
    await worker?.stop();
    await temporal?.close();
    await raw?.close();
    await sandbox?.close();
  });

  it('stores only binary/encrypted payloads (search attributes aside), and the audit timeline decodes them', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, sandbox);
    const handle = await startSync(temporal.client, config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId: integrationIds[0]!,
      vendor: 'sandbox',
    });
    await syncResult(handle);

    const history = await raw.client.workflow.getHandle(handle.workflowId).fetchHistory();
    const seen: Payload[] = [];
    // Search attributes are indexed by the server and never pass through codecs (they hold ids only).
    const events = history.events?.map((e) => ({
      ...e,
      upsertWorkflowSearchAttributesEventAttributes: undefined,
      workflowExecutionStartedEventAttributes: e.workflowExecutionStartedEventAttributes && {
        ...e.workflowExecutionStartedEventAttributes,
        searchAttributes: undefined,
      },
    }));
    await convertPayloadsIn({ events }, async (ps) => {
      seen.push(...ps);
      return ps;
    });
    expect(seen.length).toBeGreaterThan(5);
    for (const p of seen) {
      expect(Buffer.from(p.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
      expect(Buffer.from(p.data!).toString('latin1')).not.toContain(tenantId);
    }

    const plain = buildTimeline(history, false);
    expect(plain[0]).toMatchObject({ kind: 'started', data: '[encrypted]' });
    expect(plain.filter((t) => t.kind === 'activity').length).toBeGreaterThan(1);
    expect(plain.at(-1)?.kind).toBe('completed');

    const sub = uniqueId('auditor');
    const decoder = remoteDecoder({
      url: server.url,
      token: await server.token({ sub }),
      caPem: server.caPem,
      namespace: 'default',
    });
    const decoded = buildTimeline(await convertPayloadsIn(history, decoder), true);
    expect(decoded[0]!.data).toContain(`"tenantId":"${tenantId}"`);
    expect(formatTimeline(decoded).join('\n')).toContain('completed');
    expect((await auditRows(sub, 'success'))[0]!.details).toMatchObject({ namespace: 'default' });

    const refused = remoteDecoder({
      url: server.url,
      token: await server.token({ roles: [] }),
      caPem: server.caPem,
      namespace: 'default',
    });
    await expect(convertPayloadsIn(history, refused)).rejects.toThrow(/403/);
  });
});
