import type { Command } from 'commander';
import { listLegalHolds, placeLegalHold, releaseLegalHold } from '../../lib/retention/holds.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

export function registerHoldCommands(program: Command): void {
  const holds = program
    .command('holds')
    .description("legal holds: while one stands, nothing in its scope is purged (incidents' holds included)");
  holds
    .command('place')
    .description('place a legal hold on a scope')
    .requiredOption('--scope <scope>', 'tenant:T, integration:I, vendor:V or all')
    .requiredOption('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .action(async (opts: { scope: string; reason: string }) =>
      withContext(async (ctx) => {
        const hold = await placeLegalHold(await ctx.db(), opts, ctx.audit);
        print(`legal hold ${hold.id} placed on ${hold.scope}`);
      }),
    );
  holds
    .command('release <id>')
    .description('release a legal hold placed with `holds place`')
    .requiredOption('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .action(async (id: string, opts: { reason: string }) =>
      withContext(async (ctx) => {
        const hold = await releaseLegalHold(await ctx.db(), { id, reason: opts.reason }, ctx.audit);
        print(`legal hold ${hold.id} on ${hold.scope} released`);
      }),
    );
  holds
    .command('list')
    .description("standing legal holds (with --all, released ones too), and incidents' legal holds")
    .option('--all', 'include released holds')
    .option('--json', 'machine-readable output')
    .action(async (opts: { all?: boolean; json?: boolean }) =>
      withContext(async (ctx) => {
        const { manual, incidents } = await listLegalHolds(await ctx.db(), { all: opts.all === true });
        if (opts.json) return printJson({ manual, incidents });
        const rows = [
          ...manual.map((h) => ({
            id: h.id,
            scope: h.scope,
            placed: h.placedAt,
            released: h.releasedAt ?? '-',
            reason: h.reason,
          })),
          ...incidents.map((h) => ({ id: h.id, scope: h.scope, placed: '-', released: '-', reason: 'incident' })),
        ];
        if (rows.length === 0) return print('no legal holds');
        table(rows);
      }),
    );
}
