import type { Command } from 'commander';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import { PURPOSES } from '../../lib/fhir/classification.js';
import { getIntegration, listIntegrations } from '../../lib/integrations/repository.js';
import { readIntegrationHealth } from '../../lib/integrations/health.js';
import { withContext } from '../context.js';
import { devBaseUrlFor, devSandboxAdminFor } from '../dev-sandboxes.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { jwksPublicBaseUrl, onboardingLines, vendorNeeds } from '../../lib/integrations/onboarding.js';
import type { ReadFlags } from './read-flags.js';
import { readInput, withReadFlags } from './read-flags.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import type { VendorTlsRefs } from '../../lib/vendors/tls-options.js';
import { EXIT } from '../../lib/errors/exit-codes.js';
import { print, printJson, table } from '../output.js';
import { restoreIntegration } from '../../lib/revocation/restore.js';
import { revokeIntegration } from '../../lib/revocation/revoke.js';
import { registerIntegrationSettingsCommands } from './integration-settings.js';

interface AddOptions extends ReadFlags {
  id: string;
  tenant: string;
  vendor: string;
  baseUrl?: string;
  types?: string;
  purpose?: string;
  alg?: 'ES384' | 'RS384';
  clientId?: string;
  tokenUrl?: string;
  authMethod?: string;
  acknowledgeUnauthenticatedServer?: boolean;
  clientSecretRef?: string;
  tlsCaRef?: string;
  tlsCertRef?: string;
  tlsKeyRef?: string;
  param: string[];
}

