/**
 * Revocation that fails closed (issue 4 item 4), as a library call for the CLI and the containment
 * workflow. Revocation commits first: status 'revoked', credential generation bumped and the audit
 * event `integration.revoked`, in one transaction whose trigger NOTIFYs every worker
 * (lib/revocation/watcher.ts). Workers then refuse every vendor call for it, before the
 * request is sent. `restoreIntegration` issues fresh credentials for the integration's auth method,
 * registers them with a sandbox vendor, and makes the integration active again under a new generation.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { checkSecretRef } from '../config/secrets.js';
import { tlsRefFields } from '../config/stored-secret-refs.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { generateIntegrationSigningKey, jwksUrlFor } from '../keys/signing-keys.js';
import { insertSigningKey, mirrorCurrentKey, retireAllSigningKeys } from '../keys/signing-key-repository.js';
import { markCredentialRotated } from '../store/integration-settings.js';
import { assertResumptionAllowed } from '../incidents/holds.js';
import { scopesFor } from '../vendors/profiles/adapters.js';
import { profileFor } from '../vendors/profiles/index.js';
import { registerSandboxClient } from '../vendors/sandbox-registration.js';
import type { SandboxAdmin } from '../vendors/sandbox-registration.js';
import { loadVendorTls } from '../vendors/tls-options.js';
import type { VendorTls, VendorTlsRefs } from '../vendors/tls-options.js';
import type { Integration } from '../store/integrations.js';
import { fromRow } from '../store/integrations.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { assertStoredSecretRefsAllowed, auditingSecretRefRefusals, refusingStoredSecretRefs } from '../store/secret-roots.js';
import { withTransaction } from '../store/pool.js';
import { REVOCATION_ACK_CHANNEL, WATCHER_APPLICATION_NAME } from './watcher.js';

export interface RevocationResult {
  integrationId: string;
  tenantId: string;
  /** The generation after revocation; anything issued under an older one is dead. */
  generation: number;
  alreadyRevoked: boolean;
  /** Listening workers at commit, and how many confirmed within the wait (see awaitWorkers). */
  workers: number;
  acknowledged: number;
}

export interface RevokeOptions {
  reason?: string;
  /**
   * How long to wait for every listening worker to confirm (default 5000 ms). A worker confirms once
   * it has marked the integration revoked and every request that had already passed its gate has
   * finished, so after a fully acknowledged revoke no request with the old credential can reach the
   * vendor from it. 0: return right after commit.
   */
  awaitWorkersMs?: number;
}

type IntegrationRow = Parameters<typeof fromRow>[0];

/**
 * Row locks are FOR NO KEY UPDATE, not FOR UPDATE: every sync page inserting records takes a KEY SHARE
 * lock on its integration row (the foreign key) and then waits for the audit head. A FOR UPDATE here
 * conflicts with that KEY SHARE while our own audit append holds the head: a deadlock PostgreSQL breaks
 * only after deadlock_timeout, which cost containment seconds under sync load. Revocation never
 * changes the key, so NO KEY UPDATE is enough and lets those inserts proceed.
 */
async function lockIntegration(client: PoolClient, integrationId: string): Promise<Integration> {
  const [locked] = await lockIntegrations(client, [integrationId]);
  return locked!;
}

/** Locks the rows in id order (so concurrent revocations cannot deadlock), all in one statement. */
async function lockIntegrations(client: PoolClient, integrationIds: string[]): Promise<Integration[]> {
  const res = await client.query<IntegrationRow>('SELECT * FROM integrations WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE', [integrationIds]);
  const missing = integrationIds.find((id) => !res.rows.some((r) => r.id === id));
  if (missing !== undefined) throw new NotFoundError('integration', missing);
  return res.rows.map(fromRow);
}

/**
 * Revokes the locked integrations not yet revoked: one UPDATE and one audit append for all of them,
 * so a scope of hundreds commits in a few round trips (containment's time-to-contain).
 */
async function revokeLocked(client: PoolClient, locked: Integration[], ctx: AuditContext, reason: string | undefined, via: string): Promise<RevocationResult[]> {
  const toRevoke = locked.filter((i) => i.status !== 'revoked');
  const generations = new Map<string, number>();
  if (toRevoke.length > 0) {
    const updated = await client.query<{ id: string; credential_generation: number }>(
      `UPDATE integrations SET status = 'revoked', credential_generation = credential_generation + 1, revoked_at = now()
        WHERE id = ANY($1::text[]) RETURNING id, credential_generation`,
      [toRevoke.map((i) => i.id)],
    );
    for (const r of updated.rows) generations.set(r.id, r.credential_generation);
    await appendAuditEvents(
      client,
      toRevoke.map((i) => ({
        ...ctx,
        action: 'integration.revoked',
        outcome: 'success' as const,
        tenantId: i.tenantId,
        integrationId: i.id,
        details: { previousStatus: i.status, generation: generations.get(i.id)!, signingKid: i.signingKid, via, ...(reason ? { reason } : {}) },
      })),
    );
  }
  return locked.map((i) => ({
    integrationId: i.id,
    tenantId: i.tenantId,
    generation: generations.get(i.id) ?? i.credentialGeneration,
    alreadyRevoked: !generations.has(i.id),
    workers: 0,
    acknowledged: 0,
  }));
}

