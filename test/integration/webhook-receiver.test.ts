/**
 * The webhook receiver against real Temporal and PostgreSQL, with the sandbox as the sending vendor:
 * a signed delivery is stored once and starts the integration's delta sync, which syncs exactly the
 * notified type; a redelivery is answered 200 without a second row or signal; bad signatures and
 * stale timestamps get 401; a secret rotation accepts both secrets, then refuses the retired one; an
 * incident hold answers the verified vendor 503 + Retry-After and stores nothing (another tenant is
 * unaffected, and the redelivery after recovery is accepted); the audit chain holds the events and no
 * PHI. What an unverified sender can and cannot learn: webhook-receiver-edges.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deltaSyncWorkflowId, notifyDeltaSync, pendingNotifications } from '../../client/delta-sync-client.js';
import { TenantIdKey } from '../../client/sync-client.js';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { resolveSecret } from '../../lib/config/secrets.js';
import { liftHold, openIncident, raiseHold } from '../../lib/incidents/store.js';
import { addWebhookSecret, listWebhookSecrets, retireWebhookSecret } from '../../lib/webhooks/secrets.js';
import { startWebhookReceiver, type WebhookReceiverHandle } from '../../workers/webhook-receiver.js';
import type { SyncReport } from '../../workflows/nightly-sync.js';
import type { ChangeNotification, PendingNotifications } from '../../workflows/webhook-delta-sync.js';
import { testEnv, uniqueId } from '../harness.js';
import {
  registerSandboxTenant,
  sandboxAdmin,
  storedVersions,
  testActor,
  testLogger,
  useSyncHarness,
} from './support.js';

const harness = useSyncHarness({ sandbox: { seed: 43, size: 120 }, config: { EHR_SYNC_PAGE_SIZE: '50' } });
const RETRY_AFTER = 120;
const LIMIT = 64 * 1024;
let receiver: WebhookReceiverHandle;
const notified: ChangeNotification[] = [];

beforeAll(async () => {
  receiver = await startWebhookReceiver(
    {
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: 0,
      WEBHOOK_MAX_BODY_BYTES: LIMIT,
      WEBHOOK_RETRY_AFTER_SECONDS: RETRY_AFTER,
    },
    {
      pool: harness.pool,
      logger: testLogger(),
      notify: async (target, n) => {
        notified.push(n);
        await notifyDeltaSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, target, n, {
          debounceSeconds: 1,
        });
      },
    },
  );
});
afterAll(async () => {
  await receiver?.close();
});

interface Sent {
  webhookId: string;
  status: number;
  retryAfter: string | null;
  answer: { accepted?: boolean; duplicate?: boolean; error?: string; reason?: string };
}

function send(integrationId: string, secret: string | string[], opts: Record<string, unknown> = {}): Promise<Sent> {
  return sandboxAdmin<Sent>(harness.sandbox, 'POST', '/admin/webhooks/send', {
    url: `${receiver.url}/webhooks/${integrationId}`,
    secret,
    ...opts,
  });
}

/** A fresh tenant + integration with a generated webhook secret (its value, as the vendor holds it). */
async function webhookIntegration(): Promise<{ tenantId: string; integrationId: string; secret: string }> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: ['Patient', 'Observation'],
  });
  const integrationId = integrationIds[0]!;
  await addWebhookSecret(harness.pool, integrationId, testActor, { secretsDir: testEnv().secretsDir });
  return { tenantId, integrationId, secret: await currentSecret(integrationId) };
}

async function currentSecret(integrationId: string): Promise<string> {
  const current = (await listWebhookSecrets(harness.pool, integrationId)).find((s) => s.state === 'current')!;
  return resolveSecret(current.secretRef, { field: 'test webhook secret' });
}

async function deliveries(
  integrationId: string,
): Promise<Array<{ webhook_id: string; resource_types: string[]; signalled: boolean }>> {
  const res = await harness.pool.query<{ webhook_id: string; resource_types: string[]; signalled: boolean }>(
    `SELECT webhook_id, resource_types, signalled_at IS NOT NULL AS signalled
        FROM webhook_deliveries WHERE integration_id = $1 ORDER BY id`,
    [integrationId],
  );
  return res.rows;
}

async function auditEvents(
  integrationId: string,
): Promise<Array<{ action: string; details: Record<string, unknown> }>> {
  const res = await harness.pool.query<{ action: string; details: Record<string, unknown> }>(
    `SELECT action, details FROM audit_events WHERE integration_id = $1 AND action LIKE 'webhook.%' ORDER BY seq`,
    [integrationId],
  );
  return res.rows;
}

function deltaHandle(tenantId: string, integrationId: string) {
  return harness.temporal.client.workflow.getHandle(deltaSyncWorkflowId({ tenantId, integrationId }));
}

