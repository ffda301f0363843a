/**
 * Reconciliation over a data set with every class planted (sandbox admin modify/delete/create, local versions
 * stored and queued as the gateway does): the run finds exactly the planted differences, the authority policy
 * decides what it owns (remote drift updates the local copy, local drift queues one write-back, shared drift on
 * both sides opens a conflict and starts its workflow), a further run is in sync except what is still pending, the
 * report's counts match, and the run's history holds no planted value and no digest.
 */
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { reconcileProgress, startReconcile } from '../../client/reconcile-client.js';
import { minimise } from '../../lib/fhir/minimise.js';
import { canonicalContent } from '../../lib/reconcile/digest.js';
import { reconcileReport } from '../../lib/reconcile/report.js';
import { conflictWorkflowId } from '../../lib/writeback/notifier.js';
import { openChange } from '../../lib/writeback/outbox.js';
import { openConflictSides } from '../../lib/writeback/conflicts.js';
import type { ReconcileReport } from '../../workflows/reconcile.js';
import type { Scope } from './reconcile-support.js';
import { decodedHistoryText, holdWrites, storedResource, storeLocalVersion, testKeyring } from './reconcile-support.js';
import { activityFaults } from '../activity-faults.js';
import { registerSandboxTenant, sandboxAdmin, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 120 } });

interface Summary {
  id: string;
  versionId: string;
}

// Synthetic, distinctive values planted locally: none may reach a workflow history.
const LOCAL_OCCURRENCE = '2031-07-13T10:17:00Z';
const LOCAL_STATUS = 'revoked';
const LOCAL_APPOINTMENT_STATUS = 'proposed';

async function runReconcile(scope: { tenantId: string; integrationId: string }): Promise<ReconcileReport> {
  const handle = await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, scope, {
    historyEventLimit: 20,
  });
  return handle.result();
}

async function vendorCopy(type: string, id: string): Promise<Record<string, unknown>> {
  return sandboxAdmin<Record<string, unknown>>(harness.sandbox, 'GET', `/admin/resource/${type}/${id}`);
}

