/**
 * Writing through the gateway with a FHIR client this project did not write (fhir-kit-client), to a FHIR server it
 * did not write (HAPI FHIR JPA): the client updates an Appointment's status with If-Match on the ETag the gateway
 * served and patches it with a JSON Patch; each change goes back to HAPI through the writeBack workflow, with
 * If-Match on HAPI's version, once. A stale If-Match and an EHR-owned element come back to the client as FHIR
 * errors (412, 422 with an OperationOutcome naming the element), and nothing reaches HAPI for them. A create the
 * client sends three times with one Idempotency-Key creates one Appointment at HAPI.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as FhirKitModule from 'fhir-kit-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadGatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import { defaultWritePolicy } from '../../lib/writeback/authority.js';
import type { GatewayHandle } from '../../workers/gateway.js';
import { startGateway } from '../../workers/gateway.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import { consumerWithToken } from '../integration/gateway-consumer-token.js';
import { openKeyring } from '../integration/gateway-support.js';
import { settled } from '../integration/write-back-support.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { fhirJson, type FhirResource } from './hapi-fhir.js';
import { javaAndMaven } from './hapi-requirement.js';
import { type Ids, registerHapi, runSync, useHapiSync } from './hapi-sync-support.js';

interface KitError {
  response?: { status?: number; data?: { resourceType?: string; issue?: Array<{ expression?: string[] }> } };
}

describeWhenAvailable(__filename, 'gateway writes from a third-party client to HAPI FHIR JPA', [javaAndMaven], () => {
  const h = useHapiSync();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-hapi-'));
  let gateway: GatewayHandle;
  let ids: Ids;
  let client: FhirKitModule.Client;
  const hapiCopy = (id: string) => fhirJson<FhirResource>(`${h.hapi.baseUrl}/Appointment/${id}`, { fresh: true });
  const failureOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: KitError) => err.response,
    );
  const outboxCount = async () =>
    Number(
      (
        await h.harness.pool.query<{ n: string }>(
          'SELECT count(*)::text AS n FROM outbox_changes WHERE integration_id = $1',
          [ids.integrationId],
        )
      ).rows[0]!.n,
    );

  beforeAll(async () => {
    ids = await registerHapi(h, { types: ['Appointment'] });
    await h.harness.pool.query(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, 'Appointment', $3, 'test')`,
      [ids.tenantId, ids.integrationId, JSON.stringify(defaultWritePolicy('Appointment'))],
    );
    const keyFile = path.join(tmp, 'gateway-access.key');
    fs.writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    gateway = await startGateway(
      {
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_PORT: 0,
        GATEWAY_PUBLIC_URL: undefined,
        GATEWAY_ACCESS_LIFETIME_SECONDS: 300,
      },
      {
        pool: h.harness.pool,
        keyring: await openKeyring(h.harness.pool, h.harness.config),
        signingKey: await loadGatewaySigningKey(`file:${keyFile}`),
        actor: 'test:gateway-hapi',
        outboxNotifier: temporalOutboxNotifier(h.harness.temporal.client, h.harness.config.TEMPORAL_TASK_QUEUE),
      },
    );
    const kit = await import('fhir-kit-client');
    const { accessToken } = await consumerWithToken(h.harness.pool, gateway.tokenUrl, {
      tenantId: ids.tenantId,
      purpose: 'scheduling-sync',
      scopes: 'system/Appointment.cruds',
    });
    client = new kit.Client({ baseUrl: gateway.fhirBaseUrl, bearerToken: accessToken });
  }, 900_000);

  afterAll(async () => {
    await gateway?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('updates and patches reach HAPI once each with If-Match; refusals come back as FHIR errors', async () => {
    const created = await fhirJson<FhirResource>(`${h.hapi.baseUrl}/Appointment`, {
      method: 'POST',
      body: {
        resourceType: 'Appointment',
        status: 'booked',
        start: '2027-02-01T09:00:00Z',
        end: '2027-02-01T09:30:00Z',
        participant: [{ actor: { display: 'Synthetic Room 7' }, status: 'accepted' }],
      },
    });
    await runSync(h, ids, true);
    const id = created.id!;

    const served = (await client.read({ resourceType: 'Appointment', id })) as FhirResource;
    expect(served.meta?.versionId).toBe('1');
    const etag = `W/"${served.meta!.versionId!}"`;
    const updated = (await client.update({
      resourceType: 'Appointment',
      id,
      body: { ...served, status: 'arrived' },
      options: { headers: { 'If-Match': etag } },
    })) as FhirResource;
    expect(updated.status).toBe('arrived');
    const [first] = (
      await h.harness.pool.query<{ id: string }>(
        'SELECT id FROM outbox_changes WHERE integration_id = $1 ORDER BY created_at',
        [ids.integrationId],
      )
    ).rows;
    expect(await settled(h.harness.pool, first!.id)).toMatchObject({ status: 'sent', vendorVersionId: '2' });
    expect(await hapiCopy(id)).toMatchObject({ status: 'arrived', meta: { versionId: '2' } });

    // The ETag the client held is stale now (the record is HAPI's version 2): refused, nothing queued.
    const queuedBefore = await outboxCount();
    const stale = await failureOf(
      client.update({
        resourceType: 'Appointment',
        id,
        body: { ...served, status: 'fulfilled' },
        options: { headers: { 'If-Match': etag } },
      }),
    );
    expect(stale?.status).toBe(412);
    // `description` is the EHR's under the policy: 422 naming it.
    const owned = await failureOf(
      client.patch({ resourceType: 'Appointment', id, jsonPatch: [{ op: 'add', path: '/description', value: 'x' }] }),
    );
    expect(owned?.status).toBe(422);
    expect(owned?.data?.issue?.flatMap((i) => i.expression ?? [])).toContain('Appointment.description');
    expect(await outboxCount()).toBe(queuedBefore);

    await client.patch({
      resourceType: 'Appointment',
      id,
      jsonPatch: [{ op: 'replace', path: '/status', value: 'fulfilled' }],
    });
    const second = (
      await h.harness.pool.query<{ id: string }>(
        `SELECT id FROM outbox_changes WHERE integration_id = $1 AND id <> $2`,
        [ids.integrationId, first!.id],
      )
    ).rows;
    expect(second).toHaveLength(1);
    expect(await settled(h.harness.pool, second[0]!.id)).toMatchObject({ status: 'sent', vendorVersionId: '3' });
    expect(await hapiCopy(id)).toMatchObject({ status: 'fulfilled', start: created.start, meta: { versionId: '3' } });
  });

  it('a create sent again with its Idempotency-Key creates one Appointment at HAPI', async () => {
    const atHapi = async () =>
      (await fhirJson<{ total: number }>(`${h.hapi.baseUrl}/Appointment?_summary=count`, { fresh: true })).total;
    const before = await atHapi();
    const create = () =>
      client.create({
        resourceType: 'Appointment',
        body: {
          resourceType: 'Appointment',
          status: 'proposed',
          start: '2027-03-03T10:00:00Z',
          end: '2027-03-03T10:30:00Z',
          participant: [{ actor: { display: 'Synthetic Room 9' }, status: 'needs-action' }],
        },
        options: { headers: { 'Idempotency-Key': 'kit-create-appointment-0001' } },
      }) as Promise<FhirResource>;
    const first = await create();
    expect((await create()).id).toBe(first.id);
    const [change] = (
      await h.harness.pool.query<{ id: string }>(
        `SELECT id FROM outbox_changes WHERE integration_id = $1 AND kind = 'create'`,
        [ids.integrationId],
      )
    ).rows;
    const sent = await settled(h.harness.pool, change!.id);
    expect(sent).toMatchObject({ status: 'sent' });
    // After HAPI created it: the answer is HAPI's resource, and HAPI holds one more Appointment, not two.
    expect((await create()).id).toBe(sent.vendorResourceId);
    expect(await atHapi()).toBe(before + 1);
  });
});
