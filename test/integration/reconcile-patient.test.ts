/**
 * Reconciliation of an integration that reads patient by patient (MEDITECH's profile: no system-wide search of
 * clinical types, which its sandbox personality refuses with 400): the run builds the sync's roster from the
 * practice's Group, lists each type per rostered patient, reads by id what those searches did not list, and finds
 * exactly the planted differences (vendor modifications and a deletion decided by authority, a vendor change of an
 * organisation-owned element queued as one write-back) without one refused request; a second run is in sync except
 * what is pending, and neither history holds a patient id or a planted value.
 */
import { describe, expect, it } from 'vitest';
import { startReconcile } from '../../client/reconcile-client.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { ResourceType } from '../../lib/domain.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { reconcileReport } from '../../lib/reconcile/report.js';
import { createTenant } from '../../lib/store/tenants.js';
import { createTestClient } from '../../sandbox/test-client.js';
import { testEnv, uniqueId } from '../harness.js';
import { activityFaults } from '../activity-faults.js';
import { decodedHistoryText, holdWrites } from './reconcile-support.js';
import { sandboxAdmin, sandboxManifest, storedVersions, testActor, useSyncHarness } from './support.js';

// 15 patients; pages of 4, so a patient's Observations span several pages (several ledger batches each).
const harness = useSyncHarness({
  sandbox: { personality: 'meditech', size: 150, rateLimit: null },
  config: { EHR_SYNC_PAGE_SIZE: '4' },
});
const TYPES: ResourceType[] = ['Patient', 'Observation', 'Appointment'];

const nonZero = (counts: Record<string, Record<string, number>>, type: string) =>
  Object.fromEntries(Object.entries(counts[type] ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0));

