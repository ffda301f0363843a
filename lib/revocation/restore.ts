/**
 * The way back from a revocation: fresh credentials for the integration's auth method, registered
 * with a sandbox vendor when there is one, and the integration active again under a new credential
 * generation — refused while an incident holds it (except the incident's own approved recovery).
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { checkSecretRef } from '../config/secrets.js';
import { tlsRefFields } from '../config/stored-secret-refs.js';
import { ConflictError, InvalidArgumentError } from '../errors/index.js';
import { assertResumptionAllowed } from '../incidents/holds.js';
import { insertSigningKey, mirrorCurrentKey, retireAllSigningKeys } from '../keys/signing-key-repository.js';
import { generateIntegrationSigningKey, jwksUrlFor } from '../keys/signing-keys.js';
import { markCredentialRotated } from '../integrations/settings.js';
import type { Integration } from '../integrations/repository.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { assertStoredSecretRefsAllowed, auditingSecretRefRefusals } from '../store/secret-roots.js';
import { scopesFor } from '../vendors/profiles/adapters.js';
import { profileFor } from '../vendors/profiles/index.js';
import { registerSandboxClient } from '../vendors/sandbox-registration.js';
import type { SandboxAdmin } from '../vendors/sandbox-registration.js';
import { loadVendorTls } from '../vendors/tls-options.js';
import type { VendorTls, VendorTlsRefs } from '../vendors/tls-options.js';
import { lockIntegration, markIntegrationActive, storeRestoredSecretRefs, tenantStatus } from './repository.js';

export interface RestoreOptions {
  secretsDir: string;
  /** A sandbox vendor's admin endpoint (any personality): the fresh credentials are registered there. */
  sandboxAdmin?: SandboxAdmin;
  /** Our hosted JWKS's public base URL: the sandbox client is re-registered by URL. */
  jwksPublicUrl?: string;
  /** client_secret_basic/post: the reference of the secret the vendor issued after rotation (required). */
  clientSecretRef?: string;
  /** tls_client_auth: references of the new client certificate and key (required). */
  tlsRefs?: VendorTlsRefs;
  /** The incident whose approved recovery this is: its own hold does not refuse the restore. */
  incidentId?: string;
}

/**
 * Issues fresh credentials and makes the integration active again under a new credential
 * generation. private_key_jwt: a new key pair becomes the only published key (every older key is
 * retired, so our JWKS stops serving them). Secret and certificate methods cannot mint their own
 * credential — the vendor issues or signs it — so a new reference, different from the revoked one,
 * must be given; restore refuses otherwise. Every reference given, and the TLS references kept, must
 * satisfy the stored-reference policy (lib/config/stored-secret-refs.ts); a refusal is audited.
 */
