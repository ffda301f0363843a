/**
 * `ehrctl reconcile run|schedule|report`: start a reconciliation of one integration (optionally waiting for it),
 * schedule it, and show a run's report. The conflicts helper's `reconcile conflicts|resolve` hang on the group
 * this returns (client/commands/reconcile-conflicts.ts).
 */
import type { Command } from 'commander';
import { ClientIdPendingError, InvalidArgumentError } from '../../lib/errors/index.js';
import { assertResumptionAllowed } from '../../lib/incidents/holds.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import type { ReconcileRunReport } from '../../lib/reconcile/report.js';
import { reconcileReport } from '../../lib/reconcile/report.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';
import { reconcileScheduleId, scheduleReconcile, startReconcile } from '../reconcile-client.js';
import { SYNC_INTERVAL_HOURS, parseAt, parseTimezone } from './schedule.js';

function parseTypes(types: string | undefined): string[] | undefined {
  const list = types
    ?.split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  return list?.length ? list : undefined;
}

export function printReconcileReport(report: ReconcileRunReport): void {
  print(`run ${report.id}: ${report.status} (read: ${report.readStrategy})`);
  const rows = Object.entries(report.counts).map(([type, byClass]) => ({
    type,
    'in-sync': byClass['in-sync'] ?? 0,
    'missing-local': byClass['missing-local'] ?? 0,
    'missing-remote': byClass['missing-remote'] ?? 0,
    diverged: byClass.diverged ?? 0,
    'deleted-remote': byClass['deleted-remote'] ?? 0,
    pending: byClass.pending ?? 0,
  }));
  if (rows.length > 0) table(rows);
  print(`compared ${report.compared}, drift rate ${(report.driftRate * 100).toFixed(2)} %`);
  const d = report.decisions;
  print(
    `local updated ${d.localUpdated ?? 0}, stored from vendor ${d.storedRemote ?? 0}, tombstoned ${d.tombstoned ?? 0}, ` +
      `write-backs queued ${d.writeBacksQueued ?? 0}, conflicts opened ${d.conflictsOpened ?? 0}`,
  );
  const kv = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  print(`write-backs so far: ${kv(report.writeBacks)}`);
  print(`conflicts so far: ${kv(report.conflicts)}`);
}

/** Registers the `reconcile` group and returns it (further subcommands hang on it). */
export function registerReconcile(program: Command): Command {
  const reconcile = program.command('reconcile').description('compare stored records with the vendor and decide');
  reconcile
    .command('run')
    .description("compare one integration's stored records with the vendor's current copies now")
    .requiredOption('--integration <id>', 'integration id')
    .option('--types <types>', 'comma-separated resource types (default: every type the integration reads)')
    .option('--wait', 'wait for the run and print its report')
    .action(async (opts: { integration: string; types?: string; wait?: boolean }) =>
      withContext(async (ctx) => {
        const integration = await getIntegration(await ctx.db(), opts.integration);
        if (integration.status === 'pending-client-id') throw new ClientIdPendingError(integration.id);
        // While an incident holds the integration, its vendor traffic is the incident's to resume.
        await assertResumptionAllowed(await ctx.db(), 'reconcile run', integration.id);
        const types = parseTypes(opts.types);
        const handle = await startReconcile(
          await ctx.temporal(),
          ctx.config.TEMPORAL_TASK_QUEUE,
          { tenantId: integration.tenantId, integrationId: integration.id },
          types ? { types } : {},
        );
        print(`started ${handle.workflowId}`);
        if (!opts.wait) return;
        await handle.result();
        printReconcileReport(await reconcileReport(await ctx.db(), handle.workflowId));
      }),
    );
  reconcile
    .command('schedule')
    .description('reconcile an integration every day at --at (or every --every hours from it), overlap SKIP')
    .requiredOption('--integration <id>', 'integration id')
    .requiredOption('--at <HH:MM>', 'local time of day')
    .requiredOption('--timezone <Area/City>', 'IANA time zone')
    .option('--every <hours>', 'hours between runs, dividing 24 (default 24)')
    .option('--types <types>', 'comma-separated resource types')
    .action(async (opts: { integration: string; at: string; timezone: string; every?: string; types?: string }) =>
      withContext(async (ctx) => {
        const integration = await getIntegration(await ctx.db(), opts.integration);
        const everyHours = opts.every === undefined ? 24 : parseEveryHours(opts.every);
        const types = parseTypes(opts.types);
        const target = { tenantId: integration.tenantId, integrationId: integration.id };
        const handle = await scheduleReconcile(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, target, {
          ...parseAt(opts.at),
          timezone: parseTimezone(opts.timezone),
          everyHours,
          ...(types ? { types } : {}),
        });
        print(`schedule ${handle.scheduleId} created: every ${everyHours} h from ${opts.at} ${opts.timezone}`);
      }),
    );
  reconcile
    .command('unschedule')
    .description("delete an integration's reconciliation schedule")
    .requiredOption('--integration <id>', 'integration id')
    .action(async (opts: { integration: string }) =>
      withContext(async (ctx) => {
        const integration = await getIntegration(await ctx.db(), opts.integration);
        const id = reconcileScheduleId({ tenantId: integration.tenantId, integrationId: integration.id });
        await (await ctx.temporal()).schedule.getHandle(id).delete();
        print(`schedule ${id} deleted`);
      }),
    );
  reconcile
    .command('report')
    .description("a run's counts per class and type, drift rate, decisions, and its write-backs and conflicts so far")
    .argument('<run>', 'the run id (reconcile/<tenant>/<integration>/<time>)')
    .option('--json', 'machine-readable output')
    .action(async (run: string, opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const report = await reconcileReport(await ctx.db(), run);
        if (opts.json) return printJson(report);
        printReconcileReport(report);
      }),
    );
  return reconcile;
}

function parseEveryHours(every: string): number {
  const hours = Number(/^(\d{1,2})h?$/.exec(every)?.[1]);
  if (!(SYNC_INTERVAL_HOURS as readonly number[]).includes(hours))
    throw new InvalidArgumentError(
      '--every',
      `use hours that divide a day: ${SYNC_INTERVAL_HOURS.map((h) => `${h}h`).join(', ')}`,
    );
  return hours;
}
