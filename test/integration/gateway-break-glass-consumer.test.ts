/**
 * A consumer asks for break-glass itself (POST /break-glass on the gateway process as runGateway wires it: the real
 * FHIR read side, activeGrantsFor per request, a Temporal client starting the review), over a real sync: Observation
 * is outside its scopes (403), the grant makes it readable on the next request (200, the read's audit event carries
 * the grant's id), the breakGlassReview workflow is running and refuses a review by `consumer:<id>` (four eyes).
 * Bad bodies are 400s naming the field, audited, granting nothing; a revoked consumer is 401; the reason text is in
 * no audit event and no log line; a review that cannot start (no such namespace) is a 503 and its grant revoked.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakGlassReviewState, reviewBreakGlass } from '../../client/break-glass-client.js';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { getBreakGlassGrant, listBreakGlassGrants } from '../../lib/gateway/break-glass.js';
import { addConsumer, revokeConsumer } from '../../lib/gateway/consumers.js';
import type { GatewayHandle } from '../../workers/gateway.js';
import { runGateway } from '../../workers/gateway.js';
import { uniqueId } from '../harness.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import { syncedSandboxTenant } from './stored-records.js';
import { logFile, testActor, testConfig, testLogger, useSyncHarness } from './support.js';

const REASON = 'synthetic drill: consumer needs recent labs for a transfer';
const harness = useSyncHarness({ sandbox: { size: 20 }, config: { EHR_BREAK_GLASS_MAX_MINUTES: '60' } });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-bg-consumer-'));
let gateway: { handle: GatewayHandle; stop(): Promise<void> };
/** The same gateway, but its Temporal namespace does not exist: no review workflow can start. */
let stranded: { handle: GatewayHandle; stop(): Promise<void> };
let tenantId: string;

interface Consumer {
  id: string;
  kid: string;
  privateKey: CryptoKey;
}

beforeAll(async () => {
  recordIdentifiers([REASON]);
  ({ tenantId } = await syncedSandboxTenant(harness, ['Patient', 'Observation']));
  const keyFile = path.join(tmp, 'gateway-access.key');
  const { privateKey } = generateKeyPairSync('ed25519');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  // The harness's config (its task queue, where its worker runs breakGlassReview) with the gateway's settings.
  const settings = {
    TEMPORAL_TASK_QUEUE: harness.config.TEMPORAL_TASK_QUEUE,
    EHR_BREAK_GLASS_MAX_MINUTES: '60',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: '0',
    GATEWAY_ACCESS_SIGNING_KEY: `file:${keyFile}`,
  };
  gateway = await runGateway(testConfig(settings), testLogger());
  stranded = await runGateway(testConfig({ ...settings, TEMPORAL_NAMESPACE: uniqueId('no-such-ns') }), testLogger());
});

afterAll(async () => {
  await gateway?.stop();
  await stranded?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function newConsumer(): Promise<Consumer> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const id = uniqueId('consumer');
  await addConsumer(
    harness.pool,
    {
      id,
      tenantId,
      purpose: 'clinical-sync',
      scopes: 'system/Patient.rs',
      keys: { kind: 'jwks', jwks: { keys: [{ ...jwk, kid, alg: 'ES384', use: 'sig' }] } },
    },
    testActor,
  );
  return { id, kid, privateKey };
}

async function tokenFor(c: Consumer, at = gateway.handle): Promise<string> {
  const assertion = await signClientAssertion({
    clientId: c.id,
    audience: at.tokenUrl,
    kid: c.kid,
    alg: 'ES384',
    privateKey: c.privateKey,
  });
  const res = await fetch(at.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: 'system/Patient.rs',
    }).toString(),
  });
  const body = (await res.json()) as { access_token?: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.access_token!;
}

const goodBody = { scope: 'system/Observation.rs', reasonCode: 'care-continuity', reason: REASON, minutes: 15 };

