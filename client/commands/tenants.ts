import type { Command } from 'commander';
import { createTenant, listTenants } from '../../lib/store/tenants.js';
import { withContext } from '../context.js';
import { print, table } from '../output.js';

export function registerTenantCommands(program: Command): void {
  const tenants = program.command('tenants').description('healthcare organisations using the platform');
  tenants
    .command('add')
    .description('register a tenant')
    .requiredOption('--id <id>', 'tenant id (lowercase letters, digits, hyphens; max 63)')
    .requiredOption('--name <name>', 'display name (max 200 characters)')
    .action(async (opts: { id: string; name: string }) =>
      withContext(async (ctx) => {
        const tenant = await createTenant(await ctx.db(), { id: opts.id, name: opts.name }, ctx.audit);
        print(`tenant ${tenant.id} registered`);
      }),
    );
  tenants
    .command('list')
    .description('list tenants')
    .action(async () =>
      withContext(async (ctx) => {
        const rows = await listTenants(await ctx.db());
        if (rows.length === 0) print('no tenants');
        table(rows.map((t) => ({ id: t.id, name: t.name, created: t.createdAt.toISOString() })));
      }),
    );
}
