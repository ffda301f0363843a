/**
 * `integrations update`: change an integration's resource types, base URL, token URL, client id, read
 * strategy and options, and Bulk Data file hosts — without new keys — with a reason, audited as
 * `integration.updated` (what changed from what to what, by whom, why).
 *
 * Where requests and credentials go (URLs, client id, file hosts) is written only by the owner's function
 * update_integration_endpoints (the application role cannot UPDATE those columns); it bumps the credential
 * generation, so every worker drops its cached row, tokens and connections at once. Types are checked
 * against the purpose and bump the generation too (cached tokens carry the old scopes); the strategy and
 * its options are the application role's own columns.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { ReadOptions, ReadStrategy, ResourceType } from '../domain.js';
import { InvalidArgumentError, NotFoundError, VendorHttpError } from '../errors/index.js';
import { jwksUrlFor } from '../keys/signing-keys.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { scopesFor } from '../vendors/profiles/adapters.js';
import { profileFor } from '../vendors/profiles/index.js';
import { registerSandboxClient } from '../vendors/sandbox-registration.js';
import type { SandboxAdmin } from '../vendors/sandbox-registration.js';
import { discoverSmartConfiguration } from '../vendors/smart-discovery.js';
import { loadVendorTls } from '../vendors/tls-options.js';
import { parseReadChoice, readChoiceGiven } from './read-choice.js';
import type { ReadChoiceInput } from './read-choice.js';
import {
  parseBaseUrl,
  parseClientId,
  parseEndpointUrl,
  parseFileHosts,
  parseResourceTypes,
} from './registration-input.js';
import type { Integration } from './repository.js';
import { getIntegration } from './repository.js';

export interface IntegrationChange {
  resourceTypes?: string[];
  baseUrl?: string;
  tokenUrl?: string;
  clientId?: string;
  read?: ReadChoiceInput;
  /** Replaces the list; an empty list removes every extra host. */
  bulkFileHosts?: string[];
}

export interface UpdateOptions {
  /** The sandbox's admin endpoint: a change of types re-registers the client's scopes there. */
  sandboxAdmin?: SandboxAdmin;
  jwksPublicUrl?: string;
}

export interface UpdateResult {
  integration: Integration;
  changed: Record<string, { from: unknown; to: unknown }>;
  /** Read options of the previous strategy that no longer apply. */
  droppedOptions: string[];
}

interface Planned {
  endpoints: { baseUrl?: string; tokenUrl?: string; clientId?: string; bulkFileHosts?: string[] };
  resourceTypes?: ResourceType[];
  read?: { strategy: ReadStrategy | null; options: ReadOptions; dropped: string[] };
}

export async function updateIntegration(
  pool: Pool,
  integrationId: string,
  change: IntegrationChange,
  by: { reason: string },
  ctx: AuditContext,
  opts: UpdateOptions = {},
): Promise<UpdateResult> {
  if (!/^[\x20-\x7e]{1,200}$/.test(by.reason))
    throw new InvalidArgumentError('--reason', 'required: 1-200 printable ASCII characters (no PHI)');
  const current = await getIntegration(pool, integrationId);
  const plan = await planChange(current, change);
  if (plan.resourceTypes && opts.sandboxAdmin) await reregisterSandboxScopes(current, plan.resourceTypes, opts);
  return withTransaction(pool, async (client) => {
    const locked = await client.query('SELECT id FROM integrations WHERE id = $1 FOR NO KEY UPDATE', [integrationId]);
    if (locked.rowCount === 0) throw new NotFoundError('integration', integrationId);
    const before = await getIntegration(client, integrationId);
    const changed: UpdateResult['changed'] = {};
    const note = (field: string, from: unknown, to: unknown): void => {
      if (JSON.stringify(from) !== JSON.stringify(to)) changed[field] = { from, to };
    };
    const e = plan.endpoints;
    if (Object.values(e).some((v) => v !== undefined)) {
      // The owner's function checks and writes them (the application role may not UPDATE these columns).
      await client.query('SELECT 1 FROM update_integration_endpoints($1, $2, $3, $4, $5)', [
        integrationId,
        e.baseUrl ?? null,
        e.tokenUrl ?? null,
        e.clientId ?? null,
        e.bulkFileHosts ?? null,
      ]);
    }
    if (plan.resourceTypes) {
      note('resourceTypes', before.resourceTypes, plan.resourceTypes);
      if (changed.resourceTypes) {
        const profile = profileFor(before.vendor);
        note('scopes', scopesFor(profile, before.resourceTypes), scopesFor(profile, plan.resourceTypes));
        // Cached tokens carry the old scopes: a new generation makes every worker drop them.
        await client.query(
          `UPDATE integrations SET resource_types = $2, credential_generation = credential_generation + 1
            WHERE id = $1`,
          [integrationId, plan.resourceTypes],
        );
      }
    }
    if (plan.read) {
      await client.query('UPDATE integrations SET read_strategy = $2, read_options = $3 WHERE id = $1', [
        integrationId,
        plan.read.strategy,
        plan.read.options,
      ]);
    }
    const after = await getIntegration(client, integrationId);
    for (const k of [
      'baseUrl',
      'tokenUrl',
      'clientId',
      'bulkFileHosts',
      'readStrategy',
      'readOptions',
      'status',
    ] as const)
      note(k, before[k], after[k]);
    if (Object.keys(changed).length === 0)
      throw new InvalidArgumentError('update', 'nothing changes: every value given is the current one');
    if (before.credentialGeneration !== after.credentialGeneration)
      note('credentialGeneration', before.credentialGeneration, after.credentialGeneration);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'integration.updated',
        outcome: 'success',
        tenantId: after.tenantId,
        integrationId,
        details: { changed, reason: by.reason },
      },
    ]);
    return { integration: after, changed, droppedOptions: plan.read?.dropped ?? [] };
  });
}