function postBreakGlass(token: string | undefined, body: unknown, at = gateway.handle) {
  return fetch(`${at.url}/break-glass`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const readObservations = (token: string) =>
  fetch(`${gateway.handle.fhirBaseUrl}/Observation?_count=5`, { headers: { authorization: `Bearer ${token}` } });

async function auditByCorrelation(correlationId: string) {
  const { rows } = await harness.pool.query<{ action: string; details: Record<string, unknown> }>(
    'SELECT action, details FROM audit_events WHERE correlation_id = $1 ORDER BY seq',
    [correlationId],
  );
  return rows;
}

async function refusals(consumerId: string): Promise<Array<{ reason: string; status: number; route?: string }>> {
  const { rows } = await harness.pool.query<{ details: { reason: string; status: number; route?: string } }>(
    `SELECT details FROM audit_events WHERE action = 'gateway.request.refused' AND details->>'consumerId' = $1
      ORDER BY seq`,
    [consumerId],
  );
  return rows.map((r) => ({ reason: r.details.reason, status: r.details.status, route: r.details.route }));
}

describe('POST /break-glass by the consumer itself', () => {
  it('grants the token’s consumer time-boxed access: 403 before, 200 after (tagged), review running, four eyes', async () => {
    const c = await newConsumer();
    const token = await tokenFor(c);
    expect((await readObservations(token)).status).toBe(403);

    const res = await postBreakGlass(token, goodBody);
    const grant = (await res.json()) as { id: string; consumerId: string; expiresAt: string; scopes: string[] };
    expect(res.status, JSON.stringify(grant)).toBe(201);
    expect(grant).toMatchObject({ consumerId: c.id, scopes: ['system/Observation.rs'] });
    const minutesLeft = (Date.parse(grant.expiresAt) - Date.now()) / 60_000;
    expect(minutesLeft).toBeGreaterThan(14);
    expect(minutesLeft).toBeLessThanOrEqual(15);
    const stored = await getBreakGlassGrant(harness.pool, grant.id);
    expect(stored).toMatchObject({ consumerId: c.id, requestedBy: `consumer:${c.id}`, reasonCode: 'care-continuity' });

    // The very next read has the grant; its audit event names it.
    const read = await readObservations(token);
    expect(read.status).toBe(200);
    const bundle = (await read.json()) as { entry: Array<{ resource: { resourceType: string } }> };
    expect(bundle.entry.length).toBeGreaterThan(0);
    expect(bundle.entry.every((e) => e.resource.resourceType === 'Observation')).toBe(true);
    const events = await auditByCorrelation(read.headers.get('x-correlation-id')!);
    const served = events.filter((e) => e.details.breakGlassId === grant.id);
    expect(served.length, JSON.stringify(events.map((e) => e.action))).toBeGreaterThan(0);
    // Patient, within its own scopes, is read without the grant's tag.
    const own = await fetch(`${gateway.handle.fhirBaseUrl}/Patient?_count=1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(own.status).toBe(200);
    const ownEvents = await auditByCorrelation(own.headers.get('x-correlation-id')!);
    expect(ownEvents.some((e) => e.details.breakGlassId !== undefined)).toBe(false);

    // The review workflow started at once (it raised the alert) and waits for a second person.
    const state = await breakGlassReviewState(harness.temporal.client, grant.id);
    expect(['alerting', 'awaiting-review']).toContain(state.status);
    const described = await harness.temporal.client.workflow.getHandle(`break-glass/${grant.id}`).describe();
    expect(described.status.name).toBe('RUNNING');
    const selfReview = reviewBreakGlass(
      harness.pool,
      harness.temporal.client,
      grant.id,
      { by: `consumer:${c.id}`, verdict: 'appropriate', note: 'looks fine to me' },
      testActor,
    );
    await expect(selfReview).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await getBreakGlassGrant(harness.pool, grant.id)).reviewedBy).toBeNull();
    // A second person's review counts.
    const outcome = await reviewBreakGlass(
      harness.pool,
      harness.temporal.client,
      grant.id,
      { by: 'reviewer@synthetic', verdict: 'appropriate', note: 'transfer confirmed' },
      testActor,
    );
    expect(outcome).toMatchObject({ verdict: 'appropriate', reviewedBy: 'reviewer@synthetic' });

    // The requester's words are in the grant's row only.
    const { rows } = await harness.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM audit_events WHERE details::text LIKE $1',
      [`%${REASON}%`],
    );
    expect(Number(rows[0]!.n)).toBe(0);
    expect(fs.readFileSync(logFile, 'utf8')).not.toContain(REASON);
  });

  it.each([
    ['not JSON', '{"scope": ', 'break-glass-invalid-json'],
    ['an array', [goodBody], 'break-glass-invalid-body'],
    ['another consumer named', { ...goodBody, consumerId: 'someone-else' }, 'break-glass-invalid-field'],
    ['no scope', { ...goodBody, scope: undefined }, 'break-glass-invalid-scope'],
    ['an unknown scope', { ...goodBody, scope: 'system/Nonsense.rs' }, 'break-glass-invalid-scope'],
    ['an unknown reason code', { ...goodBody, reasonCode: 'curiosity' }, 'break-glass-invalid-reasonCode'],
    ['a reason with non-ASCII text', { ...goodBody, reason: 'naïve' }, 'break-glass-invalid-reason'],
    ['minutes as text', { ...goodBody, minutes: '15' }, 'break-glass-invalid-minutes'],
    ['minutes over EHR_BREAK_GLASS_MAX_MINUTES', { ...goodBody, minutes: 61 }, 'break-glass-invalid-minutes'],
    ['zero minutes', { ...goodBody, minutes: 0 }, 'break-glass-invalid-minutes'],
  ])('refuses a body with %s: 400 naming the field, audited, nothing granted', async (_what, body, reason) => {
    const c = await newConsumer();
    const res = await postBreakGlass(await tokenFor(c), body);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'invalid', details: { coding: [{ code: reason }] } }],
    });
    expect(await refusals(c.id)).toEqual([{ reason, status: 400, route: 'break-glass' }]);
    expect((await listBreakGlassGrants(harness.pool)).filter((g) => g.consumerId === c.id)).toEqual([]);
  });

  it('answers 401 without a token (before the body is read) and to a revoked consumer, audited', async () => {
    expect((await postBreakGlass(undefined, 'not even JSON')).status).toBe(401);
    const c = await newConsumer();
    const token = await tokenFor(c);
    await revokeConsumer(harness.pool, c.id, testActor, 'synthetic revocation');
    const res = await postBreakGlass(token, goodBody);
    expect(res.status).toBe(401);
    expect(await refusals(c.id)).toEqual([{ reason: 'consumer-revoked', status: 401, route: 'break-glass' }]);
    expect((await listBreakGlassGrants(harness.pool)).filter((g) => g.consumerId === c.id)).toEqual([]);
  });

  it('answers 503 (audited) and leaves no grant in force when the review workflow cannot start', async () => {
    const c = await newConsumer();
    const res = await postBreakGlass(await tokenFor(c, stranded.handle), goodBody, stranded.handle);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('30');
    expect(await res.json()).toMatchObject({ issue: [{ details: { coding: [{ code: 'break-glass-unavailable' }] } }] });
    expect(await refusals(c.id)).toEqual([{ reason: 'break-glass-unavailable', status: 503, route: 'break-glass' }]);
    const grants = (await listBreakGlassGrants(harness.pool)).filter((g) => g.consumerId === c.id);
    expect(grants).toHaveLength(1);
    expect(grants[0]!.revokedAt).not.toBeNull();
    expect(grants[0]!.revokedBy).toBe(`consumer:${c.id}`);
    expect((await readObservations(await tokenFor(c))).status).toBe(403);
  });
});