/**
 * Runs the revoking transaction while listening for the workers' acknowledgements, then waits until
 * every watcher connection that was listening at commit has confirmed each revoked generation (or
 * the wait ends), and audits how far the revocation got.
 */
async function withPropagation(pool: Pool, ctx: AuditContext, waitMs: number, commit: () => Promise<RevocationResult[]>): Promise<RevocationResult[]> {
  const listener = await pool.connect();
  const acks = new Map<string, Set<number>>();
  let wake: (() => void) | undefined;
  const onNotification = (msg: { channel: string; payload?: string }): void => {
    if (msg.channel !== REVOCATION_ACK_CHANNEL || !msg.payload) return;
    try {
      const ack = JSON.parse(msg.payload) as { integrationId?: unknown; generation?: unknown; pid?: unknown };
      if (typeof ack.integrationId !== 'string' || typeof ack.pid !== 'number') return;
      const key = `${ack.integrationId}#${String(ack.generation)}`;
      if (!acks.has(key)) acks.set(key, new Set());
      acks.get(key)!.add(ack.pid);
      wake?.();
    } catch {
      // not ours
    }
  };
  listener.on('notification', onNotification);
  try {
    await listener.query(`LISTEN ${REVOCATION_ACK_CHANNEL}`);
    const results = await commit();
    const changed = results.filter((r) => !r.alreadyRevoked);
    if (changed.length === 0 || waitMs <= 0) return results;
    const started = Date.now();
    const workers = (
      await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [WATCHER_APPLICATION_NAME])
    ).rows.map((r) => r.pid);
    const count = (r: RevocationResult): number => workers.filter((pid) => acks.get(`${r.integrationId}#${r.generation}`)?.has(pid)).length;
    const complete = (): boolean => changed.every((r) => count(r) === workers.length);
    const deadline = started + waitMs;
    while (!complete() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(50, Math.max(0, deadline - Date.now())));
      });
      wake = undefined;
    }
    for (const r of changed) {
      r.workers = workers.length;
      r.acknowledged = count(r);
    }
    await recordAuditEvents(
      pool,
      changed.map((r) => ({
        ...ctx,
        action: 'integration.revocation_propagated',
        outcome: r.acknowledged === r.workers ? ('success' as const) : ('failure' as const),
        tenantId: r.tenantId,
        integrationId: r.integrationId,
        details: { generation: r.generation, workers: r.workers, acknowledged: r.acknowledged, waitedMs: Date.now() - started },
      })),
    );
    return results;
  } finally {
    listener.removeListener('notification', onNotification);
    await listener.query(`UNLISTEN ${REVOCATION_ACK_CHANNEL}`).catch(() => undefined);
    listener.release();
  }
}

async function recordAuditEvents(pool: Pool, events: Parameters<typeof appendAuditEvents>[1]): Promise<void> {
  await withTransaction(pool, (client) => appendAuditEvents(client, events));
}

function checkReason(reason: string | undefined): string | undefined {
  if (reason === undefined || reason === '') return undefined;
  if (reason.length > 200 || !/^[\x20-\x7e]+$/.test(reason)) throw new InvalidArgumentError('--reason', 'use at most 200 printable ASCII characters (no PHI)');
  return reason;
}

/**
 * Revokes an integration. When this returns, the revocation is committed and every listening worker
 * has been notified (delivery is asynchronous; see docs/decisions.md for the exact guarantee).
 */
export async function revokeIntegration(pool: Pool, integrationId: string, ctx: AuditContext, opts: RevokeOptions = {}): Promise<RevocationResult> {
  const reason = checkReason(opts.reason);
  const [result] = await withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, () =>
    withTransaction(pool, async (client) => revokeLocked(client, await lockIntegrations(client, [integrationId]), ctx, reason, 'integration')),
  );
  return result!;
}

const DEFAULT_AWAIT_MS = 5_000;

/**
 * Revokes several integrations in one transaction (locked in id order), with one wait for the
 * workers: containment of a scope. Revoking them one call each would hold a listening connection
 * per call and can exhaust the pool with many integrations.
 */
