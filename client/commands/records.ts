import type { Command } from 'commander';
import { countRecords } from '../../lib/store/records.js';
import { withContext } from '../context.js';
import { print, printJson, table } from '../output.js';

export function registerRecordCommands(program: Command): void {
  const records = program.command('records').description('stored (encrypted) records');
  records
    .command('count')
    .description('count stored records per integration and resource type')
    .option('--integration <id>', 'only this integration')
    .option('--tenant <id>', 'only this tenant')
    .option('--json', 'machine-readable output')
    .action(async (opts: { integration?: string; tenant?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const rows = await countRecords(await ctx.db(), { integrationId: opts.integration, tenantId: opts.tenant });
        if (opts.json) return printJson(rows);
        if (rows.length === 0) return print('no records');
        table(
          rows.map((r) => ({
            tenant: r.tenantId,
            integration: r.integrationId,
            type: r.resourceType,
            records: r.count,
          })),
        );
        print(`total ${rows.reduce((n, r) => n + r.count, 0)}`);
      }),
    );
}
