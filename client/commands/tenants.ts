import type { Command } from 'commander';
import { createTenant, listTenants } from '../../lib/store/tenants.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { shredTenantKeys } from '../../lib/keys/tenant-keys.js';
import { revokeTenant } from '../../lib/revocation/revoke.js';
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
    .command('revoke <id>')
    .description('revoke a tenant and every one of its integrations')
    .option('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .action(async (id: string, opts: { reason?: string }) =>
      withContext(async (ctx) => {
        const results = await revokeTenant(await ctx.db(), id, ctx.audit, { reason: opts.reason });
        print(
          `tenant ${id} revoked; integrations revoked: ` +
            `${results.length === 0 ? 'none' : results.map((r) => r.integrationId).join(', ')}`,
        );
      }),
    );
  tenants
    .command('shred <id>')
    .description(
      'crypto-shred a revoked tenant: destroy every data key and its pseudonym key, so its stored records and ' +
        'the pseudonyms in the audit trail can never be read or linked again; refused while a legal hold covers it',
    )
    .requiredOption('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .requiredOption('--confirm <id>', 'the tenant id again: there is no undo')
    .action(async (id: string, opts: { reason: string; confirm: string }) =>
      withContext(async (ctx) => {
        if (opts.confirm !== id) throw new InvalidArgumentError('--confirm', 'must repeat the tenant id exactly');
        const db = await ctx.db();
        const { destroyed } = await shredTenantKeys(db, id, ctx.audit, { requireRevoked: true, reason: opts.reason });
        print(
          destroyed.length === 0
            ? `tenant ${id}: no data key left to destroy`
            : `tenant ${id} crypto-shredded: data key versions ${destroyed.join(', ')} destroyed`,
        );
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
