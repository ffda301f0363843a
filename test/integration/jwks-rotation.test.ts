/**
 * In-band rotation of an integration's signing key through our hosted JWKS, while syncs keep
 * running: the sandbox client is registered with our JWKS URL; a successor is published and the
 * sandbox picks it up within its cache time; activation switches the kid our assertions carry;
 * the old key is retired and disappears from the sandbox's view. Short-lived tokens (2 s) make the
 * worker authenticate about once a second throughout, and not one token request is rejected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { SyncReport } from '../../workflows/nightly-sync.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { listSigningKeys, publishedSigningKeys } from '../../lib/keys/signing-key-repository.js';
import { activateSuccessorKey, publishSuccessorKey, retireKey } from '../../lib/keys/signing-key-rotation.js';
import { startJwksServer, type JwksServer } from '../../workers/jwks-server.js';
import { testEnv, uniqueId } from '../harness.js';
import { registerSandboxTenant, sandboxAdmin, testActor, useSyncHarness } from './support.js';

/** The sandbox profile's jwksCacheSeconds: how long the sandbox may keep serving a stale key set. */
const CACHE_MS = 5_000;
/** How long workers keep an integration's row, and so the kid they sign with (EHR_CREDENTIAL_CACHE_SECONDS). */
const ROW_CACHE_SECONDS = 2;
const harness = useSyncHarness({
  sandbox: { size: 300, tokenTtlSeconds: 2 },
  config: { EHR_SYNC_PAGE_SIZE: '10', EHR_CREDENTIAL_CACHE_SECONDS: String(ROW_CACHE_SECONDS) },
});
let jwks: JwksServer;

beforeAll(async () => {
  jwks = await startJwksServer({ published: (id) => publishedSigningKeys(harness.pool, id), listen: '127.0.0.1:0' });
});
afterAll(async () => jwks?.close());

interface ClientView {
  known_kids: string[];
  kids_seen: Record<string, number>;
  jwks_fetches: number;
}

describe('signing key rotation through the hosted JWKS', () => {
  it(
    'publishes, activates and retires a key under sync load with no rejected token request',
    { timeout: 120_000 },
    async () => {
      const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
        resourceTypes: ['Patient'],
        jwksPublicUrl: jwks.url,
      });
      const integrationId = integrationIds[0]!;
      const { clientId, signingKid: oldKid } = await getIntegration(harness.pool, integrationId);
      const view = (): Promise<ClientView> =>
        sandboxAdmin<ClientView>(harness.sandbox, 'GET', `/admin/clients/${clientId}`);
      await sandboxAdmin(harness.sandbox, 'POST', '/admin/stats/reset');

      // Full syncs back to back for the whole rotation.
      let stop = false;
      const reports: SyncReport[] = [];
      const load = (async () => {
        while (!stop) {
          const handle = await startSync(
            harness.temporal.client,
            harness.config.TEMPORAL_TASK_QUEUE,
            { tenantId, integrationId, vendor: 'sandbox' },
            {
              full: true,
              workflowId: uniqueId('sync-rotation'),
            },
          );
          reports.push(await syncResult(handle));
        }
      })();
      try {
        await expect
          .poll(async () => (await view()).kids_seen[oldKid!] ?? 0, { timeout: 30_000, interval: 200 })
          .toBeGreaterThanOrEqual(1);
        expect((await view()).known_kids).toEqual([oldKid]); // learnt from our JWKS URL, not registered inline

        // 1. Publish the successor: the sandbox sees it once its cached copy expires.
        const successor = await publishSuccessorKey(harness.pool, integrationId, testActor, {
          secretsDir: testEnv().secretsDir,
        });
        expect(
          await publishSuccessorKey(harness.pool, integrationId, testActor, { secretsDir: testEnv().secretsDir }),
        ).toMatchObject({ kid: successor.kid });
        await expect
          .poll(async () => (await view()).known_kids.sort(), { timeout: CACHE_MS + 3_000, interval: 200 })
          .toEqual([oldKid, successor.kid].sort());

        // 2. Activate: assertions now carry the new kid (workers' cached rows turn over within ROW_CACHE_SECONDS).
        expect((await activateSuccessorKey(harness.pool, integrationId, testActor)).changed).toBe(true);
        expect(
          (await activateSuccessorKey(harness.pool, integrationId, testActor, { expectedKid: successor.kid })).changed,
        ).toBe(false);
        expect((await getIntegration(harness.pool, integrationId)).signingKid).toBe(successor.kid);
        await expect
          .poll(async () => (await view()).kids_seen[successor.kid] ?? 0, { timeout: 30_000, interval: 250 })
          .toBeGreaterThanOrEqual(1);
        const oldUses = (await view()).kids_seen[oldKid!];
        await expect
          .poll(async () => (await view()).kids_seen[successor.kid] ?? 0, { timeout: 10_000, interval: 250 })
          .toBeGreaterThanOrEqual(3);
        expect((await view()).kids_seen[oldKid!]).toBe(oldUses); // nobody signs with the old key any more

        // 3. Retire the old key: our JWKS drops it, and so does the sandbox at its next refetch.
        await expect(retireKey(harness.pool, integrationId, successor.kid, testActor)).rejects.toThrow(/current key/);
        expect((await retireKey(harness.pool, integrationId, oldKid!, testActor)).changed).toBe(true);
        expect((await retireKey(harness.pool, integrationId, oldKid!, testActor)).changed).toBe(false);
        const served = (await (await fetch(`${jwks.url}/jwks/${integrationId}.json`)).json()) as {
          keys: Array<{ kid: string }>;
        };
        expect(served.keys.map((k) => k.kid)).toEqual([successor.kid]);
        await expect
          .poll(async () => (await view()).known_kids, { timeout: CACHE_MS + 3_000, interval: 200 })
          .toEqual([successor.kid]);
        const beforeStop = reports.length;
        // a sync completes after retirement
        await expect.poll(() => reports.length, { timeout: 30_000, interval: 200 }).toBeGreaterThan(beforeStop);
      } finally {
        stop = true;
        await load;
      }
      expect(reports.length).toBeGreaterThanOrEqual(1);
      for (const r of reports) expect(r.outcome).toBe('completed');
      const stats = await sandboxAdmin<{ tokenRequests: number; tokenRequestsRejected: number }>(
        harness.sandbox,
        'GET',
        '/admin/stats',
      );
      expect(stats.tokenRequests).toBeGreaterThan(5);
      expect(stats.tokenRequestsRejected).toBe(0);

      const states = Object.fromEntries(
        (await listSigningKeys(harness.pool, integrationId)).map((k) => [k.kid, k.state]),
      );
      expect(states[oldKid!]).toBe('retired');
      const audit = await harness.pool.query<{ action: string }>(
        `SELECT action FROM audit_events WHERE integration_id = $1 AND action LIKE 'signing_key.%' ORDER BY seq`,
        [integrationId],
      );
      expect(audit.rows.map((r) => r.action)).toEqual([
        'signing_key.published',
        'signing_key.activated',
        'signing_key.retired',
      ]);
    },
  );
});
