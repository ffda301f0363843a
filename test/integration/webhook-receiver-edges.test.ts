/**
 * The webhook receiver as an outsider probes it: a delivery with a malformed or unsupported
 * Content-Type is refused for good (415, audited, nothing stored) instead of being asked to retry;
 * and a sender who has not proven the secret cannot tell an unknown integration, one under an
 * incident hold, one without a secret and a wrong signature apart — not by status, body, headers or
 * time — while the verified vendor of a held integration is told to come back later (503). Real
 * PostgreSQL and real HTTP; the sandbox only backs the integrations' registration.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSecret } from '../../lib/config/secrets.js';
import { openIncident, raiseHold } from '../../lib/incidents/store.js';
import type { Pool } from '../../lib/store/pool.js';
import { addWebhookSecret, listWebhookSecrets } from '../../lib/webhooks/secrets.js';
import { signWebhook } from '../../lib/webhooks/verify.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import {
  UNVERIFIED_REFUSAL_FLOOR_MS,
  startWebhookReceiver,
  type WebhookReceiverHandle,
} from '../../workers/webhook-receiver.js';
import { testEnv, uniqueId } from '../harness.js';
import { registerSandboxTenant, startTestSandbox, testActor, testLogger, testPool } from './support.js';

const RETRY_AFTER = 120;
let pool: Pool;
let sandbox: SandboxHandle;
let receiver: WebhookReceiverHandle;

beforeAll(async () => {
  pool = testPool();
  sandbox = await startTestSandbox({ size: 10 });
  receiver = await startWebhookReceiver(
    {
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: 0,
      WEBHOOK_MAX_BODY_BYTES: 64 * 1024,
      WEBHOOK_RETRY_AFTER_SECONDS: RETRY_AFTER,
    },
    { pool, logger: testLogger(), notify: async () => undefined },
  );
});
afterAll(async () => {
  await receiver?.close();
  await sandbox?.close();
  await pool?.end();
});

interface RawAnswer {
  status: number;
  /** Every header as sent, in order, except Date. */
  headers: string[];
  body: string;
  ms: number;
}

