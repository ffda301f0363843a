/**
 * Retention by data class (issue 12 item 6), on a real sync's records, the real worker and PostgreSQL: the
 * `retention` workflow purges only records past their class's rule (by stored_at), never under a manual
 * legal hold or an incident's, audits every batch in the transaction that deletes it, deletes nothing twice
 * when a batch's reply is lost, and resumes after a batch that failed mid-way left nothing half-deleted.
 * Full runs and the CLI: retention-sweep.test.ts; audit segments: retention-audit.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { placeLegalHold, releaseLegalHold } from '../../lib/retention/holds.js';
import { setRetentionRule } from '../../lib/retention/rules.js';
import type { RetentionInput, RetentionResult } from '../../workflows/retention.js';
import { activityFaults } from '../activity-faults.js';
import { age, asOwner, ids, purgeEvents, purgedCount, runRetention } from './retention-support.js';
import { syncedSandboxTenant } from './stored-records.js';
import { testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { seed: 11, size: 30 } });

describe('retention by data class', () => {
  it('purges only records past their class rule, never under a manual or an incident legal hold', async () => {
    const a = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    const b = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    const c = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    for (const t of [a, b, c])
      await setRetentionRule(harness.pool, { tenantId: t.tenantId, kind: 'records:labs-vitals', days: 30 }, testActor);

    // A: some Observations 40 days old (past 30), some 20 (not), every Patient 40 (demographics: 2555 days).
    const observations = await ids(harness, a.tenantId, 'Observation');
    expect(observations.length).toBeGreaterThan(6);
    await age(a.tenantId, 'Observation', 20);
    const old = await age(a.tenantId, 'Observation', 40, 6);
    const young = observations.filter((id) => !old.includes(id));
    const patients = await ids(harness, a.tenantId, 'Patient');
    await age(a.tenantId, 'Patient', 40);

    const ra = await runRetention(harness, { tenantId: a.tenantId, batchSize: 4 });
    expect(ra.purged).toEqual({ 'records:labs-vitals': 6 });
    expect(await ids(harness, a.tenantId, 'Observation')).toEqual(young);
    expect(await ids(harness, a.tenantId, 'Patient')).toEqual(patients);
    const events = await purgeEvents(harness, a.tenantId);
    expect(purgedCount(events)).toBe(6);
    expect(events.map((e) => e.details.byType)).toEqual([{ Observation: 4 }, { Observation: 2 }]);
    for (const e of events) {
      expect(e.details.kind).toBe('records:labs-vitals');
      expect(e.details.patientPseudonyms.length).toBeGreaterThan(0);
      // Pseudonyms and counts, never a resource id.
      for (const id of old) expect(JSON.stringify(e.details)).not.toContain(`"${id}"`);
    }

    // B: a manual hold on the tenant; C: an incident's legal hold on its integration.
    const bOld = await age(b.tenantId, 'Observation', 40);
    const cOld = await age(c.tenantId, 'Observation', 40);
    const hold = await placeLegalHold(
      harness.pool,
      { scope: `tenant:${b.tenantId}`, reason: 'litigation (synthetic)' },
      testActor,
    );
    const incidentId = `inc-${c.tenantId}`.slice(0, 63);
    await asOwner(async (owner) => {
      await owner.query(
        `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
         VALUES ($1, $2, 'high', 'synthetic', 'user:test', now(), '[]'::jsonb, 'recovered')`,
        [incidentId, `integration:${c.integrationIds[0]}`],
      );
      await owner.query(
        `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold,
                                     released_at)
         VALUES ($1, $2, false, false, false, true, now())`,
        [incidentId, `integration:${c.integrationIds[0]}`],
      );
    });
    const rb = await runRetention(harness, { tenantId: b.tenantId });
    const rc = await runRetention(harness, { tenantId: c.tenantId });
    expect(rb.purged).toEqual({ 'records:labs-vitals': 0 });
    expect(rb.heldBy).toEqual({ 'records:labs-vitals': [hold.id] });
    expect(rc.purged).toEqual({ 'records:labs-vitals': 0 });
    expect(rc.heldBy).toEqual({ 'records:labs-vitals': [incidentId] });
    expect(await ids(harness, b.tenantId, 'Observation')).toEqual(bOld);
    expect(await ids(harness, c.tenantId, 'Observation')).toEqual(cOld);

    // Released, the hold stops nothing: the next run purges what was past due.
    await releaseLegalHold(harness.pool, { id: hold.id, reason: 'case closed (synthetic)' }, testActor);
    const rb2 = await runRetention(harness, { tenantId: b.tenantId });
    expect(rb2.purged).toEqual({ 'records:labs-vitals': bOld.length });
    expect(await ids(harness, b.tenantId, 'Observation')).toEqual([]);
    const holdEvents = await harness.pool.query<{ action: string }>(
      `SELECT action FROM audit_events WHERE details ->> 'holdId' = $1 ORDER BY seq`,
      [hold.id],
    );
    expect(holdEvents.rows.map((r) => r.action)).toEqual(['retention.hold_placed', 'retention.hold_released']);

    // A second run over A finds nothing more to do.
    const again = await runRetention(harness, { tenantId: a.tenantId, batchSize: 4 });
    expect(again.purged).toEqual({});
    expect(await ids(harness, a.tenantId, 'Observation')).toEqual(young);
  });

  it('deletes nothing twice when a batch reply is lost, and resumes after a batch that failed mid-way', async () => {
    const t = await syncedSandboxTenant(harness, ['Observation']);
    await setRetentionRule(harness.pool, { tenantId: t.tenantId, kind: 'records:labs-vitals', days: 30 }, testActor);
    const all = await age(t.tenantId, 'Observation', 40);
    expect(all.length).toBeGreaterThanOrEqual(9);

    // The first batch commits and its reply is lost: the retry finds its ledger row, the count stays exact.
    activityFaults.loseReplyOnce.add('purgeRetentionBatch');
    const first = await runRetention(harness, { tenantId: t.tenantId, batchSize: 3, maxBatchesPerRun: 1 });
    expect(activityFaults.loseReplyOnce.size).toBe(0);
    expect(first.purged).toEqual({ 'records:labs-vitals': all.length });
    expect(purgedCount(await purgeEvents(harness, t.tenantId))).toBe(all.length);

    // A second tenant: the database refuses to delete its 5th record (in the 2nd batch of 3) until we allow it.
    const u = await syncedSandboxTenant(harness, ['Observation']);
    await setRetentionRule(harness.pool, { tenantId: u.tenantId, kind: 'records:labs-vitals', days: 30 }, testActor);
    const uAll = await age(u.tenantId, 'Observation', 40);
    const blocked = uAll[4]!;
    const fn = `retention_test_block_${u.tenantId.replace(/-/g, '_')}`;
    await asOwner((owner) =>
      owner.query(`
        CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.tenant_id = '${u.tenantId}' AND OLD.resource_id = '${blocked}' THEN
            RAISE EXCEPTION 'injected failure mid-batch';
          END IF;
          RETURN OLD;
        END $$;
        CREATE TRIGGER ${fn} BEFORE DELETE ON records FOR EACH ROW EXECUTE FUNCTION ${fn}();`),
    );
    try {
      const handle = await harness.temporal.client.workflow.start('retention', {
        taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
        workflowId: `retention/test/${randomUUID()}`,
        args: [{ tenantId: u.tenantId, batchSize: 3 } satisfies RetentionInput],
      });
      // Wait until the failing batch has been tried twice.
      for (let i = 0; ; i++) {
        const d = await handle.describe();
        if ((d.raw.pendingActivities?.[0]?.attempt ?? 0) >= 2) break;
        if (i > 100) throw new Error('the blocked batch was never retried');
        await new Promise((r) => setTimeout(r, 200));
      }
      // Batch 1 committed whole; batch 2 not at all (its other rows are still there).
      expect(await ids(harness, u.tenantId, 'Observation')).toEqual(uAll.slice(3).sort());
      expect(purgedCount(await purgeEvents(harness, u.tenantId))).toBe(3);
      await asOwner((owner) => owner.query(`DROP TRIGGER ${fn} ON records; DROP FUNCTION ${fn}();`));
      const result = (await handle.result()) as RetentionResult;
      expect(result.purged).toEqual({ 'records:labs-vitals': uAll.length });
      expect(await ids(harness, u.tenantId, 'Observation')).toEqual([]);
      expect(purgedCount(await purgeEvents(harness, u.tenantId))).toBe(uAll.length);
    } finally {
      await asOwner((owner) =>
        owner.query(`DROP TRIGGER IF EXISTS ${fn} ON records; DROP FUNCTION IF EXISTS ${fn}();`),
      );
    }
  });
});
