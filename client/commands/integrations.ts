import type { Command } from 'commander';
import { PURPOSES } from '../../lib/fhir/classification.js';
import { listIntegrations } from '../../lib/store/integrations.js';
import { readIntegrationHealth } from '../../lib/store/integration-health.js';
import { withContext } from '../context.js';
import { registerIntegration } from '../integrations.js';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { print, printJson, table } from '../output.js';
import { restoreIntegration, revokeIntegration } from '../../lib/vendors/revocation.js';

interface AddOptions {
  id: string;
  tenant: string;
  vendor: string;
  baseUrl?: string;
  types?: string;
  purpose?: string;
  alg: 'ES384' | 'RS384';
  clientId?: string;
}

export function registerIntegrationCommands(program: Command): void {
  const integrations = program.command('integrations').description("a tenant's connections to EHR vendors");
  integrations
    .command('add')
    .description('register an integration: generates its signing key and, for the sandbox, registers it')
    .requiredOption('--id <id>', 'integration id (lowercase letters, digits, hyphens; max 63)')
    .requiredOption('--tenant <tenant>', 'owning tenant id')
    .requiredOption('--vendor <vendor>', 'vendor profile (sandbox, epic, …)')
    .option('--base-url <url>', 'FHIR base URL (default for sandbox: the dev stack sandbox)')
    .option('--purpose <purpose>', `what the data is for, which fixes the allowed resource types and data classes: ${PURPOSES.join(', ')}`, 'clinical-sync')
    .option('--types <list>', "comma-separated resource types the policy allows (default: all the purpose allows; others are refused)")
    .option('--alg <alg>', 'client assertion algorithm: ES384 or RS384', 'ES384')
    .option('--client-id <id>', 'client id assigned by the vendor (required except for sandbox)')
    .action(async (opts: AddOptions) =>
      withContext(async (ctx) => {
        if (opts.alg !== 'ES384' && opts.alg !== 'RS384') throw new Error('--alg must be ES384 or RS384');
        const sandboxUrl = ctx.stack('EHR_SANDBOX_URL');
        const sandboxAdminToken = ctx.stack('EHR_SANDBOX_ADMIN_TOKEN');
        const baseUrl = opts.baseUrl ?? (opts.vendor === 'sandbox' ? ctx.stack('EHR_SANDBOX_FHIR_BASE_URL') : undefined);
        if (!baseUrl) throw new Error('--base-url is required (no running dev stack sandbox to default to)');
        const integration = await registerIntegration(
          await ctx.db(),
          {
            id: opts.id,
            tenantId: opts.tenant,
            vendor: opts.vendor,
            baseUrl,
            resourceTypes: opts.types?.split(',').map((t) => t.trim()).filter(Boolean),
            purpose: opts.purpose,
            alg: opts.alg,
            clientId: opts.clientId,
            secretsDir: ctx.config.EHR_SECRETS_DIR,
            sandboxAdmin: sandboxUrl && sandboxAdminToken ? { url: sandboxUrl, adminToken: sandboxAdminToken } : undefined,
          },
          ctx.audit,
        );
        print(`integration ${integration.id} registered for tenant ${integration.tenantId} for ${integration.purpose}: ${integration.resourceTypes.join(', ')} (client ${integration.clientId}, key ${integration.signingKid})`);
        if (opts.vendor !== 'sandbox') {
          print('Register this public key set with the vendor (or host it as your JWKS URL):');
          printJson({ keys: [integration.publicJwk] });
        }
      }),
    );
  integrations
    .command('revoke <id>')
    .description('revoke an integration now: every worker refuses its vendor calls, running syncs stop at their next call')
    .option('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .action(async (id: string, opts: { reason?: string }) =>
      withContext(async (ctx) => {
        const result = await revokeIntegration(await ctx.db(), id, ctx.audit, { reason: opts.reason });
        print(
          result.alreadyRevoked
            ? `integration ${id} was already revoked (credential generation ${result.generation})`
            : `integration ${id} revoked: credential generation ${result.generation}; ${result.acknowledged}/${result.workers} listening workers confirmed they stopped`,
        );
        if (result.acknowledged < result.workers) process.exitCode = EXIT.failed;
      }),
    );
  integrations
    .command('restore <id>')
    .description('issue fresh credentials (new signing key registered with the vendor) and make a revoked integration active again')
    .action(async (id: string) =>
      withContext(async (ctx) => {
        const sandboxUrl = ctx.stack('EHR_SANDBOX_URL');
        const sandboxAdminToken = ctx.stack('EHR_SANDBOX_ADMIN_TOKEN');
        const restored = await restoreIntegration(await ctx.db(), id, ctx.audit, {
          secretsDir: ctx.config.EHR_SECRETS_DIR,
          sandboxAdmin: sandboxUrl && sandboxAdminToken ? { url: sandboxUrl, adminToken: sandboxAdminToken } : undefined,
        });
        print(`integration ${id} restored: new key ${restored.signingKid}, credential generation ${restored.credentialGeneration}`);
        if (restored.vendor !== 'sandbox') {
          print('Register this public key set with the vendor (the old key must be removed there):');
          printJson({ keys: [restored.publicJwk] });
        }
      }),
    );
  integrations
    .command('list')
    .description('list integrations')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'machine-readable output')
    .action(async (opts: { tenant?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const rows = await listIntegrations(db, opts.tenant);
        // The circuit breaker's last recorded transition (lib/store/integration-health.ts); no row: never opened.
        const health = await readIntegrationHealth(db, rows.map((i) => i.id));
        const view = rows.map((i) => {
          const h = health.get(i.id);
          const breaker = {
            state: h?.breakerState ?? 'closed',
            consecutiveFailures: h?.consecutiveFailures ?? 0,
            retryAt: h?.retryAt?.toISOString() ?? null,
            lastErrorCode: h?.lastErrorCode ?? null,
            since: h?.updatedAt.toISOString() ?? null,
          };
          return { id: i.id, tenant: i.tenantId, vendor: i.vendor, purpose: i.purpose, status: i.status, types: i.resourceTypes.join(','), baseUrl: i.baseUrl, breaker };
        });
        if (opts.json) return printJson(view);
        if (rows.length === 0) print('no integrations');
        table(view.map(({ breaker, ...v }) => ({ ...v, breaker: breakerSummary(breaker) })));
      }),
    );
}

/** `closed`, or e.g. `open until 2026-11-26T14:05:03Z (VENDOR_UNAVAILABLE)`. */
function breakerSummary(b: { state: string; retryAt: string | null; lastErrorCode: string | null }): string {
  if (b.state === 'closed') return 'closed';
  const until = b.state === 'open' && b.retryAt ? ` until ${b.retryAt.replace(/\.\d{3}Z$/, 'Z')}` : '';
  return `${b.state}${until}${b.lastErrorCode ? ` (${b.lastErrorCode})` : ''}`;
}