describe('reconcile over the patient strategy', () => {
  it('lists per rostered patient, refuses nothing, and finds exactly the planted differences', async () => {
    const { sandbox, pool } = harness;
    const reads = (
      await sandboxAdmin<{ reads: { groupId: string; systemSearch: string } }>(sandbox, 'GET', '/admin/read-paths')
    ).reads;
    // The old path (a system-wide search per type) is refused by this vendor.
    expect(reads.systemSearch).toBe('patient-only');
    const probe = await createTestClient(sandbox, { scopes: ['system/*.rs'] });
    const refused = await fetch(`${sandbox.fhirBaseUrl}/Observation?_count=10`, {
      headers: { authorization: `Bearer ${await probe.token()}` },
    });
    expect(refused.status).toBe(400);

    const tenantId = uniqueId('t');
    await createTenant(pool, { id: tenantId, name: 'Synthetic Reconcile Clinic' }, testActor);
    const integrationId = uniqueId('i');
    const integration = await registerIntegration(
      pool,
      {
        id: integrationId,
        tenantId,
        vendor: 'meditech',
        baseUrl: sandbox.fhirBaseUrl,
        // Practitioner is in no patient's compartment: never listed under this strategy (a search would be refused).
        resourceTypes: [...TYPES, 'Practitioner'],
        secretsDir: testEnv().secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        read: { groupId: reads.groupId },
      },
      testActor,
    );
    expect(integration.readStrategy ?? 'patient').toBe('patient');
    const target = { tenantId, integrationId };
    // Vendor writes held: the write-back reconciliation queues stays pending for the second run to see.
    await holdWrites(integrationId);
    const synced = await syncResult(
      await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { ...target, vendor: 'meditech' }),
    );
    expect(synced.outcome).toBe('completed');
    const stored = async (type: ResourceType) => [
      ...(await storedVersions(pool, tenantId, integrationId, type)).keys(),
    ];
    const obs = (await stored('Observation')).sort();
    const appts = (await stored('Appointment')).sort();
    const patients = await stored('Patient');
    expect(patients.length).toBeGreaterThan(5);
    expect(obs.length).toBeGreaterThan(patients.length);
    expect(appts.length).toBeGreaterThan(1);

    const run = async () => {
      const from = sandbox.ledger().length;
      const handle = await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, target, {
        historyEventLimit: 25,
      });
      const report = await handle.result();
      // Continued as new on the way (roster position and counts carried), as the other phases do.
      const firstRun = harness.temporal.client.workflow.getHandle(report.runId, handle.firstExecutionRunId);
      const events = (await firstRun.fetchHistory()).events ?? [];
      expect(events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
      return { report, requests: sandbox.ledger().slice(from) };
    };

    // Run 1: straight after the sync, every record in sync; the vendor refused nothing.
    const first = await run();
    expect(first.requests.filter((e) => (e.status ?? 0) >= 400)).toEqual([]);
    for (const type of TYPES) expect(nonZero(first.report.counts, type), type).toEqual({});
    expect(first.report.counts.Observation?.['in-sync']).toBe(obs.length);
    expect(first.report.counts.Appointment?.['in-sync']).toBe(appts.length);
    expect(first.report.counts.Patient?.['in-sync']).toBe(patients.length);
    expect(first.requests.filter((e) => e.resource === 'Practitioner')).toEqual([]);
    expect(Object.keys(first.report.counts).sort()).toEqual(['Appointment', 'Observation', 'Patient', 'Practitioner']);
    // Listed, not read one by one: nothing was unlisted.
    expect(first.report.decisions.unlistedFound).toBe(0);
    // Observations were searched patient by patient: at least one request per rostered patient.
    const obsRequests = first.requests.filter((e) => e.resource === 'Observation').length;
    expect(obsRequests).toBeGreaterThanOrEqual(patients.length);

    // Plant: two Observations modified and one deleted at the vendor; an Appointment's status (owned by the
    // organisation) changed at the vendor.
    const modified = await sandboxAdmin<{ modified: Array<{ id: string; versionId: string }> }>(
      sandbox,
      'POST',
      '/admin/records/modify',
      { resourceType: 'Observation', ids: [obs[0], obs[1]] },
    );
    await sandboxAdmin(sandbox, 'POST', '/admin/records/delete', { resourceType: 'Observation', ids: [obs[2]] });
    await sandboxAdmin(sandbox, 'POST', '/admin/records/modify', { resourceType: 'Appointment', ids: [appts[0]] });

    // Run 2, with one range's reply lost after it committed: the retry counts nothing twice.
    activityFaults.loseReplyOnce.add('reconcilePatients');
    const second = await run();
    expect(activityFaults.loseReplyOnce.size).toBe(0);
    // Nothing refused: the one answer ≥ 400 is the deleted Observation's read by id (410 Gone).
    expect(second.requests.filter((e) => (e.status ?? 0) >= 400).map((e) => [e.resource, e.status])).toEqual([
      ['Observation', 410],
    ]);
    expect(nonZero(second.report.counts, 'Observation')).toEqual({ diverged: 2, 'deleted-remote': 1 });
    expect(nonZero(second.report.counts, 'Appointment')).toEqual({ diverged: 1 });
    expect(nonZero(second.report.counts, 'Patient')).toEqual({});
    expect(second.report.counts.Observation?.['in-sync']).toBe(obs.length - 3);
    expect(second.report.decisions).toMatchObject({
      localUpdated: 2,
      tombstoned: 1,
      writeBacksQueued: 1,
      conflictsOpened: 0,
      unlistedFound: 0,
    });
    // The vendor's versions are stored; the deleted one is gone.
    const live = (await sandboxManifest(sandbox, 'Observation')).filter((m) => !('deleted' in m));
    expect(await storedVersions(pool, tenantId, integrationId, 'Observation')).toEqual(
      new Map(live.map((m) => [m.id, m.versionId])),
    );
    for (const m of modified.modified)
      expect((await storedVersions(pool, tenantId, integrationId, 'Observation')).get(m.id)).toBe(m.versionId);
    const changes = await pool.query<{ resource_type: string; resource_id: string; status: string }>(
      `SELECT resource_type, resource_id, status FROM outbox_changes WHERE integration_id = $1 AND origin = 'reconcile'`,
      [integrationId],
    );
    expect(changes.rows).toEqual([{ resource_type: 'Appointment', resource_id: appts[0], status: 'pending' }]);
    const report = await reconcileReport(pool, second.report.runId);
    expect(report.readStrategy).toBe('patient');

    // Run 3: in sync except what is pending (the queued write-back).
    const third = await run();
    expect(nonZero(third.report.counts, 'Observation')).toEqual({});
    expect(nonZero(third.report.counts, 'Appointment')).toEqual({ pending: 1 });
    expect(third.report.decisions).toMatchObject({ writeBacksQueued: 0, localUpdated: 0, tombstoned: 0 });

    // The roster stayed in the database and is gone; no history names a patient.
    const left = await pool.query('SELECT 1 FROM sync_rosters WHERE tenant_id = $1', [tenantId]);
    expect(left.rowCount).toBe(0);
    for (const r of [first, second, third]) {
      const text = await decodedHistoryText(harness.temporal.client, r.report.runId);
      for (const id of patients) expect(text.includes(`"${id}"`) || text.includes(`patient=${id}`)).toBe(false);
    }
  }, 240_000);
});
