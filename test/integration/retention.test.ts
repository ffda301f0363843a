/**
 * Retention by data class (issue 12 item 6), on a real sync's records, the real worker and PostgreSQL: the
 * `retention` workflow purges only records past their class's rule (by stored_at), never under a manual
 * legal hold or an incident's, audits every batch in the transaction that deletes it, deletes nothing twice
 * when a batch's reply is lost, and resumes after a batch that failed mid-way left nothing half-deleted.
 * Audit segments: test/integration/retention-audit.test.ts.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import { placeLegalHold, releaseLegalHold } from '../../lib/retention/holds.js';
import { setRetentionRule } from '../../lib/retention/rules.js';
import type { RetentionInput, RetentionResult } from '../../workflows/retention.js';
import { activityFaults } from '../activity-faults.js';
import { testEnv } from '../harness.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { syncedSandboxTenant } from './stored-records.js';
import { registerSandboxTenant, testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { seed: 11, size: 30 } });

async function asOwner<T>(fn: (owner: Pool) => Promise<T>): Promise<T> {
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    return await fn(owner);
  } finally {
    await owner.end();
  }
}

/** Moves the tenant's records of a type back in time (stored_at), `days` ago, one millisecond apart. */
async function age(tenantId: string, type: string, days: number, count?: number): Promise<string[]> {
  return asOwner(async (owner) => {
    const ids = (
      await owner.query<{ resource_id: string }>(
        `SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = $2 ORDER BY resource_id
         ${count === undefined ? '' : `LIMIT ${count}`}`,
        [tenantId, type],
      )
    ).rows.map((r) => r.resource_id);
    await owner.query(
      `UPDATE records r SET stored_at = now() - make_interval(days => $3) + (x.n * interval '1 millisecond')
         FROM unnest($4::text[]) WITH ORDINALITY AS x(id, n)
        WHERE r.tenant_id = $1 AND r.resource_type = $2 AND r.resource_id = x.id`,
      [tenantId, type, days, ids],
    );
    return ids;
  });
}

async function ids(tenantId: string, type: string): Promise<string[]> {
  const res = await harness.pool.query<{ resource_id: string }>(
    'SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = $2 ORDER BY resource_id',
    [tenantId, type],
  );
  return res.rows.map((r) => r.resource_id);
}

async function runRetention(input: RetentionInput): Promise<RetentionResult> {
  const handle = await harness.temporal.client.workflow.start('retention', {
    taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
    workflowId: `retention/test/${randomUUID()}`,
    args: [input],
  });
  return (await handle.result()) as RetentionResult;
}

interface PurgeEvent {
  seq: string;
  correlation_id: string;
  details: { count?: number; kind: string; patientPseudonyms: string[]; byType?: Record<string, number> };
}

async function purgeEvents(tenantId: string): Promise<PurgeEvent[]> {
  const res = await harness.pool.query<PurgeEvent>(
    `SELECT seq::text, correlation_id, details FROM audit_events
      WHERE tenant_id = $1 AND action = 'retention.records_purged' ORDER BY audit_events.seq`,
    [tenantId],
  );
  return res.rows;
}

const purgedCount = (events: PurgeEvent[]) => events.reduce((n, e) => n + (e.details.count ?? 0), 0);