describe('webhook receiver', () => {
  it(
    'a signed delivery is stored once and starts a delta sync of exactly the notified type',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationId, secret } = await webhookIntegration();
      const sent = await send(integrationId, secret, { resourceTypes: ['Observation'], changes: 2 });
      expect(sent.status).toBe(200);
      expect(sent.answer).toEqual({ accepted: true, duplicate: false });
      expect(await deliveries(integrationId)).toEqual([
        { webhook_id: sent.webhookId, resource_types: ['Observation'], signalled: true },
      ]);

      const handle = deltaHandle(tenantId, integrationId);
      await expect
        .poll(async () => (await pendingNotifications(handle)).lastBatch?.outcome, { timeout: 60_000, interval: 500 })
        .toBe('completed');
      const pending: PendingNotifications = await pendingNotifications(handle);
      expect(pending).toMatchObject({
        count: 0,
        received: 1,
        batches: 1,
        lastBatch: { notifications: 1, resourceTypes: ['Observation'] },
      });
      const report = (await harness.temporal.client.workflow
        .getHandle(pending.lastBatch!.childWorkflowId)
        .result()) as SyncReport;
      expect(report.outcome).toBe('completed');
      expect(report.types.map((t) => t.resourceType)).toEqual(['Observation']);
      expect((await storedVersions(harness.pool, tenantId, integrationId, 'Observation')).size).toBeGreaterThan(0);
      expect((await storedVersions(harness.pool, tenantId, integrationId, 'Patient')).size).toBe(0);
      // Findable in the Web UI by tenant, like every other workflow.
      expect((await handle.describe()).typedSearchAttributes.get(TenantIdKey)).toBe(tenantId);
    },
  );

  it('a redelivered webhook id answers 200 without a second row or a second signal', { timeout: 60_000 }, async () => {
    const { integrationId, secret } = await webhookIntegration();
    const webhookId = uniqueId('msg');
    const first = await send(integrationId, secret, { resourceTypes: ['Patient'], webhookId, changes: 0 });
    const second = await send(integrationId, secret, { resourceTypes: ['Patient'], webhookId, changes: 0 });
    expect([first.status, first.answer.duplicate]).toEqual([200, false]);
    expect([second.status, second.answer.duplicate]).toEqual([200, true]);
    expect((await deliveries(integrationId)).map((d) => d.webhook_id)).toEqual([webhookId]);
    expect(notified.filter((n) => n.webhookId === webhookId)).toHaveLength(1);
    expect((await auditEvents(integrationId)).filter((e) => e.action === 'webhook.received')).toHaveLength(1);
  });

  it(
    'refuses a bad signature and a stale timestamp with 401, stores nothing, and audits a burst once',
    { timeout: 60_000 },
    async () => {
      const { integrationId } = await webhookIntegration();
      const wrong = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      const bad = await send(integrationId, wrong, { resourceTypes: ['Patient'] });
      expect([bad.status, bad.answer.reason]).toEqual([401, 'no-matching-signature']);
      const stale = await send(integrationId, await currentSecret(integrationId), {
        resourceTypes: ['Patient'],
        timestampOffsetSeconds: -600,
      });
      expect([stale.status, stale.answer.reason]).toEqual([401, 'timestamp-out-of-tolerance']);
      for (let i = 0; i < 4; i++)
        expect((await send(integrationId, wrong, { resourceTypes: ['Patient'] })).status).toBe(401);
      expect(await deliveries(integrationId)).toEqual([]);
      const refused = (await auditEvents(integrationId))
        .filter((e) => e.action === 'webhook.refused')
        .map((e) => e.details['reason']);
      expect(refused).toEqual(['no-matching-signature', 'timestamp-out-of-tolerance']);
      expect(JSON.stringify(bad.answer)).not.toContain('whsec_');
    },
  );

  it(
    'accepts both secrets during a rotation window and refuses the old one once retired',
    { timeout: 60_000 },
    async () => {
      const { integrationId, secret: oldSecret } = await webhookIntegration();
      const { version: newVersion, previousVersion } = await addWebhookSecret(harness.pool, integrationId, testActor, {
        secretsDir: testEnv().secretsDir,
      });
      const newSecret = await currentSecret(integrationId);
      expect((await send(integrationId, oldSecret, { resourceTypes: ['Patient'], changes: 0 })).status).toBe(200);
      expect((await send(integrationId, newSecret, { resourceTypes: ['Patient'], changes: 0 })).status).toBe(200);
      const verifiedWith = (await auditEvents(integrationId))
        .filter((e) => e.action === 'webhook.received')
        .map((e) => e.details['verifiedWith']);
      expect(verifiedWith).toEqual(['previous', 'current']);

      await retireWebhookSecret(harness.pool, integrationId, previousVersion!, testActor);
      const refused = await send(integrationId, oldSecret, { resourceTypes: ['Patient'], changes: 0 });
      expect([refused.status, refused.answer.reason]).toEqual([401, 'no-matching-signature']);
      expect((await send(integrationId, newSecret, { resourceTypes: ['Patient'], changes: 0 })).status).toBe(200);
      expect(newVersion).toBe(previousVersion! + 1);
    },
  );

  it(
    'refuses with 503 + Retry-After while an incident holds the scope; another tenant is accepted; ' +
      'the redelivery after recovery is',
    { timeout: 60_000 },
    async () => {
      const held = await webhookIntegration();
      const other = await webhookIntegration();
      const incidentId = uniqueId('inc');
      await openIncident(
        harness.pool,
        {
          id: incidentId,
          scope: `tenant:${held.tenantId}`,
          severity: 'high',
          reason: 'webhook test',
          declaredBy: 'test',
          drill: true,
          declaredAt: new Date(),
        },
        testActor,
      );
      await raiseHold(harness.pool, incidentId, `tenant:${held.tenantId}`, testActor);
      const webhookId = uniqueId('msg');
      const refused = await send(held.integrationId, held.secret, {
        resourceTypes: ['Patient'],
        webhookId,
        changes: 0,
      });
      expect([refused.status, refused.retryAfter, refused.answer.reason]).toEqual([
        503,
        String(RETRY_AFTER),
        'scope-under-incident',
      ]);
      expect(JSON.stringify(refused.answer)).not.toContain(incidentId);
      expect(await deliveries(held.integrationId)).toEqual([]);
      const audit = (await auditEvents(held.integrationId)).filter((e) => e.action === 'webhook.refused');
      expect(audit.map((e) => e.details)).toEqual([
        expect.objectContaining({ status: 503, reason: 'scope-under-incident', incidentId }),
      ]);

      expect((await send(other.integrationId, other.secret, { resourceTypes: ['Patient'], changes: 0 })).status).toBe(
        200,
      );

      await liftHold(harness.pool, incidentId, testActor);
      const redelivered = await send(held.integrationId, held.secret, {
        resourceTypes: ['Patient'],
        webhookId,
        changes: 0,
      });
      expect([redelivered.status, redelivered.answer.duplicate]).toEqual([200, false]);
      expect((await deliveries(held.integrationId)).map((d) => d.webhook_id)).toEqual([webhookId]);
    },
  );

  it('answers 401 for an unknown integration (as for a bad signature) and 413 for an oversized body, storing nothing', async () => {
    const unknown = await fetch(`${receiver.url}/webhooks/${uniqueId('nobody')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(unknown.status).toBe(401);
    const { integrationId } = await webhookIntegration();
    const big = await fetch(`${receiver.url}/webhooks/${integrationId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(LIMIT) }),
    });
    expect(big.status).toBe(413);
    expect(await deliveries(integrationId)).toEqual([]);
  });

  it(
    'the delta sync batches a burst into one sync, continues as new carrying its state, and ignores a repeated id',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationId } = await webhookIntegration();
      const target = { tenantId, integrationId, vendor: 'sandbox' };
      const notify = (webhookId: string, resourceTypes: ChangeNotification['resourceTypes']) =>
        notifyDeltaSync(
          harness.temporal.client,
          harness.config.TEMPORAL_TASK_QUEUE,
          target,
          { webhookId, resourceTypes },
          { debounceSeconds: 2, maxBatchesPerRun: 1 },
        );
      await notify('burst-a', ['Patient']);
      await notify('burst-b', ['Observation']);
      await notify('burst-c', ['Patient']);
      const handle = deltaHandle(tenantId, integrationId);
      const firstRunId = (await handle.describe()).runId;
      await expect
        .poll(async () => (await pendingNotifications(handle)).batches, { timeout: 60_000, interval: 500 })
        .toBe(1);
      expect((await pendingNotifications(handle)).lastBatch).toMatchObject({
        notifications: 3,
        resourceTypes: ['Observation', 'Patient'],
        outcome: 'completed',
      });
      expect((await handle.describe()).runId).not.toBe(firstRunId);

      await notify('burst-a', ['Patient']);
      await notify('burst-d', []);
      await expect
        .poll(async () => (await pendingNotifications(handle)).batches, { timeout: 60_000, interval: 500 })
        .toBe(2);
      expect(await pendingNotifications(handle)).toMatchObject({
        received: 4,
        count: 0,
        lastBatch: { notifications: 1, resourceTypes: 'all', outcome: 'completed' },
      });
    },
  );

  it('leaves the audit chain intact, with webhook events that carry no PHI, resource ids or secrets', async () => {
    expect((await verifyAuditChain(harness.pool)).ok).toBe(true);
    const rows = await harness.pool.query<{ details: unknown }>(
      `SELECT details FROM audit_events WHERE action LIKE 'webhook.%'`,
    );
    expect(rows.rows.length).toBeGreaterThan(5);
    const text = JSON.stringify(rows.rows);
    const { strings } = await sandboxAdmin<{ strings: string[] }>(harness.sandbox, 'GET', '/admin/identifiers');
    for (const s of strings) expect(text).not.toContain(s);
    expect(text).not.toContain('whsec_');
    expect(text).not.toContain(harness.sandbox.fhirBaseUrl);
    expect(text).not.toMatch(/(Patient|Observation)\/[A-Za-z0-9-]+/);
  });
});
