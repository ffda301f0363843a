import type { ScheduleHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { getIntegration } from '../../lib/store/integrations.js';
import { withContext } from '../context.js';
import { print, table } from '../output.js';
import { scheduleIdFor, scheduleNightlySync } from '../sync-client.js';

function parseAt(at: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(at);
  if (!m) throw new InvalidArgumentError('--at', 'expected HH:MM in 24-hour time, e.g. 02:00');
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

function parseTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new InvalidArgumentError('--timezone', `unknown IANA time zone ${JSON.stringify(tz.slice(0, 64))} (e.g. America/Chicago)`);
  }
  return tz;
}

export function registerScheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('Temporal Schedules for nightly syncs');
  schedule
    .command('nightly')
    .description('run an integration sync every night (overlap SKIP, 1 h catch-up window)')
    .requiredOption('--integration <id>', 'integration id')
    .requiredOption('--at <HH:MM>', 'local time of day')
    .requiredOption('--timezone <Area/City>', 'IANA time zone')
    .action(async (opts: { integration: string; at: string; timezone: string }) =>
      withContext(async (ctx) => {
        const at = { ...parseAt(opts.at), timezone: parseTimezone(opts.timezone) };
        const integration = await getIntegration(await ctx.db(), opts.integration);
        const handle = await scheduleNightlySync(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, { tenantId: integration.tenantId, integrationId: integration.id, vendor: integration.vendor }, at);
        print(`schedule ${handle.scheduleId} created: daily at ${opts.at} ${at.timezone}`);
      }),
    );
  schedule
    .command('list')
    .description('list schedules')
    .action(async () =>
      withContext(async (ctx) => {
        const rows: Array<Record<string, string>> = [];
        for await (const s of (await ctx.temporal()).schedule.list()) {
          rows.push({ id: s.scheduleId, paused: String(s.state.paused), next: s.info.nextActionTimes[0]?.toISOString() ?? '-', note: s.state.note ?? '' });
        }
        if (rows.length === 0) print('no schedules');
        table(rows);
      }),
    );
  const byIntegration = (name: string, description: string, act: (handle: ScheduleHandle, note: string) => Promise<void>) =>
    schedule
      .command(name)
      .description(description)
      .requiredOption('--integration <id>', 'integration id')
      .action(async (opts: { integration: string }) =>
        withContext(async (ctx) => {
          const integration = await getIntegration(await ctx.db(), opts.integration);
          const id = scheduleIdFor({ tenantId: integration.tenantId, integrationId: integration.id });
          await act((await ctx.temporal()).schedule.getHandle(id), `${name} by ${ctx.audit.actor}`);
          print(`schedule ${id}: ${name} done`);
        }),
      );
  byIntegration('pause', 'pause the nightly schedule', (h, note) => h.pause(note));
  byIntegration('unpause', 'unpause the nightly schedule', (h, note) => h.unpause(note));
  byIntegration('trigger', 'start a run now (overlap policy applies)', (h) => h.trigger());
  byIntegration('delete', 'delete the nightly schedule', (h) => h.delete());
}
