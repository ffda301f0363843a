/**
 * Retention (issue 12 item 6), a full run and the CLI: signalled webhook deliveries and incident evidence past
 * their rules are purged (evidence files removed), what a legal hold covers is kept; `ehrctl retention` and
 * `ehrctl holds` as an operator uses them.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { setRetentionRule } from '../../lib/retention/rules.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { age, asOwner, ids, runRetention } from './retention-support.js';
import { syncedSandboxTenant } from './stored-records.js';
import { registerSandboxTenant, testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { seed: 13, size: 10 } });

describe('retention: full runs and the CLI', () => {
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

    const result = await runRetention(harness, {});
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
    const patients = await ids(harness, tenantId, 'Patient');
    expect(patients.length).toBeGreaterThan(0);
    await ehrctl(['retention', 'set', '--tenant', tenantId, '--class', 'demographics', '--days', '5']);
    await age(tenantId, 'Patient', 10);
    const run = await ehrctl(['retention', 'run', '--tenant', tenantId, '--wait']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/retention run retention\/[a-z0-9-]+\/[0-9a-f-]+ started\nretention run completed/);
    expect(run.stdout).toContain(`records:demographics: ${patients.length} purged`);
    expect(await ids(harness, tenantId, 'Patient')).toEqual([]);
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