/** `--param key=value`, repeatable. */
function collectParam(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseParams(values: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError('--param', 'use key=value');
    params[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return params;
}

function tlsRefs(opts: { tlsCaRef?: string; tlsCertRef?: string; tlsKeyRef?: string }): VendorTlsRefs | undefined {
  const refs: VendorTlsRefs = {
    ...(opts.tlsCaRef ? { caRef: opts.tlsCaRef } : {}),
    ...(opts.tlsCertRef ? { clientCertRef: opts.tlsCertRef } : {}),
    ...(opts.tlsKeyRef ? { clientKeyRef: opts.tlsKeyRef } : {}),
  };
  return Object.keys(refs).length > 0 ? refs : undefined;
}

/**
 * The dev stack's sandbox admin endpoint, when the integration's base URL is one of its sandboxes (any
 * personality).
 */
const sandboxAdminFor = devSandboxAdminFor;

/** Our hosted JWKS as vendors reach it (the dev stack sets JWKS_PUBLIC_URL); none: print the public JWK. */
function jwksPublicUrl(ctx: { config: { JWKS_PUBLIC_URL?: string; JWKS_LISTEN?: string } }): string | undefined {
  return jwksPublicBaseUrl(ctx.config);
}

export function registerIntegrationCommands(program: Command): void {
  const integrations = program.command('integrations').description("a tenant's connections to EHR vendors");
  const add = integrations
    .command('add')
    .description(
      'register an integration: prepares its credentials for the auth method and, ' +
        'for a sandbox vendor, registers the client there',
    )
    .requiredOption('--id <id>', 'integration id (lowercase letters, digits, hyphens; max 63)')
    .requiredOption('--tenant <tenant>', 'owning tenant id')
    .requiredOption('--vendor <vendor>', 'vendor profile (sandbox, epic, …)')
    .option('--base-url <url>', "FHIR base URL (default: the dev stack's sandbox for that vendor)")
    .option(
      '--purpose <purpose>',
      `what the data is for, which fixes the allowed resource types and data classes: ${PURPOSES.join(', ')}`,
      'clinical-sync',
    )
    .option(
      '--types <list>',
      `comma-separated resource types the policy allows (default: all the purpose allows; others are refused): ` +
        RESOURCE_TYPES.join(', '),
    )
    .option(
      '--alg <alg>',
      'client assertion algorithm for private_key_jwt: ES384 or RS384 (default: ES384 where the vendor accepts it)',
    )
    .option(
      '--client-id <id>',
      'client id assigned by the vendor; without it (real vendors) the integration waits as pending-client-id',
    )
    .option('--token-url <url>', 'the token endpoint, for a server without .well-known/smart-configuration')
    .option(
      '--auth-method <method>',
      "token endpoint authentication (default: the vendor profile's preferred method); " +
        'none: an open server (https or loopback only, with --acknowledge-unauthenticated-server)',
    )
    .option(
      '--acknowledge-unauthenticated-server',
      'with --auth-method none: the server is open and on a network the organisation controls (audited)',
    )
    .option(
      '--client-secret-ref <ref>',
      'client_secret_basic/post: where the secret lives (file:<path> 0600 or env:<VAR>)',
    )
    .option('--tls-ca-ref <ref>', "the vendor's CA certificate(s) (file:/env:)")
    .option('--tls-cert-ref <ref>', 'our client certificate for mTLS / tls_client_auth (file:/env:)')
    .option('--tls-key-ref <ref>', "the client certificate's private key (file:<path> 0600 or env:<VAR>)")
    .option(
      '--param <key=value>',
      'a vendor parameter such as an athenahealth practice id (repeatable)',
      collectParam,
      [],
    );
  withReadFlags(add).action(async (opts: AddOptions) =>
    withContext(async (ctx) => {
      if (opts.alg !== undefined && opts.alg !== 'ES384' && opts.alg !== 'RS384')
        throw new Error('--alg must be ES384 or RS384');
      const baseUrl = opts.baseUrl ?? devBaseUrlFor(ctx, opts.vendor);
      if (!baseUrl)
        throw new InvalidArgumentError(
          '--base-url',
          `required (no running dev stack sandbox for vendor ${opts.vendor} to default to)`,
        );
      const integration = await registerIntegration(
        await ctx.db(),
        {
          id: opts.id,
          tenantId: opts.tenant,
          vendor: opts.vendor,
          baseUrl,
          resourceTypes: opts.types
            ?.split(',')
            .map((t) => t.trim())
            .filter(Boolean),
          purpose: opts.purpose,
          alg: opts.alg,
          clientId: opts.clientId,
          ...(opts.tokenUrl !== undefined ? { tokenUrl: opts.tokenUrl } : {}),
          ...(opts.acknowledgeUnauthenticatedServer ? { acknowledgeUnauthenticatedServer: true } : {}),
          read: readInput(opts),
          bulkFileHosts: opts.bulkFileHost,
          secretsDir: ctx.config.EHR_SECRETS_DIR,
          sandboxAdmin: sandboxAdminFor(ctx, baseUrl),
          authMethod: opts.authMethod,
          clientSecretRef: opts.clientSecretRef,
          tlsRefs: tlsRefs(opts),
          vendorParams: parseParams(opts.param),
          jwksPublicUrl: jwksPublicUrl(ctx),
        },
        ctx.audit,
      );
      const credential = integration.signingKid ? `key ${integration.signingKid}` : integration.authMethod;
      print(
        `integration ${integration.id} registered for tenant ${integration.tenantId} for ` +
          `${integration.purpose}: ` +
          `${integration.resourceTypes.join(', ')} (client ${integration.clientId ?? 'pending'}, ${credential})`,
      );
      if (integration.authMethod === 'none')
        print('WARNING: auth method none — requests carry no credential (acknowledged; recorded in the audit trail)');
      if (!sandboxAdminFor(ctx, baseUrl)) {
        print('For the vendor’s client registration:');
        for (const line of onboardingLines(integration, jwksPublicUrl(ctx))) print(`  ${line}`);
      }
    }),
  );
  integrations
    .command('revoke <id>')
    .description(
      'revoke an integration now: every worker refuses its vendor calls, running syncs stop at their next call',
    )
    .option('--reason <text>', 'why (recorded in the audit trail; no PHI)')
    .action(async (id: string, opts: { reason?: string }) =>
      withContext(async (ctx) => {
        const result = await revokeIntegration(await ctx.db(), id, ctx.audit, { reason: opts.reason });
        print(
          result.alreadyRevoked
            ? `integration ${id} was already revoked (credential generation ${result.generation})`
            : `integration ${id} revoked: credential generation ${result.generation}; ` +
                `${result.acknowledged}/${result.workers} listening workers confirmed they stopped`,
        );
        if (result.acknowledged < result.workers) process.exitCode = EXIT.failed;
      }),
    );
  integrations
    .command('restore <id>')
    .description(
      'issue fresh credentials (a new signing key, or the rotated secret/certificate you name) ' +
        'and make a revoked integration active again',
    )
    .option(
      '--client-secret-ref <ref>',
      'client_secret_basic/post: the reference of the secret the vendor issued after rotation (required)',
    )
    .option('--tls-cert-ref <ref>', 'tls_client_auth: the new client certificate (required with --tls-key-ref)')
    .option('--tls-key-ref <ref>', "tls_client_auth: the new certificate's private key")
    .action(async (id: string, opts: { clientSecretRef?: string; tlsCertRef?: string; tlsKeyRef?: string }) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const current = await getIntegration(db, id);
        const restored = await restoreIntegration(db, id, ctx.audit, {
          secretsDir: ctx.config.EHR_SECRETS_DIR,
          sandboxAdmin: sandboxAdminFor(ctx, current.baseUrl),
          jwksPublicUrl: jwksPublicUrl(ctx),
          ...(opts.clientSecretRef ? { clientSecretRef: opts.clientSecretRef } : {}),
          ...(opts.tlsCertRef || opts.tlsKeyRef ? { tlsRefs: { ...current.tlsRefs, ...tlsRefs(opts) } } : {}),
        });
        const credential = restored.signingKid
          ? `new key ${restored.signingKid}`
          : `new ${restored.authMethod} credentials`;
        print(`integration ${id} restored: ${credential}, credential generation ${restored.credentialGeneration}`);
        if (!sandboxAdminFor(ctx, restored.baseUrl)) {
          print('Give the vendor this client registration (remove the old credential there):');
          printJson(vendorNeeds(restored, jwksPublicUrl(ctx)));
        }
      }),
    );
  registerIntegrationSettingsCommands(integrations);
  integrations
    .command('list')
    .description('list integrations')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'machine-readable output')
    .action(async (opts: { tenant?: string; json?: boolean }) =>
      withContext(async (ctx) => {
        const db = await ctx.db();
        const rows = await listIntegrations(db, opts.tenant);
        // The circuit breaker's last recorded transition (lib/integrations/health.ts); no row: never opened.
        const health = await readIntegrationHealth(
          db,
          rows.map((i) => i.id),
        );
        const view = rows.map((i) => {
          const h = health.get(i.id);
          const breaker = {
            state: h?.breakerState ?? 'closed',
            consecutiveFailures: h?.consecutiveFailures ?? 0,
            retryAt: h?.retryAt?.toISOString() ?? null,
            lastErrorCode: h?.lastErrorCode ?? null,
            since: h?.updatedAt.toISOString() ?? null,
          };
          return {
            id: i.id,
            tenant: i.tenantId,
            vendor: i.vendor,
            purpose: i.purpose,
            status: i.status,
            types: i.resourceTypes.join(','),
            baseUrl: i.baseUrl,
            breaker,
          };
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
