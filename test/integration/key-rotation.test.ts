/**
 * Key rotation as durable workflows (issue 5 items 1–3): every kind of key rotates while syncs run
 * against the sandbox, and not one sync fails; every stored record decrypts afterwards; once the KEK
 * floor is raised, a key wrapped under the old version is refused; a fault injected mid-rotation rolls
 * back to a consistent state (old key primary again, nothing unreadable) and the result says so.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activityFaults } from '../activity-faults.js';
import { keyRotationResult, startKeyRotation } from '../../client/commands/keys.js';
import { keyStatus } from '../../lib/keys/key-status-repository.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import { isResourceType } from '../../lib/domain.js';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring, dataKeyWrapAad } from '../../lib/keys/keyring.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { listSigningKeys, publishedSigningKeys } from '../../lib/keys/signing-key-repository.js';
import { addWebhookSecret, acceptedWebhookSecrets, listWebhookSecrets } from '../../lib/webhooks/secrets.js';
import { signWebhook, verifyWebhook } from '../../lib/webhooks/verify.js';
import { startJwksServer, type JwksServer } from '../../workers/jwks-server.js';
import type { SyncReport } from '../../workflows/nightly-sync.js';
import type { KeyRotationInput, KeyRotationResult } from '../../workflows/key-rotation-api.js';
import { testEnv, uniqueId } from '../harness.js';
import { registerSandboxTenant, sandboxAdmin, testActor, useSyncHarness } from './support.js';

const CREDENTIAL_CACHE = 1;
/**
 * The max-age our JWKS announces (and so how long the sandbox, like a vendor, caches it), and the JWKS cache the
 * signing-key rotations wait out: 1 s instead of the sandbox profile's 5, so each wait is seconds shorter. Both
 * move together: the rotation still waits out the cache the vendor actually has.
 */
const JWKS_MAX_AGE = 1;
const harness = useSyncHarness({
  sandbox: { seed: 41, size: 200, tokenTtlSeconds: 2 },
  // Workers keep integration rows (and the current kid) 1 s instead of 15: a signing-key rotation waits that
  // cache out (plus the vendor's JWKS cache, JWKS_MAX_AGE here) before it retires a key.
  config: { EHR_SYNC_PAGE_SIZE: '20', EHR_CREDENTIAL_CACHE_SECONDS: String(CREDENTIAL_CACHE) },
});
const TYPES = ['Patient', 'Observation'];
let jwks: JwksServer;

beforeAll(async () => {
  jwks = await startJwksServer({
    published: (id) => publishedSigningKeys(harness.pool, id),
    listen: '127.0.0.1:0',
    maxAgeSeconds: JWKS_MAX_AGE,
  });
});
afterAll(async () => {
  activityFaults.failOnce.clear();
  await jwks?.close();
});

/**
 * Full syncs back to back while `fn` runs: `fn` starts once the first sync has started, at least one
 * sync must overlap it, and every sync must complete (zero failed reads or writes).
 */
async function underSyncLoad<T>(
  tenantId: string,
  integrationId: string,
  fn: () => Promise<T>,
): Promise<{ value: T; reports: SyncReport[] }> {
  let stop = false;
  const reports: SyncReport[] = [];
  const intervals: Array<{ start: number; end: number }> = [];
  const failures: unknown[] = [];
  let started!: () => void;
  const firstStarted = new Promise<void>((resolve) => (started = resolve));
  const load = (async () => {
    while (!stop) {
      const start = Date.now();
      const handle = await startSync(
        harness.temporal.client,
        harness.config.TEMPORAL_TASK_QUEUE,
        { tenantId, integrationId, vendor: 'sandbox' },
        {
          full: true,
          workflowId: uniqueId('sync-keys'),
        },
      );
      started();
      reports.push(await syncResult(handle));
      intervals.push({ start, end: Date.now() });
    }
  })().catch((err: unknown) => {
    failures.push(err);
    started();
  });
  let value: T;
  let window: { start: number; end: number };
  try {
    await firstStarted;
    const start = Date.now();
    value = await fn();
    window = { start, end: Date.now() };
  } finally {
    stop = true;
    await load;
  }
  expect(failures).toEqual([]);
  expect(intervals.some((i) => i.start <= window.end && i.end >= window.start)).toBe(true);
  for (const r of reports) expect(r.outcome).toBe('completed');
  return { value, reports };
}

