/**
 * `ehrctl reconcile run|report|schedule|unschedule` as an operator runs them (a real process): a run waited for
 * prints its report, `report --json` gives the run's counts, a schedule is created with overlap SKIP and deleted,
 * and an unknown run is a clear error.
 */
import { describe, expect, it } from 'vitest';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { startSync, syncResult } from '../../client/sync-client.js';
import { reconcileProgress, reconcileScheduleId, startReconcile } from '../../client/reconcile-client.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { holdWrites } from './reconcile-support.js';
import { registerSandboxTenant, sandboxAdmin, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 80 } });
const ehrctl = (args: string[]) => runEhrctl(args, ehrctlEnv({ config: harness.config, sandbox: harness.sandbox }));

describe('ehrctl reconcile', () => {
  it('runs and waits, reports as text and JSON, schedules and unschedules; an unknown run is refused', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Condition', 'Observation'],
    });
    const integrationId = integrationIds[0]!;
    await syncResult(
      await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
        tenantId,
        integrationId,
        vendor: 'sandbox',
      }),
    );
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', { resourceType: 'Condition', count: 2 });

    const run = await ehrctl(['reconcile', 'run', '--integration', integrationId, '--types', 'Condition', '--wait']);
    expect(run.code, run.stderr).toBe(0);
    const runId = /started (\S+)/.exec(run.stdout)?.[1];
    expect(runId).toMatch(new RegExp(`^reconcile/${tenantId}/${integrationId}/`));
    expect(run.stdout).toMatch(/: completed \(read: search\)/);
    expect(run.stdout).toMatch(/drift rate \d+\.\d\d %/);
    expect(run.stdout).toMatch(/local updated 2,/);

    const json = await ehrctl(['reconcile', 'report', runId!, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as {
      resourceTypes: string[];
      counts: Record<string, Record<string, number>>;
      totals: Record<string, number>;
      compared: number;
      driftRate: number;
    };
    expect(report.resourceTypes).toEqual(['Condition']);
    expect(report.totals.diverged).toBe(2);
    expect(report.driftRate).toBeCloseTo(2 / report.compared, 10);
    expect(Object.keys(report.counts)).toEqual(['Condition']);

    const scheduled = await ehrctl([
      'reconcile',
      'schedule',
      '--integration',
      integrationId,
      '--at',
      '02:30',
      '--timezone',
      'Europe/Berlin',
      '--every',
      '12h',
    ]);
    expect(scheduled.code, scheduled.stderr).toBe(0);
    const handle = harness.temporal.client.schedule.getHandle(reconcileScheduleId({ tenantId, integrationId }));
    const described = await handle.describe();
    expect(described.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(described.action.type === 'startWorkflow' && described.action.workflowType).toBe('reconcile');
    expect(described.spec.calendars?.[0]?.hour).toEqual([
      { start: 2, end: 2, step: 1 },
      { start: 14, end: 14, step: 1 },
    ]);
    const unscheduled = await ehrctl(['reconcile', 'unschedule', '--integration', integrationId]);
    expect(unscheduled.code, unscheduled.stderr).toBe(0);
    await expect(handle.describe()).rejects.toThrow();

    const unknown = await ehrctl(['reconcile', 'report', 'reconcile/none/none/never']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/reconcile run/);
  }, 120_000);

  it('carries its scope for containment, and a cancelled run is recorded as failed', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Condition'],
    });
    const integrationId = integrationIds[0]!;
    // The vendor is down for Condition: the run's first page waits in its retries.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', {
      kind: 'status',
      status: 503,
      retryAfterSeconds: 1,
      resourceType: 'Condition',
      times: 1_000,
    });
    try {
      const handle = await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
        tenantId,
        integrationId,
      });
      // Containment finds a scope's runs by these search attributes (activities/scope-workflows.ts).
      const listed = async () => {
        const found: string[] = [];
        for await (const w of harness.temporal.client.workflow.list({
          query: `IntegrationId = '${integrationId}' AND TenantId = '${tenantId}' AND ExecutionStatus = 'Running'`,
        }))
          found.push(w.workflowId);
        return found;
      };
      await expect.poll(listed, { timeout: 15_000, interval: 250 }).toEqual([handle.workflowId]);
      await expect.poll(async () => (await reconcileProgress(handle)).phase, { timeout: 10_000 }).toBe('list');
      await handle.cancel();
      await expect(handle.result()).rejects.toThrow();
      const row = await harness.pool.query<{ status: string }>('SELECT status FROM reconcile_runs WHERE id = $1', [
        handle.workflowId,
      ]);
      expect(row.rows[0]?.status).toBe('failed');

      // While an incident holds the integration, a run is the incident's to allow: refused, naming it.
      const incidentId = await holdWrites(integrationId);
      const held = await ehrctl(['reconcile', 'run', '--integration', integrationId]);
      expect(held.code).not.toBe(0);
      expect(held.stderr).toContain(incidentId);
      expect(held.stdout).not.toMatch(/started/);
    } finally {
      await sandboxAdmin(harness.sandbox, 'DELETE', '/admin/faults');
    }
  }, 120_000);
});