export async function restoreIntegration(
  pool: Pool,
  integrationId: string,
  ctx: AuditContext,
  opts: RestoreOptions,
): Promise<Integration> {
  const current = await withTransaction(pool, (client) => lockIntegration(client, integrationId));
  if (current.status === 'active') throw new ConflictError('integration', integrationId, 'is already active');
  if (current.clientId === null && current.authMethod !== 'none')
    throw new ConflictError(
      'integration',
      integrationId,
      'has no client id yet: set it with `ehrctl integrations update --client-id`',
    );
  await assertResumptionAllowed(pool, 'restore', integrationId, opts.incidentId);
  if ((await tenantStatus(pool, current.tenantId)) !== 'active')
    throw new ConflictError('tenant', current.tenantId, 'is revoked: its integrations cannot be restored');
  if (current.vendor === 'sandbox' && !opts.sandboxAdmin) {
    throw new InvalidArgumentError(
      'sandbox',
      'no running sandbox to register the new credentials with: start the dev stack (`ehrctl dev up`)',
    );
  }
  // Checked before anything is read or sent (the definer function checks them again when stored).
  const scope = { stage: 'restore' as const, tenantId: current.tenantId, integrationId };
  const given = [
    ...(opts.clientSecretRef ? [{ field: '--client-secret-ref', ref: opts.clientSecretRef }] : []),
    ...tlsRefFields(opts.tlsRefs ?? current.tlsRefs),
  ];
  await assertStoredSecretRefsAllowed(pool, ctx, given, scope);
  const fresh = await freshCredentials(current, opts);
  const profile = profileFor(current.vendor);
  if (opts.sandboxAdmin) {
    await registerSandboxClient(
      opts.sandboxAdmin,
      profile,
      {
        authMethod: current.authMethod,
        scopes: scopesFor(profile, current.resourceTypes),
        ...(opts.jwksPublicUrl ? { jwksUri: jwksUrlFor(opts.jwksPublicUrl, integrationId) } : {}),
        ...(fresh.key ? { publicJwk: fresh.key.publicJwk } : {}),
        clientSecretRef: fresh.clientSecretRef,
        ...(fresh.tls ? { tls: fresh.tls } : {}),
      },
      { clientId: current.clientId ?? undefined, replace: true },
    );
  }
  return auditingSecretRefRefusals(pool, ctx, scope, () =>
    withTransaction(pool, async (client) => {
      const locked = await lockIntegration(client, integrationId);
      if (locked.status === 'active' || locked.credentialGeneration !== current.credentialGeneration) {
        throw new ConflictError('integration', integrationId, 'changed while being restored; try again');
      }
      // Again under the lock: an incident declared while the vendor registered the new credentials wins.
      await assertResumptionAllowed(client, 'restore', integrationId, opts.incidentId);
      let retiredKids: string[] = [];
      if (fresh.key) {
        retiredKids = await retireAllSigningKeys(client, integrationId);
        await insertSigningKey(client, { integrationId, ...fresh.key, state: 'current' });
        await mirrorCurrentKey(client, { integrationId, ...fresh.key });
      }
      // The application role cannot write references itself: the definer function checks and stores them.
      await storeRestoredSecretRefs(client, integrationId, fresh.clientSecretRef, fresh.tlsRefs);
      await markCredentialRotated(client, integrationId);
      const restored = await markIntegrationActive(client, integrationId);
      await appendAuditEvents(client, [
        {
          ...ctx,
          action: 'integration.restored',
          outcome: 'success',
          tenantId: restored.tenantId,
          integrationId,
          details: {
            generation: restored.credentialGeneration,
            authMethod: restored.authMethod,
            ...(fresh.key
              ? { previousKid: locked.signingKid, signingKid: fresh.key.kid, signingAlg: fresh.key.alg, retiredKids }
              : {}),
            ...(fresh.clientSecretRef !== locked.clientSecretRef ? { clientSecretRotated: true } : {}),
            ...(fresh.tls && restored.authMethod === 'tls_client_auth' ? { certificateRotated: true } : {}),
          },
        },
      ]);
      return restored;
    }),
  );
}

interface FreshCredentials {
  key?: { kid: string; alg: 'ES384' | 'RS384'; publicJwk: Record<string, unknown>; privateKeyRef: string };
  clientSecretRef: string | null;
  tlsRefs: VendorTlsRefs | null;
  tls?: VendorTls;
}

async function freshCredentials(current: Integration, opts: RestoreOptions): Promise<FreshCredentials> {
  const tlsRefs = opts.tlsRefs ?? current.tlsRefs;
  const tls = tlsRefs ? await loadVendorTls(tlsRefs) : undefined;
  const base = { clientSecretRef: current.clientSecretRef, tlsRefs, ...(tls ? { tls } : {}) };
  switch (current.authMethod) {
    case 'private_key_jwt': {
      const alg = current.signingAlg ?? 'ES384';
      const key = await generateIntegrationSigningKey({ alg, secretsDir: opts.secretsDir, integrationId: current.id });
      return {
        ...base,
        key: {
          kid: key.kid,
          alg,
          publicJwk: { ...key.publicJwk, kid: key.kid, alg, use: 'sig' },
          privateKeyRef: key.privateKeyRef,
        },
      };
    }
    case 'client_secret_basic':
    case 'client_secret_post':
      if (!opts.clientSecretRef || opts.clientSecretRef === current.clientSecretRef) {
        throw new InvalidArgumentError(
          '--client-secret-ref',
          `integration ${current.id} uses ${current.authMethod}: ` +
            `rotate the secret at the vendor and give the new secret's reference (it must differ from the revoked one)`,
        );
      }
      checkSecretRef(opts.clientSecretRef, { field: '--client-secret-ref' });
      return { ...base, clientSecretRef: opts.clientSecretRef };
    case 'tls_client_auth': {
      const fresh = opts.tlsRefs;
      if (
        !fresh?.clientCertRef ||
        !fresh.clientKeyRef ||
        (fresh.clientCertRef === current.tlsRefs?.clientCertRef && fresh.clientKeyRef === current.tlsRefs?.clientKeyRef)
      ) {
        throw new InvalidArgumentError(
          '--tls-cert-ref',
          `integration ${current.id} uses tls_client_auth: ` +
            `give a new client certificate and key (--tls-cert-ref, --tls-key-ref) that differ from the revoked ones`,
        );
      }
      return base;
    }
    case 'none':
      return base; // an open server: no credential to replace
  }
}