/** Decrypts every stored record of the tenant with a fresh keyring (no cached keys); returns the count. */
async function decryptAll(tenantId: string): Promise<number> {
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  const rows = await harness.pool.query<{
    integration_id: string;
    resource_type: string;
    resource_id: string;
    ciphertext: Buffer;
  }>('SELECT integration_id, resource_type, resource_id, ciphertext FROM records WHERE tenant_id = $1', [tenantId]);
  for (const r of rows.rows) {
    if (!isResourceType(r.resource_type)) throw new Error('unexpected resource type');
    await decryptRecord(
      r.ciphertext,
      { tenantId, integrationId: r.integration_id, resourceType: r.resource_type, resourceId: r.resource_id },
      keyring.lookup,
    );
  }
  return rows.rows.length;
}

async function rotate(input: Omit<KeyRotationInput, 'requestedBy' | 'reason'>): Promise<KeyRotationResult> {
  const handle = await startKeyRotation(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
    requestedBy: 'test:key-rotation',
    reason: 'integration test',
    ...input,
  });
  return keyRotationResult(handle);
}

async function syncedTenant(): Promise<{ tenantId: string; integrationId: string; stored: number }> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: TYPES,
  });
  const integrationId = integrationIds[0]!;
  const report = await syncResult(
    await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId,
      vendor: 'sandbox',
    }),
  );
  return { tenantId, integrationId, stored: report.totals.inserted };
}

async function jwksIntegration(): Promise<{
  tenantId: string;
  integrationId: string;
  clientId: string;
  oldKid: string;
}> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: ['Patient'],
    jwksPublicUrl: jwks.url,
  });
  const integrationId = integrationIds[0]!;
  const { clientId, signingKid } = await getIntegration(harness.pool, integrationId);
  return { tenantId, integrationId, clientId: clientId!, oldKid: signingKid! };
}

const stepsOf = (r: KeyRotationResult): string[] => r.steps.map((s) => s.step);

/** Every pseudonym the tenant's `records.stored` audit events name (optionally of one sync workflow). */
async function auditedPseudonyms(tenantId: string, workflowId?: string): Promise<Set<string>> {
  const { rows } = await harness.pool.query<{ p: string }>(
    `SELECT DISTINCT jsonb_array_elements_text(details->'patients') AS p FROM audit_events
      WHERE action = 'records.stored' AND tenant_id = $1 AND ($2::text IS NULL OR actor = $2)`,
    [tenantId, workflowId === undefined ? null : `workflow:${workflowId}`],
  );
  return new Set(rows.map((r) => r.p));
}

/** The tenant's pseudonym key row (null before first use). */
async function pseudonymKeyRow(tenantId: string): Promise<{ kek_version: number; status: string } | null> {
  const { rows } = await harness.pool.query<{ kek_version: number; status: string }>(
    `SELECT kek_version, status FROM tenant_purpose_keys WHERE tenant_id = $1 AND purpose = 'pseudonym'`,
    [tenantId],
  );
  return rows[0] ?? null;
}

/** Each stored Patient's pseudonym recomputed by a fresh keyring (new process, no cache) must equal the stored one. */
async function expectPatientPseudonymsReproduce(tenantId: string): Promise<number> {
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  const { rows } = await harness.pool.query<{ resource_id: string; patient_pseudonym: string }>(
    `SELECT resource_id, patient_pseudonym FROM records WHERE tenant_id = $1
        AND resource_type = 'Patient' ORDER BY resource_id LIMIT 10`,
    [tenantId],
  );
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect(await keyring.pseudonymise(tenantId, r.resource_id)).toBe(r.patient_pseudonym);
  return rows.length;
}

async function kekState(): Promise<{ primary: number; floor: number; states: Map<number, string> }> {
  const status = await keyStatus(harness.pool);
  const versions = status.kek.filter((k) => k.kekId === 'local');
  return {
    primary: versions.find((v) => v.state === 'primary')!.version,
    floor: versions[0]!.floor,
    states: new Map(versions.map((v) => [v.version, v.state])),
  };
}

