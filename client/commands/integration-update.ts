/**
 * `ehrctl integrations update <id>`: with a reason, audited. Settings (--sync-interval, --rotation-days) go
 * through lib/integrations/settings.ts; types, URLs, client id, read strategy and options and Bulk Data file
 * hosts through lib/integrations/update.ts (no new keys; caches in every worker are dropped).
 */
import { ScheduleNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { jwksPublicBaseUrl } from '../../lib/integrations/onboarding.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { effectiveSettings, updateIntegrationSettings } from '../../lib/integrations/settings.js';
import { updateIntegration } from '../../lib/integrations/update.js';
import type { IntegrationChange } from '../../lib/integrations/update.js';
import { scheduleIdFor } from '../../lib/domain.js';
import { withContext } from '../context.js';
import { devSandboxAdminFor } from '../dev-sandboxes.js';
import { print } from '../output.js';
import type { ReadFlags } from './read-flags.js';
import { readInput, withReadFlags } from './read-flags.js';

interface UpdateFlags extends ReadFlags {
  syncInterval?: string;
  rotationDays?: string;
  types?: string;
  baseUrl?: string;
  tokenUrl?: string;
  clientId?: string;
  clearBulkFileHosts?: boolean;
  reason: string;
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

function changeOf(opts: UpdateFlags): IntegrationChange {
  if (opts.clearBulkFileHosts && opts.bulkFileHost.length > 0)
    throw new InvalidArgumentError('--clear-bulk-file-hosts', 'not together with --bulk-file-host');
  const read = readInput(opts);
  return {
    ...(opts.types !== undefined
      ? {
          resourceTypes: opts.types
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean),
        }
      : {}),
    ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}),
    ...(opts.tokenUrl !== undefined ? { tokenUrl: opts.tokenUrl } : {}),
    ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
    ...(Object.keys(read).length > 0 ? { read } : {}),
    ...(opts.bulkFileHost.length > 0 ? { bulkFileHosts: opts.bulkFileHost } : {}),
    ...(opts.clearBulkFileHosts ? { bulkFileHosts: [] } : {}),
  };
}

const show = (v: unknown): string =>
  v === null || v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v);

export function registerIntegrationUpdateCommand(integrations: Command): void {
  const update = integrations
    .command('update <id>')
    .description(
      'change an integration (audited, with the reason): its settings, resource types, base URL, token URL, ' +
        'client id, read strategy and options, Bulk Data file hosts — without new keys',
    )
    .option(
      '--sync-interval <hours>',
      'hours between scheduled syncs: 1h|2h|3h|4h|6h|8h|12h|24h (the default of `schedule nightly`)',
    )
    .option('--rotation-days <n>', 'client secrets: days between rotations (1-730)')
    .option('--types <list>', 'comma-separated resource types (within the purpose; the vendor must grant the scopes)')
    .option('--base-url <url>', 'the FHIR base URL (its token endpoint is discovered again unless --token-url)')
    .option('--token-url <url>', 'the token endpoint (a server without .well-known/smart-configuration)')
    .option('--client-id <id>', 'the client id the vendor issued (a pending integration becomes active)')
    .option('--clear-bulk-file-hosts', 'remove every extra Bulk Data file host');
  withReadFlags(update)
    .requiredOption('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .action(async (id: string, opts: UpdateFlags) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const settings = {
          ...(opts.syncInterval !== undefined ? { syncIntervalHours: parseHours(opts.syncInterval) } : {}),
          ...(opts.rotationDays !== undefined ? { credentialRotationDays: parseDays(opts.rotationDays) } : {}),
        };
        const change = changeOf(opts);
        const hasSettings = Object.keys(settings).length > 0;
        if (Object.keys(change).length > 0 || !hasSettings) {
          const current = await getIntegration(db, id);
          const result = await updateIntegration(db, id, change, { reason: opts.reason }, ctx.audit, {
            sandboxAdmin: devSandboxAdminFor(ctx, change.baseUrl ?? current.baseUrl),
            jwksPublicUrl: jwksPublicBaseUrl(ctx.config),
          });
          print(`integration ${id} updated:`);
          for (const [field, { from, to }] of Object.entries(result.changed))
            print(`  ${field}: ${show(from)} → ${show(to)}`);
          if (result.droppedOptions.length > 0)
            print(`  dropped read options that no longer apply: ${result.droppedOptions.join(', ')}`);
          if (result.changed.scopes)
            print("  the vendor's client registration must grant: " + show(result.changed.scopes.to));
        }
        if (!hasSettings) return;
        const updated = await updateIntegrationSettings(db, id, settings, { reason: opts.reason }, ctx.audit);
        const s = effectiveSettings(updated);
        print(
          `integration ${id}: sync every ${s.syncIntervalHours} h, ` +
            `secret rotation ${s.credentialRotationDays === null ? 'none' : `every ${s.credentialRotationDays} days`}`,
        );
        if (settings.syncIntervalHours === undefined) return;
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
}