async function planChange(current: Integration, change: IntegrationChange): Promise<Planned> {
  const profile = profileFor(current.vendor);
  const none = current.authMethod === 'none';
  if (none && change.clientId !== undefined)
    throw new InvalidArgumentError('--client-id', 'auth method none has no client');
  if (none && change.tokenUrl !== undefined)
    throw new InvalidArgumentError('--token-url', 'auth method none requests no token');
  const baseUrl = change.baseUrl === undefined ? undefined : parseBaseUrl(change.baseUrl);
  let tokenUrl = change.tokenUrl === undefined ? undefined : parseEndpointUrl(change.tokenUrl, '--token-url');
  // A new base URL is a new server: its token endpoint is discovered again unless given.
  if (baseUrl !== undefined && baseUrl !== current.baseUrl && tokenUrl === undefined && !none)
    tokenUrl = await rediscoverTokenUrl(current, baseUrl);
  const planned: Planned = {
    endpoints: {
      ...(baseUrl !== undefined ? { baseUrl } : {}),
      ...(tokenUrl !== undefined ? { tokenUrl } : {}),
      ...(change.clientId !== undefined ? { clientId: parseClientId(change.clientId) } : {}),
      ...(change.bulkFileHosts !== undefined ? { bulkFileHosts: parseFileHosts(change.bulkFileHosts) } : {}),
    },
  };
  if (change.resourceTypes !== undefined) {
    if (change.resourceTypes.length === 0) throw new InvalidArgumentError('--types', 'at least one resource type');
    planned.resourceTypes = parseResourceTypes(change.resourceTypes, current.purpose);
  }
  if (change.read && readChoiceGiven(change.read)) {
    const read = parseReadChoice(profile, change.read, {
      strategy: current.readStrategy,
      options: current.readOptions,
    });
    planned.read = { strategy: read.strategy, options: read.options, dropped: read.dropped };
  }
  const nothing =
    Object.keys(planned.endpoints).length === 0 && planned.resourceTypes === undefined && planned.read === undefined;
  if (nothing)
    throw new InvalidArgumentError(
      'update',
      'nothing to change (--types, --base-url, --token-url, --client-id, --strategy and its options, ' +
        '--bulk-file-host, --no-bulk-file-hosts, or the settings --sync-interval, --rotation-days)',
    );
  return planned;
}

async function rediscoverTokenUrl(current: Integration, baseUrl: string): Promise<string> {
  const tls = current.tlsRefs ? await loadVendorTls(current.tlsRefs) : undefined;
  const found = await discoverSmartConfiguration(baseUrl, undefined, tls).catch((err: unknown) => {
    if (err instanceof VendorHttpError && err.status === 404) return { tokenEndpoint: undefined };
    throw err;
  });
  if (!found.tokenEndpoint)
    throw new InvalidArgumentError(
      '--token-url',
      'the new base URL publishes no SMART configuration with a token_endpoint: give it with --token-url',
    );
  return found.tokenEndpoint;
}

/** The sandbox grants scopes per registered client: re-register the same credentials with the new ones. */
async function reregisterSandboxScopes(current: Integration, types: ResourceType[], opts: UpdateOptions) {
  const profile = profileFor(current.vendor);
  if (current.authMethod === 'none' || current.clientId === null) return;
  await registerSandboxClient(
    opts.sandboxAdmin!,
    profile,
    {
      authMethod: current.authMethod,
      scopes: scopesFor(profile, types),
      ...(opts.jwksPublicUrl ? { jwksUri: jwksUrlFor(opts.jwksPublicUrl, current.id) } : {}),
      ...(current.publicJwk ? { publicJwk: current.publicJwk } : {}),
      clientSecretRef: current.clientSecretRef,
      ...(current.tlsRefs ? { tls: await loadVendorTls(current.tlsRefs) } : {}),
    },
    { clientId: current.clientId, replace: true },
  );
}
