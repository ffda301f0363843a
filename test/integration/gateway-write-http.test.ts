/**
 * Writes through the whole door: consumers registered with write scopes (refused for a purpose that may not write,
 * a read-only type or `*`), a token at the gateway's token endpoint, then PUT, POST and DELETE over HTTP on the
 * gateway as startGateway wires it, with the Temporal outbox notifier — the integration's writeBack workflow is
 * started. Malformed JSON gets an OperationOutcome (not a generic 400), and metadata advertises the writes.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { loadGatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import { addConsumer } from '../../lib/gateway/consumers.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { writeBackWorkflowId } from '../../lib/writeback/notifier.js';
import type { GatewayHandle } from '../../workers/gateway.js';
import { startGateway } from '../../workers/gateway.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import { uniqueId } from '../harness.js';
import { openKeyring } from './gateway-support.js';
import { testActor, useSyncHarness } from './support.js';
import { appointment, newTenant, outboxOf, storeAsSynced } from './gateway-write-support.js';

const harness = useSyncHarness({ sandbox: { size: 20 }, worker: false });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-write-http-'));
let gateway: GatewayHandle;
let keyring: TenantKeyring;
let tenantId: string;
let integrationId: string;

async function register(purpose: string, scopes: string) {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const id = uniqueId('writer');
  const keys = { kind: 'jwks' as const, jwks: { keys: [{ ...jwk, kid, alg: 'ES384' }] } };
  await addConsumer(harness.pool, { id, tenantId, purpose, scopes, keys }, testActor);
  return { id, kid, privateKey };
}

async function tokenFor(purpose: string, scopes: string): Promise<string> {
  const c = await register(purpose, scopes);
  const assertion = await signClientAssertion({
    clientId: c.id,
    audience: gateway.tokenUrl,
    kid: c.kid,
    alg: 'ES384',
    privateKey: c.privateKey,
  });
  const res = await fetch(gateway.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: scopes,
    }),
  });
  const body = (await res.json()) as { access_token: string; scope: string };
  expect([res.status, body.scope]).toEqual([200, scopes]);
  return body.access_token;
}

async function send(
  token: string,
  method: string,
  fhirPath: string,
  body?: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${gateway.fhirBaseUrl}/${fhirPath}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/fhir+json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  ({
    tenantId,
    integrationIds: [integrationId = ''],
  } = await newTenant(harness));
  await storeAsSynced({ pool: harness.pool, keyring }, { tenantId, integrationId }, 'Appointment', [
    appointment('appt-h1', 'pat-h'),
  ]);
  const keyFile = path.join(tmp, 'gateway-access.key');
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  fs.writeFileSync(keyFile, pem, { mode: 0o600 });
  gateway = await startGateway(
    { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: 0, GATEWAY_PUBLIC_URL: undefined, GATEWAY_ACCESS_LIFETIME_SECONDS: 300 },
    {
      pool: harness.pool,
      keyring,
      signingKey: await loadGatewaySigningKey(`file:${keyFile}`),
      outboxNotifier: temporalOutboxNotifier(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE),
      actor: 'test:gateway-write',
    },
  );
}, 120_000);

afterAll(async () => {
  await harness.temporal.client.workflow
    .getHandle(writeBackWorkflowId(integrationId))
    .terminate('test over')
    .catch(() => undefined);
  await gateway?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('registration of write scopes', () => {
  it.each([
    ['billing-export', 'system/Patient.cu', /purpose billing-export may not write/],
    ['clinical-sync', 'system/Observation.cu', /Observation is read-only under the write policy/],
    ['clinical-sync', 'system/*.cu', /write scopes name a type/],
    ['clinical-sync', 'system/Appointment.d', /d grants nothing: the gateway does not delete/],
  ])('refuses %s holding %s', async (purpose, scopes, message) => {
    await expect(register(purpose, scopes)).rejects.toThrow(message);
  });
});

describe('writes over HTTP', () => {
  it('updates with PUT (200, ETag) and starts the writeBack workflow; creates with POST (201, Location)', async () => {
    const token = await tokenFor('scheduling-sync', 'system/Appointment.crus');
    const current = await send(token, 'GET', 'Appointment/appt-h1');
    const etag = current.headers.get('etag')!;
    const body = JSON.stringify({ ...(current.body as object), status: 'noshow' });
    const put = await send(token, 'PUT', 'Appointment/appt-h1', body, { 'if-match': etag });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.headers.get('etag')).toMatch(/^W\/"local-/);
    expect(put.body).toMatchObject({ status: 'noshow' });
    const handle = harness.temporal.client.workflow.getHandle(writeBackWorkflowId(integrationId));
    expect((await handle.describe()).status.name).toBe('RUNNING');

    const { id: _id, ...fresh } = appointment('x', 'pat-h', { status: 'proposed' });
    const once = { prefer: 'return=minimal', 'idempotency-key': 'http-create-0001' };
    const post = await send(token, 'POST', 'Appointment', JSON.stringify(fresh), once);
    expect(post.status).toBe(201);
    expect(post.body).toBeUndefined();
    expect(post.headers.get('location')).toMatch(/\/fhir\/Appointment\/local-[0-9a-f-]{36}\/_history\/local-/);
    // Sent again with its Idempotency-Key: the same resource, nothing queued twice.
    const repeat = await send(token, 'POST', 'Appointment', JSON.stringify(fresh), once);
    expect([repeat.status, repeat.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(repeat.headers.get('location')).toBe(post.headers.get('location'));
    expect((await outboxOf(harness.pool, tenantId)).map((c) => c.kind)).toEqual(['update', 'create']);
  });

  it('answers malformed JSON with an OperationOutcome, DELETE with 405, and a read-only token with 403', async () => {
    const token = await tokenFor('scheduling-sync', 'system/Appointment.cu');
    const malformed = await send(token, 'PUT', 'Appointment/appt-h1', '{"resourceType":');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid' }] });
    expect(JSON.stringify(malformed.body)).toMatch(/not well-formed JSON/);
    const deleted = await send(token, 'DELETE', 'Appointment/appt-h1');
    expect([deleted.status, deleted.headers.get('allow')]).toEqual([405, 'GET, PUT, PATCH']);
    const reader = await tokenFor('scheduling-sync', 'system/Appointment.rs');
    expect(
      (await send(reader, 'PUT', 'Appointment/appt-h1', JSON.stringify(appointment('appt-h1', 'pat-h')))).status,
    ).toBe(403);
    expect((await outboxOf(harness.pool, tenantId, 'appt-h1')).length).toBe(1);
  });

  it('advertises create, update and patch only on the types the write policy lets this side write', async () => {
    const res = await fetch(`${gateway.fhirBaseUrl}/metadata`);
    const statement = (await res.json()) as {
      patchFormat: string[];
      rest: Array<{ resource: Array<{ type: string; interaction: Array<{ code: string }> }> }>;
    };
    expect(statement.patchFormat).toEqual(['application/json-patch+json']);
    const codes = (type: string) =>
      statement.rest[0]!.resource.find((r) => r.type === type)!.interaction.map((i) => i.code);
    expect(codes('Appointment')).toEqual(['read', 'search-type', 'create', 'update', 'patch']);
    expect(codes('ServiceRequest')).toEqual(['read', 'search-type', 'create', 'update', 'patch']);
    expect(codes('Patient')).toEqual(['read', 'search-type', 'update', 'patch']);
    expect(codes('Observation')).toEqual(['read', 'search-type']);
  });
});
