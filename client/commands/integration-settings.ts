/**
 * `ehrctl integrations show | update | due`: an integration with what the vendor's registration form needs
 * (JWKS URL, public key), its compensating controls as its own settings — set at registration from the
 * vendor profile, changed only with a reason (audited; `update` in ./integration-update.ts) — and the
 * credentials due for rotation.
 */
import type { Command } from 'commander';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { credentialDue, credentialsDue, effectiveSettings } from '../../lib/integrations/settings.js';
import { jwksPublicBaseUrl, onboardingLines, vendorNeeds } from '../../lib/integrations/onboarding.js';
import { readStrategyOf } from '../../lib/sync/read-strategy.js';
import type { CredentialDue, EffectiveSettings } from '../../lib/integrations/settings.js';
import type { Integration } from '../../lib/integrations/repository.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { compensatingControls } from '../../lib/vendors/profiles/compensating.js';
import { profileFor } from '../../lib/vendors/profiles/index.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';
import { registerIntegrationUpdateCommand } from './integration-update.js';

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
        const jwks = jwksPublicBaseUrl(ctx.config);
        const read = readStrategyOf(i);
        if (opts.json) {
          const { publicJwk: _jwk, ...rest } = i;
          return printJson({
            ...rest,
            vendorRegistration: vendorNeeds(i, jwks),
            read: { strategy: read.strategy, overlapSeconds: read.overlapSeconds, options: read.options },
            settings,
            credential: { ...due, dueAt: due.dueAt?.toISOString() ?? null },
            compensatingControls: controls,
          });
        }
        print(`integration ${i.id}: ${i.status}, tenant ${i.tenantId}, vendor ${i.vendor}, purpose ${i.purpose}`);
        print(`types: ${i.resourceTypes.join(', ')}; base URL ${i.baseUrl}; token URL ${i.tokenUrl ?? '-'}`);
        const how = i.readStrategy ? 'set for this integration' : `the ${i.vendor} profile's default`;
        const opt = Object.keys(read.options).length > 0 ? `, options ${JSON.stringify(read.options)}` : '';
        print(`read strategy: ${read.strategy} (${how}), overlap ${read.overlapSeconds} s${opt}`);
        if (i.bulkFileHosts.length > 0) print(`bulk file hosts: ${i.bulkFileHosts.join(', ')}`);
        if (i.authMethod === 'none')
          print('WARNING: auth method none — requests carry no credential (acknowledged at registration, audited)');
        print('vendor registration:');
        for (const line of onboardingLines(i, jwks)) print(`  ${line}`);
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
  registerIntegrationUpdateCommand(integrations);
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