describe('key rotation workflows under sync load', () => {
  it(
    'KEK: rewraps, verifies, raises the floor after the grace period; old-version wraps are refused',
    { timeout: 180_000 },
    async () => {
      const { tenantId, integrationId, stored } = await syncedTenant();
      const before = await kekState();
      const oldWrap = (
        await harness.pool.query<{ key_version: number; kek_version: number; wrapped_key: Buffer }>(
          'SELECT key_version, kek_version, wrapped_key FROM data_keys WHERE tenant_id = $1',
          [tenantId],
        )
      ).rows[0]!;
      expect(oldWrap.kek_version).toBe(before.primary);
      // The sync stored the tenant's pseudonym key, wrapped under the same KEK version.
      expect(await pseudonymKeyRow(tenantId)).toEqual({ kek_version: before.primary, status: 'active' });

      const { value: result } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'kek', graceSeconds: 2, batchSize: 5 }),
      );
      expect(result.outcome).toBe('completed');
      expect(stepsOf(result)).toEqual(
        expect.arrayContaining([
          'new KEK version is primary',
          'keys rewrapped',
          'sample unwraps verified',
          'grace period over',
          'decryption floor raised',
          'old version retired',
          'completed',
        ]),
      );

      const after = await kekState();
      expect(after.primary).toBe(before.primary + 1);
      expect(after.floor).toBe(after.primary);
      expect(after.states.get(before.primary)).toBe('destroy_scheduled');
      expect(await decryptAll(tenantId)).toBeGreaterThanOrEqual(stored);
      // The pseudonym key was rewrapped too (the floor could not have risen otherwise), and still keys the
      // same pseudonyms.
      expect(await pseudonymKeyRow(tenantId)).toEqual({ kek_version: after.primary, status: 'active' });
      expect((await keyStatus(harness.pool)).tenantKeys.find((t) => t.tenantId === tenantId)?.pseudonymKey).toBe(
        `local v${after.primary}`,
      );
      await expectPatientPseudonymsReproduce(tenantId);
      // A copy of the DEK as it was wrapped before the rotation (a backup, an old row version) is refused.
      const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
      await expect(
        kek.unwrap(
          { kekId: kek.id, kekVersion: oldWrap.kek_version, wrapped: oldWrap.wrapped_key },
          dataKeyWrapAad(tenantId, oldWrap.key_version, kek.id, oldWrap.kek_version),
        ),
      ).rejects.toThrow(/below the decryption floor/);
      const audited = await harness.pool.query<{ action: string }>(
        `SELECT DISTINCT action FROM audit_events
            WHERE correlation_id LIKE 'key-rotation/kek/global/%' AND actor = 'test:key-rotation'`,
      );
      expect(audited.rows.map((r) => r.action)).toEqual(
        expect.arrayContaining([
          'key.rotation.started',
          'key.kek.rotated',
          'key.dek.rewrapped',
          'key.pseudonym.rewrapped',
          'key.kek.verified',
          'key.kek.floor_raised',
          'key.kek.destroy_scheduled',
          'key.rotation.completed',
        ]),
      );
    },
  );

  it(
    'KEK: a fault after the rewrap rolls back to the previous primary, and every key stays readable',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationId, stored } = await syncedTenant();
      const before = await kekState();
      activityFaults.failOnce.add('verifyKekSample');
      const { value: result } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'kek', graceSeconds: 1, batchSize: 50 }),
      );
      expect(result.outcome).toBe('rolled-back');
      const failed = result.steps.find((s) => s.step === 'failed');
      expect(failed?.detail).toMatchObject({ errorCode: 'TEST_INJECTED_FAULT', activity: 'verifyKekSample' });
      expect(result.steps.find((s) => s.step === 'rolled back')?.detail).toMatchObject({
        primary: before.primary,
        active: before.primary + 1,
        dualRead: true,
      });
      const after = await kekState();
      expect(after.primary).toBe(before.primary);
      expect(after.floor).toBe(before.floor);
      expect(after.states.get(before.primary + 1)).toBe('active'); // keys rewrapped under it stay readable
      expect(await decryptAll(tenantId)).toBeGreaterThanOrEqual(stored);
      // Writes continue under the restored primary.
      const again = await syncResult(
        await startSync(
          harness.temporal.client,
          harness.config.TEMPORAL_TASK_QUEUE,
          { tenantId, integrationId, vendor: 'sandbox' },
          { full: true, workflowId: uniqueId('sync-keys') },
        ),
      );
      expect(again.outcome).toBe('completed');
    },
  );

  it(
    'tenant DEK: re-encrypts every record under the new key, then destroys the old one — v1 too; pseudonyms unchanged',
    { timeout: 240_000 },
    async () => {
      const { tenantId, integrationId, stored } = await syncedTenant();
      const pseudonymsBefore = await auditedPseudonyms(tenantId);
      expect(pseudonymsBefore.size).toBeGreaterThan(0);
      const { value: first } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'tenant-dek', tenantId, graceSeconds: 2, batchSize: 25 }),
      );
      expect(first.outcome).toBe('completed');
      expect(stepsOf(first)).toEqual(
        expect.arrayContaining([
          'new DEK is primary for writes',
          'records re-encrypted',
          'verified: no record left under an older key',
          'old DEK retired',
        ]),
      );
      // DEK v1 is destroyed like any superseded version: the pseudonyms have their own stored key.
      expect(first.steps.find((s) => s.step === 'old DEK retired')?.detail).toMatchObject({
        keyVersion: 1,
        destroyed: true,
      });
      const versions = await harness.pool.query<{ key_version: number; n: string }>(
        'SELECT key_version, count(*) AS n FROM records WHERE tenant_id = $1 GROUP BY 1',
        [tenantId],
      );
      expect(versions.rows.map((r) => r.key_version)).toEqual([2]);
      expect(await decryptAll(tenantId)).toBeGreaterThanOrEqual(stored);

      // A second rotation destroys the superseded v2 once nothing is stored under it.
      const { value: second } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'tenant-dek', tenantId, graceSeconds: 1, batchSize: 100 }),
      );
      expect(second.outcome).toBe('completed');
      const keys = await harness.pool.query<{ key_version: number; status: string; wrapped: boolean }>(
        `SELECT key_version, status, wrapped_key IS NOT NULL AS wrapped FROM data_keys
            WHERE tenant_id = $1 ORDER BY key_version`,
        [tenantId],
      );
      expect(keys.rows).toEqual([
        { key_version: 1, status: 'destroyed', wrapped: false },
        { key_version: 2, status: 'destroyed', wrapped: false },
        { key_version: 3, status: 'primary', wrapped: true },
      ]);
      expect(await decryptAll(tenantId)).toBeGreaterThanOrEqual(stored);

      // A new full sync of the same patients, DEK v1 gone: the very pseudonyms of before, in records and in
      // the audit trail.
      const after = await startSync(
        harness.temporal.client,
        harness.config.TEMPORAL_TASK_QUEUE,
        { tenantId, integrationId, vendor: 'sandbox' },
        { full: true, workflowId: uniqueId('sync-keys') },
      );
      expect((await syncResult(after)).outcome).toBe('completed');
      const pseudonymsAfter = await auditedPseudonyms(tenantId, after.workflowId);
      expect(pseudonymsAfter.size).toBeGreaterThan(0);
      for (const p of pseudonymsAfter) expect(pseudonymsBefore.has(p), 'a pseudonym changed').toBe(true);
      const inRecords = await harness.pool.query<{ p: string }>(
        'SELECT DISTINCT patient_pseudonym AS p FROM records WHERE tenant_id = $1 AND patient_pseudonym IS NOT NULL',
        [tenantId],
      );
      for (const r of inRecords.rows) expect(pseudonymsBefore.has(r.p)).toBe(true);
      await expectPatientPseudonymsReproduce(tenantId);
      expect((await keyStatus(harness.pool)).tenantKeys.find((t) => t.tenantId === tenantId)).toMatchObject({
        primary: 3,
        decryptOnly: [],
        destroyed: [1, 2],
      });
    },
  );

  it(
    'tenant DEK: a fault before the old key is destroyed puts writes back on the old key, all records readable',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationId, stored } = await syncedTenant();
      activityFaults.failOnce.add('retireTenantDek');
      const { value: result } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'tenant-dek', tenantId, graceSeconds: 1, batchSize: 50 }),
      );
      expect(result.outcome).toBe('rolled-back');
      expect(result.steps.find((s) => s.step === 'rolled back')?.detail).toMatchObject({
        changed: true,
        primary: 1,
        decryptOnly: 2,
      });
      const keys = await harness.pool.query<{ key_version: number; status: string }>(
        'SELECT key_version, status FROM data_keys WHERE tenant_id = $1 ORDER BY key_version',
        [tenantId],
      );
      expect(keys.rows).toEqual([
        { key_version: 1, status: 'primary' },
        { key_version: 2, status: 'decrypt_only' },
      ]);
      expect(await decryptAll(tenantId)).toBeGreaterThanOrEqual(stored);
    },
  );

  it(
    'tenant DEK: a step retried after it committed (reply lost) does not create a second key version',
    { timeout: 120_000 },
    async () => {
      const { tenantId, stored } = await syncedTenant();
      activityFaults.loseReplyOnce.add('rotateTenantDek');
      const result = await rotate({ kind: 'tenant-dek', tenantId, graceSeconds: 1, batchSize: 100 });
      expect(activityFaults.loseReplyOnce.has('rotateTenantDek')).toBe(false); // the fault fired
      expect(result.outcome).toBe('completed');
      expect(result.steps.find((s) => s.step === 'new DEK is primary for writes')?.detail).toEqual({
        keyVersion: 2,
        previous: 1,
      });
      const keys = await harness.pool.query<{ key_version: number; status: string }>(
        'SELECT key_version, status FROM data_keys WHERE tenant_id = $1 ORDER BY key_version',
        [tenantId],
      );
      expect(keys.rows).toEqual([
        { key_version: 1, status: 'destroyed' },
        { key_version: 2, status: 'primary' },
      ]);
      expect(await decryptAll(tenantId)).toBe(stored);
    },
  );

  it(
    'webhook secret: a fault before the old secret is retired makes it current again',
    { timeout: 60_000 },
    async () => {
      const { integrationId } = await syncedTenant();
      await addWebhookSecret(harness.pool, integrationId, testActor, { secretsDir: testEnv().secretsDir });
      activityFaults.failOnce.add('retireWebhookSecretVersion');
      const result = await rotate({ kind: 'webhook-secret', integrationId, graceSeconds: 1 });
      expect(result.outcome).toBe('rolled-back');
      expect(result.steps.find((s) => s.step === 'rolled back')?.detail).toEqual({ restoredVersion: 1 });
      expect((await listWebhookSecrets(harness.pool, integrationId)).map((s) => s.state)).toEqual([
        'current',
        'retired',
      ]);
    },
  );

  it(
    'signing key: successor published, kid switched after the JWKS cache, old key retired; no token request refused',
    { timeout: 180_000 },
    async () => {
      const { tenantId, integrationId, clientId, oldKid } = await jwksIntegration();
      const { value: result } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'signing-key', integrationId, vendorJwksCacheSeconds: JWKS_MAX_AGE }),
      );
      expect(result.outcome).toBe('completed');
      const newKid = result.steps.find((s) => s.step === 'successor published in the JWKS')?.detail?.['kid'] as string;
      expect((await getIntegration(harness.pool, integrationId)).signingKid).toBe(newKid);
      const states = Object.fromEntries(
        (await listSigningKeys(harness.pool, integrationId)).map((k) => [k.kid, k.state]),
      );
      expect(states).toEqual({ [oldKid]: 'retired', [newKid]: 'current' });
      // The old key was retired once the workers' row cache (EHR_CREDENTIAL_CACHE_SECONDS, 1 s here) and the
      // vendor's JWKS cache (1 s here) had turned over after the switch: the configured wait, not the 15 s default.
      const at = (step: string): number => Date.parse(result.steps.find((s) => s.step === step)!.at);
      const waited = at('old key retired') - at('assertions signed with the new kid');
      expect(waited).toBeGreaterThanOrEqual((CREDENTIAL_CACHE + JWKS_MAX_AGE) * 1000);
      expect(waited).toBeLessThan((15 + JWKS_MAX_AGE) * 1000);
      const client = await sandboxAdmin<{ kids_seen: Record<string, number>; token_requests_rejected?: number }>(
        harness.sandbox,
        'GET',
        `/admin/clients/${clientId}`,
      );
      expect(client.kids_seen[newKid] ?? 0).toBeGreaterThanOrEqual(1);
      const stats = await sandboxAdmin<{ tokenRequestsRejected: number }>(harness.sandbox, 'GET', '/admin/stats');
      expect(stats.tokenRequestsRejected).toBe(0);
    },
  );

  it(
    'signing key: a fault before the old key is retired makes it sign again; ' +
      'the new one is retired after the caches turn over',
    { timeout: 180_000 },
    async () => {
      const { tenantId, integrationId, oldKid } = await jwksIntegration();
      await sandboxAdmin(harness.sandbox, 'POST', '/admin/stats/reset');
      activityFaults.failOnce.add('retireSigningKey');
      const { value: result } = await underSyncLoad(tenantId, integrationId, () =>
        rotate({ kind: 'signing-key', integrationId, vendorJwksCacheSeconds: JWKS_MAX_AGE }),
      );
      expect(result.outcome).toBe('rolled-back');
      const newKid = result.steps.find((s) => s.step === 'successor published in the JWKS')?.detail?.['kid'] as string;
      expect(result.steps.find((s) => s.step === 'rolled back')?.detail).toMatchObject({
        changed: true,
        currentKid: oldKid,
        retiredKid: newKid,
      });
      expect((await getIntegration(harness.pool, integrationId)).signingKid).toBe(oldKid);
      const states = Object.fromEntries(
        (await listSigningKeys(harness.pool, integrationId)).map((k) => [k.kid, k.state]),
      );
      expect(states).toEqual({ [oldKid]: 'current', [newKid]: 'retired' });
      const stats = await sandboxAdmin<{ tokenRequestsRejected: number }>(harness.sandbox, 'GET', '/admin/stats');
      expect(stats.tokenRequestsRejected).toBe(0);
    },
  );

  it(
    'webhook secret: both secrets accepted during the window, the old one refused afterwards',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationId } = await syncedTenant();
      await addWebhookSecret(harness.pool, integrationId, testActor, { secretsDir: testEnv().secretsDir });
      const [oldSecret] = await acceptedWebhookSecrets(harness.pool, integrationId);
      const body = JSON.stringify({ type: 'synthetic.event', id: randomUUID() });
      const now = Math.floor(Date.now() / 1000);
      const headers = {
        'webhook-id': 'msg_synthetic',
        'webhook-timestamp': String(now),
        'webhook-signature': signWebhook(oldSecret!, 'msg_synthetic', now, body),
      };
      let sawWindow = false;
      const { value: result } = await underSyncLoad(tenantId, integrationId, async () => {
        const handle = await startKeyRotation(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
          kind: 'webhook-secret',
          integrationId,
          requestedBy: 'test:key-rotation',
          reason: 'integration test',
          graceSeconds: 4,
        });
        await expect
          .poll(async () => (await acceptedWebhookSecrets(harness.pool, integrationId)).length, {
            timeout: 10_000,
            interval: 100,
          })
          .toBe(2);
        sawWindow = verifyWebhook(headers, body, await acceptedWebhookSecrets(harness.pool, integrationId), {
          nowSeconds: now,
        }).ok;
        // The status query shows the steps so far while the window is open.
        const soFar = await handle.query<Array<{ step: string }>>('status');
        expect(soFar.map((s) => s.step)).toEqual(['started', 'new secret is current; both accepted']);
        return keyRotationResult(handle);
      });
      expect(result.outcome).toBe('completed');
      expect(sawWindow).toBe(true);
      expect(
        verifyWebhook(headers, body, await acceptedWebhookSecrets(harness.pool, integrationId), { nowSeconds: now }),
      ).toEqual({ ok: false, reason: 'no-matching-signature' });
      expect((await listWebhookSecrets(harness.pool, integrationId)).map((s) => s.state)).toEqual([
        'retired',
        'current',
      ]);
    },
  );

  it(
    'payload key: new payloads use the new key, histories written before still decode',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationId } = await syncedTenant();
      const earlier = await startSync(
        harness.temporal.client,
        harness.config.TEMPORAL_TASK_QUEUE,
        { tenantId, integrationId, vendor: 'sandbox' },
        { full: true, workflowId: uniqueId('sync-keys') },
      );
      const earlierReport = await syncResult(earlier);
      const { value: result } = await underSyncLoad(tenantId, integrationId, () => rotate({ kind: 'payload-key' }));
      expect(result.outcome).toBe('completed');
      const keyId = result.steps.find((s) => s.step.startsWith('new payload key'))?.detail?.['keyId'];
      const primary = await harness.pool.query<{ key_id: string }>(
        `SELECT key_id FROM purpose_keys WHERE purpose = 'payload' AND status = 'primary'`,
      );
      expect(primary.rows[0]?.key_id).toBe(keyId);
      expect(await harness.temporal.client.workflow.getHandle(earlier.workflowId).result()).toEqual(earlierReport);
    },
  );
});
