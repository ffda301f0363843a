/**
 * `ehrctl integrations show | update | due`: an integration's compensating controls as its own
 * settings — set at registration from the vendor profile, changed only with a reason (audited) —
 * and the credentials due for rotation.
 */
import { ScheduleNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import {
  credentialDue,
  credentialsDue,
  effectiveSettings,
  updateIntegrationSettings,
} from '../../lib/integrations/settings.js';
import type { CredentialDue, EffectiveSettings } from '../../lib/integrations/settings.js';
import type { Integration } from '../../lib/integrations/repository.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { compensatingControls } from '../../lib/vendors/profiles/compensating.js';
import { profileFor } from '../../lib/vendors/profiles/index.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';
import { scheduleIdFor } from '../../lib/domain.js';

const day = (d: Date | null): string => (d ? d.toISOString().slice(0, 10) : '-');

function dueText(d: CredentialDue): string {
  if (d.dueAt === null)
    return d.authMethod === 'private_key_jwt'
      ? 'signing key: rotate with `ehrctl keys rotate --signing-key` or a keys schedule'
      : 'certificate: rotates with its issuer';
  const when = d.overdue ? `OVERDUE since ${day(d.dueAt)}` : `due ${day(d.dueAt)} (${d.daysLeft} days)`;
  return `last rotated ${day(d.rotatedAt)}, ${when}`;
}

function sourceText(i: Integration, s: EffectiveSettings, key: 'syncIntervalHours' | 'credentialRotationDays'): string {
  const o = i.settingsOverrides[key];
  if (o) return `override by ${o.by} at ${o.at.slice(0, 19)}Z (was ${o.from ?? 'none'}): ${o.reason}`;
  return s.sources[key] === 'profile'
    ? `the ${i.vendor} profile (registered before settings were stored)`
    : `the ${i.vendor} profile at registration`;
}

/** `12h` or `12` → 12. */
function parseHours(value: string): number {
  const m = /^(\d{1,2})h?$/.exec(value);
  if (!m) throw new InvalidArgumentError('--sync-interval', 'hours, e.g. 6h');
  return Number(m[1]);
}

function parseDays(value: string): number {
  if (!/^\d{1,3}$/.test(value)) throw new InvalidArgumentError('--rotation-days', 'a whole number of days, e.g. 90');
  return Number(value);
}

export function registerIntegrationSettingsCommands(integrations: Command): void {
  integrations
    .command('show <id>')
    .description(
      "one integration: status, credentials, its settings (from the vendor's compensating controls) " +
        'and when its credential is due',
    )
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) =>
      withContext(async (ctx) => {
        const i = await getIntegration(await ctx.db(), id);
        const settings = effectiveSettings(i);
        const due = credentialDue(i);
        const controls = compensatingControls(profileFor(i.vendor));
        if (opts.json) {
          const { publicJwk: _jwk, ...rest } = i;
          return printJson({
            ...rest,
            settings,
            credential: { ...due, dueAt: due.dueAt?.toISOString() ?? null },
            compensatingControls: controls,
          });
        }
        print(`integration ${i.id}: ${i.status}, tenant ${i.tenantId}, vendor ${i.vendor}, purpose ${i.purpose}`);
        print(`types: ${i.resourceTypes.join(', ')}; base URL ${i.baseUrl}; client ${i.clientId}`);
        print(
          `credential: ${i.authMethod}${i.signingKid ? ` (key ${i.signingKid})` : ''}, ` +
            `generation ${i.credentialGeneration}; ${dueText(due)}`,
        );
        const intervalSource = sourceText(i, settings, 'syncIntervalHours');
        print(`sync interval: every ${settings.syncIntervalHours} h — ${intervalSource}`);
        const rotation =
          settings.credentialRotationDays === null
            ? 'none (not a client secret)'
            : `every ${settings.credentialRotationDays} days`;
        print(`secret rotation: ${rotation} — ${sourceText(i, settings, 'credentialRotationDays')}`);
        print('audit retention: not a setting; audit rows are never deleted');
        if (controls.length > 0) {
          print(`compensating controls for ${i.vendor}:`);
          table(controls.map((c) => ({ weakness: c.weakness, control: c.control, setting: c.setting })));
        }
      }),
    );
  integrations
    .command('update <id>')
    .description('change a setting away from its registration default (audited, with the reason)')
    .option(
      '--sync-interval <hours>',
      'hours between scheduled syncs: 1h|2h|3h|4h|6h|8h|12h|24h (the default of `schedule nightly`)',
    )
    .option('--rotation-days <n>', 'client secrets: days between rotations (1-730)')
    .requiredOption('--reason <text>', 'why the default does not fit (recorded in the audit trail; no PHI)')
    .action(async (id: string, opts: { syncInterval?: string; rotationDays?: string; reason: string }) =>
      withContext(async (ctx) => {
        const change = {
          ...(opts.syncInterval !== undefined ? { syncIntervalHours: parseHours(opts.syncInterval) } : {}),
          ...(opts.rotationDays !== undefined ? { credentialRotationDays: parseDays(opts.rotationDays) } : {}),
        };
        const updated = await updateIntegrationSettings(await ctx.db(), id, change, { reason: opts.reason }, ctx.audit);
        const s = effectiveSettings(updated);
        print(
          `integration ${id}: sync every ${s.syncIntervalHours} h, ` +
            `secret rotation ${s.credentialRotationDays === null ? 'none' : `every ${s.credentialRotationDays} days`}`,
        );
        if (change.syncIntervalHours === undefined) return;
        // An existing schedule keeps its calendar: say so rather than leave two intervals in silence.
        const scheduleId = scheduleIdFor({ tenantId: updated.tenantId, integrationId: id });
        const exists = await (
          await ctx.temporal()
        ).schedule
          .getHandle(scheduleId)
          .describe()
          .then(
            () => true,
            (err: unknown) => (err instanceof ScheduleNotFoundError ? false : Promise.reject(err)),
          );
        if (exists)
          print(
            `schedule ${scheduleId} still runs on its old calendar: \`ehrctl schedule delete\`, ` +
              `then \`schedule nightly\` to follow the new interval`,
          );
      }),
    );
  integrations
    .command('due')
    .description('client secrets overdue for rotation or due soon (exit 1 when one is overdue)')
    .option('--within-days <n>', 'also list those due within this many days', '14')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'machine-readable output')
    .action(async (opts: { withinDays: string; tenant?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        if (!/^\d{1,4}$/.test(opts.withinDays))
          throw new InvalidArgumentError('--within-days', 'a whole number of days');
        const due = await credentialsDue(await ctx.db(), Number(opts.withinDays), opts.tenant);
        if (due.some((d) => d.overdue)) process.exitCode = EXIT.failed;
        const rows = due.map((d) => ({
          integration: d.integrationId,
          tenant: d.tenantId,
          authMethod: d.authMethod,
          rotatedAt: d.rotatedAt.toISOString(),
          dueAt: d.dueAt!.toISOString(),
          overdue: d.overdue,
        }));
        if (opts.json) return printJson(rows);
        if (rows.length === 0) return print(`no client secret is due within ${opts.withinDays} days`);
        table(rows.map((r) => ({ ...r, overdue: r.overdue ? 'OVERDUE' : '' })));
      }),
    );
}