describe('reconcile', () => {
  it('finds exactly the planted differences and decides them by authority', async () => {
    const { pool } = harness;
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, harness.sandbox, {
      resourceTypes: ['Observation', 'Appointment', 'ServiceRequest'],
    });
    const integrationId = integrationIds[0]!;
    const target = { tenantId, integrationId };
    // Writes to the vendor are held (an incident's `writes_queued`): the writeBack workflow reconciliation wakes
    // leaves the queued changes pending, so what this test plants and asserts is not raced by their sending.
    await holdWrites(integrationId);
    // ServiceRequest: status and occurrence are shared for this integration (the default makes status local).
    await pool.query(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, 'ServiceRequest', $3, 'test')`,
      [
        tenantId,
        integrationId,
        JSON.stringify({
          create: true,
          update: true,
          elements: { status: 'shared', intent: 'local', occurrenceDateTime: 'shared', note: 'local-only' },
        }),
      ],
    );
    // A small data set has few service requests: the vendor gets a few more before the first sync.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/create', { resourceType: 'ServiceRequest', count: 4 });
    await syncResult(
      await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { ...target, vendor: 'sandbox' }),
    );
    const keyring = await testKeyring(harness);
    const scopeOf = (resourceType: Scope['resourceType']): Scope => ({ ...target, resourceType });
    const storedIds = async (type: string) =>
      (
        await pool.query<{ resource_id: string }>(
          `SELECT resource_id FROM records WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3
            ORDER BY resource_id`,
          [tenantId, integrationId, type],
        )
      ).rows.map((r) => r.resource_id);
    const obs = await storedIds('Observation');
    const appts = await storedIds('Appointment');
    const srs = await storedIds('ServiceRequest');
    expect(obs.length).toBeGreaterThan(4);
    expect(appts.length).toBeGreaterThan(3);
    expect(srs.length).toBeGreaterThan(3);

    // Run 1: straight after a sync, everything is in sync (and the baselines are stored).
    const first = await runReconcile(target);
    for (const type of ['Observation', 'Appointment', 'ServiceRequest'])
      expect(Object.entries(first.counts[type] ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0)).toEqual([]);
    expect(first.counts.Observation?.['in-sync']).toBe(obs.length);
    // Every record's agreed state holds its whole digest at the stored version (the next run's fast path).
    const agreed = await pool.query<{ agreed: string; n: string }>(
      `SELECT count(*) FILTER (WHERE b.whole IS NOT NULL AND b.local_version = r.version_id) AS agreed, count(*) AS n
         FROM records r LEFT JOIN reconcile_baselines b USING (tenant_id, integration_id, resource_type, resource_id)
        WHERE r.integration_id = $1`,
      [integrationId],
    );
    expect(Number(agreed.rows[0]!.agreed)).toBe(obs.length + appts.length + srs.length);
    expect(Number(agreed.rows[0]!.n)).toBe(obs.length + appts.length + srs.length);

    // Plant every class.
    const [o1, o2, o3] = obs;
    const [a1, a2] = appts;
    const [s1, s2, s3] = srs;
    const modified = await sandboxAdmin<{ modified: Summary[] }>(harness.sandbox, 'POST', '/admin/records/modify', {
      resourceType: 'Observation',
      ids: [o1, o2],
    });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/delete', { resourceType: 'Observation', ids: [o3] });
    const created = await sandboxAdmin<{ created: Summary[] }>(harness.sandbox, 'POST', '/admin/records/create', {
      resourceType: 'Observation',
      count: 1,
    });
    // Appointment a1: the vendor changes its status, which the organisation owns: written back.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', { resourceType: 'Appointment', ids: [a1] });
    const a1Local = (await storedResource(pool, keyring, scopeOf('Appointment'), a1!))!;
    // Appointment a2: changed here (queued), deleted at the vendor: a conflict.
    const a2Local = (await storedResource(pool, keyring, scopeOf('Appointment'), a2!))!;
    await storeLocalVersion(
      pool,
      keyring,
      scopeOf('Appointment'),
      a2!,
      { ...a2Local.resource, status: LOCAL_APPOINTMENT_STATUS },
      {
        payload: {
          kind: 'update',
          elements: { status: LOCAL_APPOINTMENT_STATUS },
          base: { status: a2Local.resource.status },
        },
        baseVersionId: a2Local.versionId,
      },
    );
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/delete', { resourceType: 'Appointment', ids: [a2] });
    // Appointments created here: one create still queued (skipped), one the vendor refused (missing-remote).
    const template = { ...a1Local.resource, status: 'booked' };
    for (const [id, refused] of [
      ['local-appt-pending', false],
      ['local-appt-refused', true],
    ] as const) {
      await storeLocalVersion(pool, keyring, scopeOf('Appointment'), id, template, {
        payload: { kind: 'create', resource: { ...template, id: undefined, meta: undefined } },
        baseVersionId: null,
      });
      if (refused)
        await pool.query(
          `UPDATE outbox_changes SET status = 'refused' WHERE resource_id = $1 AND integration_id = $2`,
          [id, integrationId],
        );
    }
    // ServiceRequest (status and occurrence shared): s1 changed at the vendor only, s2 here only, s3 on both sides.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', {
      resourceType: 'ServiceRequest',
      ids: [s1, s3],
    });
    const s2Local = (await storedResource(pool, keyring, scopeOf('ServiceRequest'), s2!))!;
    await storeLocalVersion(pool, keyring, scopeOf('ServiceRequest'), s2!, {
      ...s2Local.resource,
      occurrenceDateTime: LOCAL_OCCURRENCE,
    });
    const s3Local = (await storedResource(pool, keyring, scopeOf('ServiceRequest'), s3!))!;
    await storeLocalVersion(pool, keyring, scopeOf('ServiceRequest'), s3!, {
      ...s3Local.resource,
      status: LOCAL_STATUS,
    });

    // Run 2: exactly the planted differences — also when a page's and an unlisted batch's replies are lost after
    // they committed (the retries find their recorded counts instead of deciding again).
    activityFaults.loseReplyOnce.add('reconcilePage');
    activityFaults.loseReplyOnce.add('reconcileUnlisted');
    const handle = await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, target, {
      historyEventLimit: 20,
    });
    const second = await handle.result();
    expect(activityFaults.loseReplyOnce.size).toBe(0);
    const nonZero = (type: string) =>
      Object.fromEntries(Object.entries(second.counts[type] ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0));
    expect(nonZero('Observation')).toEqual({ diverged: 2, 'deleted-remote': 1, 'missing-local': 1 });
    expect(nonZero('Appointment')).toEqual({ diverged: 1, 'deleted-remote': 1, pending: 1, 'missing-remote': 1 });
    expect(nonZero('ServiceRequest')).toEqual({ diverged: 3 });
    expect(second.counts.Observation?.['in-sync']).toBe(obs.length - 3);
    expect(second.decisions).toMatchObject({
      localUpdated: 3,
      storedRemote: 1,
      tombstoned: 1,
      writeBacksQueued: 2,
      conflictsOpened: 2,
    });

    // Remote-owned drift updated the local copies to the vendor's versions; the deletion is a tombstone; the
    // vendor's new record is stored.
    const obsVersions = new Map(
      (
        await pool.query<{ resource_id: string; version_id: string }>(
          `SELECT resource_id, version_id FROM records WHERE tenant_id = $1 AND integration_id = $2
              AND resource_type = 'Observation'`,
          [tenantId, integrationId],
        )
      ).rows.map((r) => [r.resource_id, r.version_id]),
    );
    for (const m of modified.modified) expect(obsVersions.get(m.id)).toBe(m.versionId);
    expect(obsVersions.has(o3!)).toBe(false);
    expect(obsVersions.get(created.created[0]!.id)).toBe(created.created[0]!.versionId);
    const o1Stored = (await storedResource(pool, keyring, scopeOf('Observation'), o1!))!.resource;
    const o1Vendor = minimise('Observation', await vendorCopy('Observation', o1!));
    expect(canonicalContent(o1Stored)).toBe(canonicalContent(o1Vendor));
    const tomb = await pool.query('SELECT 1 FROM record_tombstones WHERE integration_id = $1 AND resource_id = $2', [
      integrationId,
      o3,
    ]);
    expect(tomb.rowCount).toBe(1);
    const s1Stored = (await storedResource(pool, keyring, scopeOf('ServiceRequest'), s1!))!;
    const s1Vendor = await vendorCopy('ServiceRequest', s1!);
    expect(s1Stored.resource.status).toBe(s1Vendor.status);
    expect(s1Stored.versionId).toBe((s1Vendor.meta as { versionId: string }).versionId);

    // Local drift: exactly one write-back per record, origin reconcile, local values against the vendor's base.
    const changes = await pool.query<{
      id: string;
      resource_type: string;
      resource_id: string;
      base_version_id: string;
    }>(
      `SELECT id, resource_type, resource_id, base_version_id FROM outbox_changes
        WHERE integration_id = $1 AND origin = 'reconcile' ORDER BY resource_type`,
      [integrationId],
    );
    expect(changes.rows.map((r) => [r.resource_type, r.resource_id])).toEqual([
      ['Appointment', a1],
      ['ServiceRequest', s2],
    ]);
    const a1Vendor = await vendorCopy('Appointment', a1!);
    const a1Change = await openChange(pool, keyring, changes.rows[0]!.id);
    expect(a1Change).toEqual({
      kind: 'update',
      elements: { status: a1Local.resource.status },
      base: { status: a1Vendor.status },
    });
    expect(changes.rows[0]!.base_version_id).toBe((a1Vendor.meta as { versionId: string }).versionId);
    const s2Change = await openChange(pool, keyring, changes.rows[1]!.id);
    expect(s2Change).toMatchObject({ kind: 'update', elements: { occurrenceDateTime: LOCAL_OCCURRENCE } });

    // Conflicts: a2 deleted under a pending change, s3 changed on both sides; each has its workflow.
    const conflicts = await pool.query<{ id: string; resource_id: string; reason: string; elements: string[] }>(
      `SELECT id, resource_id, reason, elements FROM reconcile_conflicts WHERE integration_id = $1 AND run_id = $2
        ORDER BY reason`,
      [integrationId, second.runId],
    );
    expect(conflicts.rows.map((c) => [c.reason, c.resource_id, c.elements])).toEqual([
      ['both-changed', s3, ['status']],
      ['deleted-remote', a2, ['status']],
    ]);
    const sides = await openConflictSides(pool, keyring, conflicts.rows[0]!.id);
    expect(sides).toEqual({
      local: { status: LOCAL_STATUS },
      remote: { status: (await vendorCopy('ServiceRequest', s3!)).status },
    });
    for (const c of conflicts.rows) {
      const described = await harness.temporal.client.workflow.getHandle(conflictWorkflowId(c.id)).describe();
      expect(described.type).toBe('conflictResolution');
    }

    // Audit: the run's decisions per batch — ids, classes, element names; no values.
    const audited = await pool.query<{ details: { records: Array<Record<string, unknown>> } }>(
      `SELECT details FROM audit_events WHERE action = 'reconcile.decided' AND details->>'runId' = $1`,
      [second.runId],
    );
    const entries = new Map(audited.rows.flatMap((r) => r.details.records.map((e) => [e.id as string, e])));
    expect(entries.get(o1!)).toEqual({ id: o1, class: 'diverged', diverged: ['_rest'], takeRemote: ['_rest'] });
    expect(entries.get(a1!)).toEqual({ id: a1, class: 'diverged', diverged: ['status'], writeBack: ['status'] });
    expect(entries.get(s3!)).toMatchObject({ class: 'diverged', conflict: 'both-changed', disputed: ['status'] });
    expect(entries.get(o3!)).toEqual({ id: o3, class: 'deleted-remote', tombstone: true });
    expect(entries.size).toBe(11); // the planted records, no in-sync one
    const auditText = JSON.stringify(audited.rows);
    for (const value of [LOCAL_OCCURRENCE, LOCAL_STATUS, LOCAL_APPOINTMENT_STATUS])
      expect(auditText).not.toContain(value);

    // The report: counts as the run found them, drift rate, write-backs and conflicts so far.
    const report = await reconcileReport(pool, second.runId);
    expect(report.status).toBe('completed');
    expect(report.counts).toEqual(second.counts);
    expect(report.writeBacks).toEqual({ pending: 2 });
    expect(report.conflicts).toEqual({ open: 2 });
    const total = obs.length + 1 + appts.length + 2 + srs.length;
    expect(report.compared).toBe(total);
    expect(report.driftRate).toBeCloseTo((2 + 1 + 1 + 1 + 1 + 1 + 3) / total, 10);
    const latest = harness.temporal.client.workflow.getHandle(second.runId);
    expect(await reconcileProgress(latest)).toMatchObject({ phase: 'done', counts: second.counts });

    // Run 3: in sync except what still waits (two write-backs, two conflicts, the queued create) and the create
    // the vendor refused; nothing new is queued or opened.
    const third = await runReconcile(target);
    const still = (type: string) =>
      Object.fromEntries(Object.entries(third.counts[type] ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0));
    expect(still('Observation')).toEqual({});
    expect(still('Appointment')).toEqual({ pending: 3, 'missing-remote': 1 });
    expect(still('ServiceRequest')).toEqual({ pending: 2 });
    expect(third.decisions).toMatchObject({ writeBacksQueued: 0, conflictsOpened: 0, localUpdated: 0 });

    // No planted value and no digest in the run's history (it continued as new on the way: read the last run's).
    const firstRun = harness.temporal.client.workflow.getHandle(second.runId, handle.firstExecutionRunId);
    const firstEvents = (await firstRun.fetchHistory()).events ?? [];
    expect(firstEvents.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    const text = await decodedHistoryText(harness.temporal.client, second.runId);
    expect(text).toContain(second.runId);
    for (const value of [LOCAL_OCCURRENCE, LOCAL_STATUS, LOCAL_APPOINTMENT_STATUS, String(a1Vendor.status)])
      expect(text).not.toContain(value);
    const digests = await pool.query<{ digests: Record<string, string> }>(
      'SELECT digests FROM reconcile_baselines WHERE integration_id = $1 LIMIT 20',
      [integrationId],
    );
    for (const d of digests.rows) for (const v of Object.values(d.digests)) expect(text).not.toContain(v);
  }, 180_000);
});