/** One POST over a fresh connection, answered byte for byte. */
function post(path: string, headers: Record<string, string>, body: string): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${receiver.url}${path}`,
      { method: 'POST', agent: false, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () => {
          const raw: string[] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            if (res.rawHeaders[i]!.toLowerCase() !== 'date') raw.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
          }
          resolve({ status: res.statusCode ?? 0, headers: raw, body: text, ms: performance.now() - started });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function integration(
  opts: { secret?: boolean } = {},
): Promise<{ tenantId: string; integrationId: string; secret?: string }> {
  const { tenantId, integrationIds } = await registerSandboxTenant(pool, sandbox);
  const integrationId = integrationIds[0]!;
  if (opts.secret === false) return { tenantId, integrationId };
  await addWebhookSecret(pool, integrationId, testActor, { secretsDir: testEnv().secretsDir });
  const current = (await listWebhookSecrets(pool, integrationId)).find((s) => s.state === 'current')!;
  return { tenantId, integrationId, secret: await resolveSecret(current.secretRef, { field: 'test webhook secret' }) };
}

const HEARTBEAT = JSON.stringify({ type: 'heartbeat', resourceTypes: [] });

function signed(secret: string, body = HEARTBEAT, webhookId = uniqueId('msg')): Record<string, string> {
  const ts = Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json',
    'webhook-id': webhookId,
    'webhook-timestamp': String(ts),
    'webhook-signature': signWebhook(secret, webhookId, ts, body),
  };
}

async function refusals(
  integrationId: string,
  key: 'integration_id' | 'claimed',
): Promise<Array<Record<string, unknown>>> {
  const where = key === 'integration_id' ? 'integration_id = $1' : `details->>'claimedIntegrationId' = $1`;
  const res = await pool.query<{ details: Record<string, unknown> }>(
    `SELECT details FROM audit_events WHERE action = 'webhook.refused' AND ${where} ORDER BY seq`,
    [integrationId],
  );
  return res.rows.map((r) => r.details);
}

async function deliveryCount(integrationId: string): Promise<number> {
  const res = await pool.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM webhook_deliveries WHERE integration_id = $1',
    [integrationId],
  );
  return Number(res.rows[0]!.n);
}

describe('content types', () => {
  it('refuses a missing, malformed or unsupported Content-Type with 415 (no Retry-After), audited per reason, storing nothing', async () => {
    const { integrationId, secret } = await integration();
    const bad: Array<[string | undefined, string]> = [
      [undefined, 'missing-content-type'],
      [';;;', 'malformed-content-type'],
      ['application/json; charset', 'malformed-content-type'],
      ['application json', 'malformed-content-type'],
      ['text/plain', 'unsupported-content-type'],
      ['application/xml', 'unsupported-content-type'],
      ['application/json; charset=latin1', 'unsupported-content-type'],
    ];
    for (const [contentType, reason] of bad) {
      const headers = signed(secret!);
      if (contentType === undefined) delete headers['content-type'];
      else headers['content-type'] = contentType;
      const res = await post(`/webhooks/${integrationId}`, headers, HEARTBEAT);
      expect([res.status, JSON.parse(res.body)], String(contentType)).toEqual([
        415,
        { error: 'unsupported_media_type', reason },
      ]);
      expect(
        res.headers.some((h) => /^retry-after:/i.test(h)),
        String(contentType),
      ).toBe(false);
    }
    expect(await deliveryCount(integrationId)).toBe(0);
    // One row per reason in the window; the repeats are counted in the next row, not written.
    expect((await refusals(integrationId, 'claimed')).map((d) => [d['status'], d['reason']])).toEqual([
      [415, 'missing-content-type'],
      [415, 'malformed-content-type'],
      [415, 'unsupported-content-type'],
    ]);
  });

  it('accepts JSON and FHIR JSON with a UTF-8 charset or a fhirVersion', async () => {
    const { integrationId, secret } = await integration();
    for (const contentType of [
      'application/json; charset=UTF-8',
      'application/fhir+json; fhirVersion=4.0',
      'Application/JSON;charset="utf-8"',
    ]) {
      const res = await post(
        `/webhooks/${integrationId}`,
        { ...signed(secret!), 'content-type': contentType },
        HEARTBEAT,
      );
      expect([res.status, contentType]).toEqual([200, contentType]);
    }
    expect(await deliveryCount(integrationId)).toBe(3);
  });
});

describe('a sender that has not proven the secret learns nothing about the integration', () => {
  it('answers unknown, held, secretless and active integrations identically, no sooner than the floor, and audits the real cause', async () => {
    const active = await integration();
    const held = await integration();
    const secretless = await integration({ secret: false });
    const unknownId = uniqueId('nobody');
    const incidentId = uniqueId('inc');
    await openIncident(
      pool,
      {
        id: incidentId,
        scope: `tenant:${held.tenantId}`,
        severity: 'high',
        reason: 'edge test',
        declaredBy: 'test',
        drill: true,
        declaredAt: new Date(),
      },
      testActor,
    );
    await raiseHold(pool, incidentId, `tenant:${held.tenantId}`, testActor);

    const forged = signed(`whsec_${randomBytes(32).toString('base64')}`);
    const targets = [active.integrationId, held.integrationId, secretless.integrationId, unknownId, 'Not_An-Id!'];
    for (const headers of [forged, { 'content-type': 'application/json' }]) {
      const answers: RawAnswer[] = [];
      for (const id of targets) answers.push(await post(`/webhooks/${encodeURIComponent(id)}`, headers, HEARTBEAT));
      const reason = headers === forged ? 'no-matching-signature' : 'missing-headers';
      const shown = answers.map((a) => ({ status: a.status, headers: a.headers, body: a.body }));
      expect(shown).toEqual(targets.map(() => shown[0]));
      expect([answers[0]!.status, JSON.parse(answers[0]!.body)]).toEqual([401, { error: 'unauthorized', reason }]);
      for (const [i, a] of answers.entries())
        expect(a.ms, targets[i]).toBeGreaterThanOrEqual(UNVERIFIED_REFUSAL_FLOOR_MS - 5);
    }

    expect((await refusals(active.integrationId, 'integration_id')).map((d) => d['reason'])).toEqual([
      'no-matching-signature',
      'missing-headers',
    ]);
    expect((await refusals(held.integrationId, 'integration_id')).map((d) => d['reason'])).toEqual([
      'no-matching-signature',
      'missing-headers',
    ]);
    expect((await refusals(secretless.integrationId, 'integration_id')).map((d) => d['reason'])).toEqual([
      'no-webhook-secret',
    ]);
    expect((await refusals(unknownId, 'claimed')).map((d) => [d['reason'], d['signatureCheck']])).toEqual([
      ['unknown-integration', 'no-matching-signature'],
    ]);

    // The held integration's own vendor, signing with the right secret, is told to come back later.
    const verified = await post(`/webhooks/${held.integrationId}`, signed(held.secret!), HEARTBEAT);
    expect([verified.status, JSON.parse(verified.body)]).toEqual([
      503,
      { error: 'unavailable', reason: 'scope-under-incident' },
    ]);
    expect(verified.headers).toContain(`retry-after: ${RETRY_AFTER}`);
    expect(verified.body).not.toContain(incidentId);
    expect(await deliveryCount(held.integrationId)).toBe(0);
    expect((await refusals(held.integrationId, 'integration_id')).at(-1)).toMatchObject({
      status: 503,
      reason: 'scope-under-incident',
      incidentId,
    });
  });
});