describe('retention by data class', () => {
  it('purges only records past their class rule, never under a manual or an incident legal hold', async () => {
    const a = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    const b = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    const c = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    for (const t of [a, b, c])
      await setRetentionRule(harness.pool, { tenantId: t.tenantId, kind: 'records:labs-vitals', days: 30 }, testActor);

    // A: some Observations 40 days old (past 30), some 20 (not), every Patient 40 (demographics: 2555 days).
    const observations = await ids(a.tenantId, 'Observation');
    expect(observations.length).toBeGreaterThan(6);
    await age(a.tenantId, 'Observation', 20);
    const old = await age(a.tenantId, 'Observation', 40, 6);
    const young = observations.filter((id) => !old.includes(id));
    const patients = await ids(a.tenantId, 'Patient');
    await age(a.tenantId, 'Patient', 40);

    const ra = await runRetention({ tenantId: a.tenantId, batchSize: 4 });
    expect(ra.purged).toEqual({ 'records:labs-vitals': 6 });
    expect(await ids(a.tenantId, 'Observation')).toEqual(young);
    expect(await ids(a.tenantId, 'Patient')).toEqual(patients);
    const events = await purgeEvents(a.tenantId);
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
    const rb = await runRetention({ tenantId: b.tenantId });
    const rc = await runRetention({ tenantId: c.tenantId });
    expect(rb.purged).toEqual({ 'records:labs-vitals': 0 });
    expect(rb.heldBy).toEqual({ 'records:labs-vitals': [hold.id] });
    expect(rc.purged).toEqual({ 'records:labs-vitals': 0 });
    expect(rc.heldBy).toEqual({ 'records:labs-vitals': [incidentId] });
    expect(await ids(b.tenantId, 'Observation')).toEqual(bOld);
    expect(await ids(c.tenantId, 'Observation')).toEqual(cOld);

    // Released, the hold stops nothing: the next run purges what was past due.
    await releaseLegalHold(harness.pool, { id: hold.id, reason: 'case closed (synthetic)' }, testActor);
    const rb2 = await runRetention({ tenantId: b.tenantId });
    expect(rb2.purged).toEqual({ 'records:labs-vitals': bOld.length });
    expect(await ids(b.tenantId, 'Observation')).toEqual([]);
    const holdEvents = await harness.pool.query<{ action: string }>(
      `SELECT action FROM audit_events WHERE details ->> 'holdId' = $1 ORDER BY seq`,
      [hold.id],
    );
    expect(holdEvents.rows.map((r) => r.action)).toEqual(['retention.hold_placed', 'retention.hold_released']);

    // A second run over A finds nothing more to do.
    const again = await runRetention({ tenantId: a.tenantId, batchSize: 4 });
    expect(again.purged).toEqual({});
    expect(await ids(a.tenantId, 'Observation')).toEqual(young);
  });

  it('deletes nothing twice when a batch reply is lost, and resumes after a batch that failed mid-way', async () => {
    const t = await syncedSandboxTenant(harness, ['Observation']);
    await setRetentionRule(harness.pool, { tenantId: t.tenantId, kind: 'records:labs-vitals', days: 30 }, testActor);
    const all = await age(t.tenantId, 'Observation', 40);
    expect(all.length).toBeGreaterThanOrEqual(9);

    // The first batch commits and its reply is lost: the retry finds its ledger row, the count stays exact.
    activityFaults.loseReplyOnce.add('purgeRetentionBatch');
    const first = await runRetention({ tenantId: t.tenantId, batchSize: 3, maxBatchesPerRun: 1 });
    expect(activityFaults.loseReplyOnce.size).toBe(0);
    expect(first.purged).toEqual({ 'records:labs-vitals': all.length });
    expect(purgedCount(await purgeEvents(t.tenantId))).toBe(all.length);

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
      expect(await ids(u.tenantId, 'Observation')).toEqual(uAll.slice(3).sort());
      expect(purgedCount(await purgeEvents(u.tenantId))).toBe(3);
      await asOwner((owner) => owner.query(`DROP TRIGGER ${fn} ON records; DROP FUNCTION ${fn}();`));
      const result = (await handle.result()) as RetentionResult;
      expect(result.purged).toEqual({ 'records:labs-vitals': uAll.length });
      expect(await ids(u.tenantId, 'Observation')).toEqual([]);
      expect(purgedCount(await purgeEvents(u.tenantId))).toBe(uAll.length);
    } finally {
      await asOwner((owner) =>
        owner.query(`DROP TRIGGER IF EXISTS ${fn} ON records; DROP FUNCTION IF EXISTS ${fn}();`),
      );
    }
  });

  it('a full run purges signalled webhook deliveries and incident evidence past due, not what a hold keeps', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient'],
      integrations: 2,
    });
    // Deliveries and the finished incident on the first integration; the held incident on the second.
    const [integrationId, heldIntegrationId] = integrationIds as [string, string];
    await setRetentionRule(harness.pool, { tenantId, kind: 'webhook-deliveries', days: 10 }, testActor);
    await setRetentionRule(harness.pool, { tenantId, kind: 'evidence', days: 30 }, testActor);
    // [webhook id, days ago, signalled, on the held integration]
    const deliveries: Array<[string, number, boolean, boolean]> = [
      ['old-1', 20, true, false],
      ['old-2', 20, true, false],
      ['old-unsignalled', 20, false, false],
      ['recent', 5, true, false],
      ['old-under-hold', 20, true, true],
    ];
    const affected = (i: string) =>
      JSON.stringify([{ tenantId, integrationId: i, vendor: 'sandbox', baseUrl: 'x', status: 'active' }]);
    const done = `inc-done-${tenantId}`.slice(0, 63);
    const held = `inc-held-${tenantId}`.slice(0, 63);
    await asOwner(async (owner) => {
      for (const [id, days, signalled, onHeld] of deliveries)
        await owner.query(
          `INSERT INTO webhook_deliveries (tenant_id, integration_id, webhook_id, received_at, event_type, resource_types,
                                           entry_count, body_bytes, signalled_at)
           VALUES ($1, $2, $3, now() - make_interval(days => $4), 'synthetic', '{Patient}', 1, 10,
                   CASE WHEN $5 THEN now() END)`,
          [tenantId, onHeld ? heldIntegrationId : integrationId, id, days, signalled],
        );
      for (const [id, legalHold, on] of [
        [done, false, integrationId],
        [held, true, heldIntegrationId],
      ] as const) {
        await owner.query(
          `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status, recovered_at)
           VALUES ($1, $2, 'high', 'synthetic', 'user:test', now() - interval '50 days', $3, 'recovered',
                   now() - interval '40 days')`,
          [id, `integration:${on}`, affected(on)],
        );
        await owner.query(
          `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold,
                                       released_at)
           VALUES ($1, $2, false, false, false, $3, now() - interval '40 days')`,
          [id, `integration:${on}`, legalHold],
        );
      }
    });
    // Evidence as lib/incidents/evidence.ts leaves it: 0400 files in a 0500 directory under the evidence root.
    const evidenceRoot = path.join(path.dirname(path.resolve(harness.config.EHR_AUDIT_ANCHOR_PATH)), 'evidence');
    const dirs = new Map<string, string>();
    for (const id of [done, held]) {
      const dir = path.join(evidenceRoot, id, randomUUID());
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const name of ['manifest.json', 'checkpoint.json']) {
        fs.writeFileSync(path.join(dir, name), '{}', { mode: 0o400 });
        await harness.pool.query(
          `INSERT INTO incident_evidence (incident_id, name, kind, sha256, bytes, path) VALUES ($1, $2, 'x', 'x', 2, $3)`,
          [id, name, path.join(dir, name)],
        );
      }
      fs.chmodSync(dir, 0o500);
      dirs.set(id, dir);
    }

    const result = await runRetention({});
    const kept = await harness.pool.query<{ webhook_id: string }>(
      'SELECT webhook_id FROM webhook_deliveries WHERE tenant_id = $1 ORDER BY webhook_id',
      [tenantId],
    );
    expect(kept.rows.map((r) => r.webhook_id)).toEqual(['old-under-hold', 'old-unsignalled', 'recent']);
    expect(result.purged['webhook-deliveries']).toBeGreaterThanOrEqual(2);
    expect(result.heldBy['webhook-deliveries']).toContain(held);
    expect(result.evidenceFilesPurged).toBe(2);
    expect(result.heldBy.evidence).toContain(held);
    expect(fs.existsSync(dirs.get(done)!)).toBe(false);
    expect(fs.readdirSync(dirs.get(held)!).sort()).toEqual(['checkpoint.json', 'manifest.json']);
    const rows = await harness.pool.query<{ incident_id: string; n: number }>(
      'SELECT incident_id, count(*)::int AS n FROM incident_evidence WHERE incident_id = ANY ($1) GROUP BY incident_id',
      [[done, held]],
    );
    expect(rows.rows).toEqual([{ incident_id: held, n: 2 }]);
    const events = await harness.pool.query<{ action: string; details: { incidentId?: string; files?: number } }>(
      `SELECT action, details FROM audit_events
        WHERE action IN ('retention.evidence_purged', 'retention.webhook_deliveries_purged')
          AND (tenant_id = $1 OR details ->> 'incidentId' = $2) ORDER BY audit_events.seq`,
      [tenantId, done],
    );
    expect(events.rows.map((e) => e.action)).toEqual([
      'retention.webhook_deliveries_purged',
      'retention.evidence_purged',
    ]);
    expect(events.rows[1]!.details).toMatchObject({ incidentId: done, files: 2 });
  });

  it('ehrctl retention set|show|run|schedule and holds place|list|release', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient']);
    const ehrctl = (args: string[]) => runEhrctl(args, ehrctlEnv({ config: harness.config }));
    const set = await ehrctl(['retention', 'set', '--tenant', tenantId, '--class', 'scheduling', '--days', '400']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(`tenant ${tenantId}: records:scheduling kept 400 days (was 730)`);
    const bad = await ehrctl(['retention', 'set', '--tenant', tenantId, '--class', 'gossip', '--days', '4']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--class: expected a data class/);
    const show = await ehrctl(['retention', 'show', '--tenant', tenantId, '--json']);
    const rules = JSON.parse(show.stdout) as Array<{
      kind: string;
      days: number;
      source: string;
      effectiveDays?: number;
    }>;
    expect(rules.find((r) => r.kind === 'records:scheduling')).toMatchObject({ days: 400, source: 'tenant' });
    expect(rules.find((r) => r.kind === 'webhook-deliveries')).toMatchObject({ days: 90, source: 'default' });
    // Audit rows: kept at least as long as the longest rule.
    const longest = Math.max(...rules.filter((r) => r.kind !== 'audit').map((r) => r.days));
    const audit = rules.find((r) => r.kind === 'audit')!;
    expect(audit.effectiveDays ?? audit.days).toBeGreaterThanOrEqual(longest);

    expect(rules.find((r) => r.kind === 'records:scheduling')).toMatchObject({
      resourceTypes: expect.arrayContaining(['Appointment', 'Encounter']),
    });
    const ruleSet = await harness.pool.query<{ details: unknown }>(
      "SELECT details FROM audit_events WHERE tenant_id = $1 AND action = 'retention.rule_set'",
      [tenantId],
    );
    expect(ruleSet.rows).toEqual([{ details: { kind: 'records:scheduling', days: 400, previousDays: 730 } }]);

    // Patients (demographics) kept 5 days, stored 10 days ago: a run by hand purges them and says so.
    const patients = await ids(tenantId, 'Patient');
    expect(patients.length).toBeGreaterThan(0);
    await ehrctl(['retention', 'set', '--tenant', tenantId, '--class', 'demographics', '--days', '5']);
    await age(tenantId, 'Patient', 10);
    const run = await ehrctl(['retention', 'run', '--tenant', tenantId, '--wait']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/retention run retention\/[a-z0-9-]+\/[0-9a-f-]+ started\nretention run completed/);
    expect(run.stdout).toContain(`records:demographics: ${patients.length} purged`);
    expect(await ids(tenantId, 'Patient')).toEqual([]);
    const schedule = await ehrctl(['retention', 'schedule', '--at', '03:30', '--timezone', 'UTC']);
    expect(schedule.code, schedule.stderr).toBe(0);
    const handle = harness.temporal.client.schedule.getHandle('retention');
    try {
      const d = await handle.describe();
      expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'retention' });
      expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 3, end: 3, step: 1 }] });
    } finally {
      await handle.delete();
    }

    const place = await ehrctl(['holds', 'place', '--scope', `tenant:${tenantId}`, '--reason', 'audit (synthetic)']);
    expect(place.code, place.stderr).toBe(0);
    const id = /legal hold (hold-[0-9a-f]+) placed/.exec(place.stdout)?.[1];
    expect(id).toBeDefined();
    // An incident's standing legal hold is listed beside the manual ones.
    const incidentId = `inc-list-${tenantId}`.slice(0, 63);
    await asOwner(async (owner) => {
      await owner.query(
        `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
         VALUES ($1, $2, 'low', 'synthetic', 'user:test', now(), '[]'::jsonb, 'recovered')`,
        [incidentId, `tenant:${tenantId}`],
      );
      await owner.query(
        `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold)
         VALUES ($1, $2, false, false, false, true)`,
        [incidentId, `tenant:${tenantId}`],
      );
    });
    const list = JSON.parse((await ehrctl(['holds', 'list', '--json'])).stdout) as {
      manual: Array<{ id: string }>;
      incidents: Array<{ id: string; scope: string }>;
    };
    expect(list.manual.map((h) => h.id)).toContain(id);
    expect(list.incidents).toContainEqual({ source: 'incident', id: incidentId, scope: `tenant:${tenantId}` });
    const release = await ehrctl(['holds', 'release', id!, '--reason', 'done (synthetic)']);
    expect(release.code, release.stderr).toBe(0);
    const twice = await ehrctl(['holds', 'release', id!, '--reason', 'done (synthetic)']);
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/was released already/);
    const after = JSON.parse((await ehrctl(['holds', 'list', '--json'])).stdout) as { manual: Array<{ id: string }> };
    expect(after.manual.map((h) => h.id)).not.toContain(id);
  });
});
