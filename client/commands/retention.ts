import { randomUUID } from 'node:crypto';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import {
  parseRetentionDays,
  parseRetentionKind,
  setRetentionRule,
  showRetentionRules,
} from '../../lib/retention/rules.js';
import type { RetentionInput, RetentionResult } from '../../workflows/retention.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

/** The one retention schedule (every tenant, and the audit trail). */
export const RETENTION_SCHEDULE_ID = 'retention';

function parseAt(at: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(at);
  if (!m) throw new InvalidArgumentError('--at', 'expected HH:MM in 24-hour time, e.g. 03:30');
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

function parseTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new InvalidArgumentError('--timezone', 'unknown IANA time zone (e.g. America/Chicago)');
  }
  return tz;
}

function describe(result: RetentionResult): string[] {
  const lines = Object.entries(result.purged).map(([kind, n]) => `  ${kind}: ${n} purged`);
  if (result.tenantId === undefined) {
    // A full run: the audit trail and incidents' evidence are every tenant's.
    lines.push(`  audit: ${result.auditRowsPurged} rows in ${result.auditSegmentsPurged} segment(s) purged`);
    lines.push(`  evidence: ${result.evidenceFilesPurged} file(s) purged`);
  }
  for (const [kind, holds] of Object.entries(result.heldBy)) lines.push(`  ${kind}: held by ${holds.join(', ')}`);
  return lines;
}

export function registerRetentionCommands(program: Command): void {
  const retention = program.command('retention').description('retention rules by data class, and purges');
  retention
    .command('set')
    .description("set how many days a tenant's data of one class (or kind) is kept")
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption(
      '--class <class>',
      'a data class (records of that class: demographics, labs-vitals, …) or webhook-deliveries, evidence, ' +
        'exports, audit',
    )
    .requiredOption('--days <n>', 'days kept (1-36500)')
    .action(async (opts: { tenant: string; class: string; days: string }) =>
      withContext(async (ctx) => {
        const kind = parseRetentionKind(opts.class);
        const days = parseRetentionDays(opts.days);
        const r = await setRetentionRule(await ctx.db(), { tenantId: opts.tenant, kind, days }, ctx.audit);
        print(`tenant ${opts.tenant}: ${kind} kept ${r.days} days (was ${r.previousDays})`);
      }),
    );
  retention
    .command('show')
    .description("a tenant's retention rules (its own and the defaults)")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--json', 'machine-readable output')
    .action(async (opts: { tenant: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const rules = await showRetentionRules(await ctx.db(), opts.tenant);
        if (opts.json) return printJson(rules);
        table(
          rules.map((r) => ({
            kind: r.kind,
            days: r.effectiveDays === undefined ? r.days : `${r.days} (kept ${r.effectiveDays}: the longest rule)`,
            source: r.source,
            applies: r.resourceTypes ? r.resourceTypes.join(' ') || '-' : '',
          })),
        );
      }),
    );
  retention
    .command('run')
    .description('purge what is past due now (every tenant and the audit trail, or one tenant)')
    .option('--tenant <id>', "only this tenant's records and webhook deliveries")
    .option('--wait', 'wait for the run and print what it purged')
    .action(async (opts: { tenant?: string; wait?: boolean }) =>
      withContext(async (ctx) => {
        const input: RetentionInput = opts.tenant === undefined ? {} : { tenantId: opts.tenant };
        const handle = await (
          await ctx.temporal()
        ).workflow.start('retention', {
          taskQueue: ctx.config.TEMPORAL_TASK_QUEUE,
          workflowId: `retention/${opts.tenant ?? 'all'}/${randomUUID()}`,
          args: [input],
        });
        print(`retention run ${handle.workflowId} started`);
        if (!opts.wait) return;
        const result = (await handle.result()) as RetentionResult;
        print(`retention run completed`);
        for (const line of describe(result)) print(line);
      }),
    );
  retention
    .command('schedule')
    .description('run retention every day at --at (a Temporal Schedule; overlap SKIP, 1 h catch-up)')
    .requiredOption('--at <HH:MM>', 'local time of day')
    .requiredOption('--timezone <Area/City>', 'IANA time zone')
    .action(async (opts: { at: string; timezone: string }) =>
      withContext(async (ctx) => {
        const at = parseAt(opts.at);
        const timezone = parseTimezone(opts.timezone);
        const input: RetentionInput = {};
        const handle = await (
          await ctx.temporal()
        ).schedule.create({
          scheduleId: RETENTION_SCHEDULE_ID,
          spec: { calendars: [{ hour: at.hour, minute: at.minute }], timezone },
          action: {
            type: 'startWorkflow',
            workflowType: 'retention',
            taskQueue: ctx.config.TEMPORAL_TASK_QUEUE,
            workflowId: 'retention/scheduled',
            args: [input],
          },
          policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
        });
        print(`schedule ${handle.scheduleId} created: daily ${opts.at} ${timezone}`);
      }),
    );
}