export async function revokeIntegrations(pool: Pool, integrationIds: string[], ctx: AuditContext, opts: RevokeOptions & { via?: string } = {}): Promise<RevocationResult[]> {
  const reason = checkReason(opts.reason);
  return withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, () =>
    withTransaction(pool, async (client) => revokeLocked(client, await lockIntegrations(client, [...new Set(integrationIds)]), ctx, reason, opts.via ?? 'integrations')),
  );
}

/** Revokes a tenant and every one of its integrations, in one transaction. */
export async function revokeTenant(pool: Pool, tenantId: string, ctx: AuditContext, opts: RevokeOptions = {}): Promise<RevocationResult[]> {
  const reason = checkReason(opts.reason);
  return withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, () => withTransaction(pool, async (client) => {
    const tenant = await client.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]);
    if (tenant.rowCount === 0) throw new NotFoundError('tenant', tenantId);
    if (tenant.rows[0]!.status !== 'revoked') {
      await client.query(`UPDATE tenants SET status = 'revoked', revoked_at = now() WHERE id = $1`, [tenantId]);
    }
    const ids = await client.query<{ id: string }>('SELECT id FROM integrations WHERE tenant_id = $1 ORDER BY id', [tenantId]);
    const results = await revokeLocked(client, await lockIntegrations(client, ids.rows.map((r) => r.id)), ctx, reason, `tenant:${tenantId}`);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'tenant.revoked',
        outcome: 'success',
        tenantId,
        details: { integrations: results.map((r) => r.integrationId), ...(reason ? { reason } : {}) },
      },
    ]);
    return results;
  }));
}

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
export async function restoreIntegration(pool: Pool, integrationId: string, ctx: AuditContext, opts: RestoreOptions): Promise<Integration> {
  const current = await withTransaction(pool, (client) => lockIntegration(client, integrationId));
  if (current.status === 'active') throw new ConflictError('integration', integrationId, 'is already active');
  await assertResumptionAllowed(pool, 'restore', integrationId, opts.incidentId);
  const tenant = await pool.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [current.tenantId]);
  if (tenant.rows[0]?.status !== 'active') throw new ConflictError('tenant', current.tenantId, 'is revoked: its integrations cannot be restored');
  if (current.vendor === 'sandbox' && !opts.sandboxAdmin) {
    throw new InvalidArgumentError('sandbox', 'no running sandbox to register the new credentials with: start the dev stack (`ehrctl dev up`)');
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
      { clientId: current.clientId, replace: true },
    );
  }
  return auditingSecretRefRefusals(pool, ctx, scope, () => withTransaction(pool, async (client) => {
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
    const refs = [integrationId, fresh.clientSecretRef, fresh.tlsRefs];
    await refusingStoredSecretRefs(() => client.query('SELECT set_integration_secret_refs($1, $2, $3)', refs));
    await markCredentialRotated(client, integrationId);
    const res = await client.query<IntegrationRow>(
      `UPDATE integrations SET status = 'active', credential_generation = credential_generation + 1, revoked_at = NULL
        WHERE id = $1 RETURNING *`,
      [integrationId],
    );
    const restored = fromRow(res.rows[0]!);
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
          ...(fresh.key ? { previousKid: locked.signingKid, signingKid: fresh.key.kid, signingAlg: fresh.key.alg, retiredKids } : {}),
          ...(fresh.clientSecretRef !== locked.clientSecretRef ? { clientSecretRotated: true } : {}),
          ...(fresh.tls && restored.authMethod === 'tls_client_auth' ? { certificateRotated: true } : {}),
        },
      },
    ]);
    return restored;
  }));
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
      return { ...base, key: { kid: key.kid, alg, publicJwk: { ...key.publicJwk, kid: key.kid, alg, use: 'sig' }, privateKeyRef: key.privateKeyRef } };
    }
    case 'client_secret_basic':
    case 'client_secret_post':
      if (!opts.clientSecretRef || opts.clientSecretRef === current.clientSecretRef) {
        throw new InvalidArgumentError('--client-secret-ref', `integration ${current.id} uses ${current.authMethod}: rotate the secret at the vendor and give the new secret's reference (it must differ from the revoked one)`);
      }
      checkSecretRef(opts.clientSecretRef, { field: '--client-secret-ref' });
      return { ...base, clientSecretRef: opts.clientSecretRef };
    case 'tls_client_auth': {
      const fresh = opts.tlsRefs;
      if (!fresh?.clientCertRef || !fresh.clientKeyRef || (fresh.clientCertRef === current.tlsRefs?.clientCertRef && fresh.clientKeyRef === current.tlsRefs?.clientKeyRef)) {
        throw new InvalidArgumentError('--tls-cert-ref', `integration ${current.id} uses tls_client_auth: give a new client certificate and key (--tls-cert-ref, --tls-key-ref) that differ from the revoked ones`);
      }
      return base;
    }
  }
}
