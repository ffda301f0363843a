import type { ScheduleHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { assertResumptionAllowed } from '../../lib/incidents/holds.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { SYNC_INTERVAL_HOURS, recommendedSettings } from '../../lib/vendors/profiles/compensating.js';
import { effectiveSettings } from '../../lib/integrations/settings.js';
import { profileFor } from '../../lib/vendors/profiles/index.js';
import { withContext } from '../context.js';
import { print, table } from '../output.js';
import { scheduleIdFor } from '../../lib/domain.js';
import { scheduleNightlySync } from '../sync-client.js';

export function parseAt(at: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(at);
  if (!m) throw new InvalidArgumentError('--at', 'expected HH:MM in 24-hour time, e.g. 02:00');
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

export function parseTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new InvalidArgumentError(
      '--timezone',
      `unknown IANA time zone ${JSON.stringify(tz.slice(0, 64))} (e.g. America/Chicago)`,
    );
  }
  return tz;
}

export { SYNC_INTERVAL_HOURS };

/**
 * `--every`: absent — the integration's sync interval (set at registration from its vendor's
 * compensating controls, e.g. 6 h for a vendor without push; `integrations update --sync-interval`
 * changes it); `nightly` (once a day); `profile` (the vendor profile's recommended interval); or
 * `<N>h` with N dividing 24.
 */
export function parseEvery(every: string | undefined): { hours: number } | 'profile' | 'integration' {
  if (every === undefined) return 'integration';
  if (every === 'profile') return 'profile';
  if (every === 'nightly') return { hours: 24 };
  const m = /^(\d{1,2})h$/.exec(every);
  const hours = m ? Number(m[1]) : NaN;
  if (!(SYNC_INTERVAL_HOURS as readonly number[]).includes(hours)) {
    throw new InvalidArgumentError(
      '--every',
      `use nightly, profile, or hours that divide a day: ${SYNC_INTERVAL_HOURS.map((h) => `${h}h`).join(', ')}`,
    );
  }
  return { hours };
}

export function intervalHoursFor(
  every: { hours: number } | 'profile' | 'integration',
  vendor: string,
  integrationHours?: number,
): number {
  if (every === 'integration' && integrationHours !== undefined) return integrationHours;
  return every === 'profile' || every === 'integration'
    ? recommendedSettings(profileFor(vendor)).syncIntervalHours
    : every.hours;
}

export function registerScheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('Temporal Schedules for nightly syncs');
  schedule
    .command('nightly')
    .description(
      "run an integration's sync from --at every its sync interval (integrations show; " +
        'once a night unless set otherwise), overlap SKIP, 1 h catch-up',
    )
    .requiredOption('--integration <id>', 'integration id')
    .requiredOption('--at <HH:MM>', 'local time of day')
    .requiredOption('--timezone <Area/City>', 'IANA time zone')
    .option(
      '--every <interval>',
      "default: the integration's sync interval (integrations show); or nightly, profile, 1h|2h|3h|4h|6h|8h|12h|24h",
    )
    .action(async (opts: { integration: string; at: string; timezone: string; every?: string }) =>
      withContext(async (ctx) => {
        const every = parseEvery(opts.every);
        const at = { ...parseAt(opts.at), timezone: parseTimezone(opts.timezone) };
        const integration = await getIntegration(await ctx.db(), opts.integration);
        const everyHours = intervalHoursFor(
          every,
          integration.vendor,
          effectiveSettings(integration).syncIntervalHours,
        );
        const target = { tenantId: integration.tenantId, integrationId: integration.id, vendor: integration.vendor };
        const handle = await scheduleNightlySync(await ctx.temporal(), ctx.config.TEMPORAL_TASK_QUEUE, target, {
          ...at,
          everyHours,
        });
        const source =
          every === 'profile'
            ? ` (the ${integration.vendor} profile's interval)`
            : every === 'integration'
              ? " (the integration's sync interval)"
              : '';
        print(
          `schedule ${handle.scheduleId} created: ` +
            `${everyHours === 24 ? 'daily' : `every ${everyHours} h from`} ${opts.at} ${at.timezone}${source}`,
        );
      }),
    );
  schedule
    .command('list')
    .description('list schedules')
    .action(async () =>
      withContext(async (ctx) => {
        const rows: Array<Record<string, string>> = [];
        for await (const s of (await ctx.temporal()).schedule.list()) {
          rows.push({
            id: s.scheduleId,
            paused: String(s.state.paused),
            next: s.info.nextActionTimes[0]?.toISOString() ?? '-',
            note: s.state.note ?? '',
          });
        }
        if (rows.length === 0) print('no schedules');
        table(rows);
      }),
    );
  /** `resumes`: starting syncs again is the incident's to decide while a hold covers the integration. */
  const byIntegration = (
    name: string,
    description: string,
    act: (handle: ScheduleHandle, note: string) => Promise<void>,
    resumes = false,
  ) =>
    schedule
      .command(name)
      .description(description)
      .requiredOption('--integration <id>', 'integration id')
      .action(async (opts: { integration: string }) =>
        withContext(async (ctx) => {
          const integration = await getIntegration(await ctx.db(), opts.integration);
          if (resumes) await assertResumptionAllowed(await ctx.db(), `schedule ${name}`, integration.id);
          const id = scheduleIdFor({ tenantId: integration.tenantId, integrationId: integration.id });
          await act((await ctx.temporal()).schedule.getHandle(id), `${name} by ${ctx.audit.actor}`);
          print(`schedule ${id}: ${name} done`);
        }),
      );
  byIntegration('pause', 'pause the nightly schedule', (h, note) => h.pause(note));
  byIntegration('unpause', 'unpause the nightly schedule', (h, note) => h.unpause(note), true);
  byIntegration('trigger', 'start a run now (overlap policy applies)', (h) => h.trigger(), true);
  byIntegration('delete', 'delete the nightly schedule', (h) => h.delete());
}
