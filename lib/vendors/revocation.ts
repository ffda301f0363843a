/**
 * Revocation that fails closed (issue 4 item 4), as a library call for the CLI and the containment
 * workflow. Revocation commits first: status 'revoked', credential generation bumped and the audit
 * event `integration.revoked`, in one transaction whose trigger NOTIFYs every worker
 * (lib/vendors/revocation-watcher.ts). Workers then refuse every vendor call for it, before the
 * request is sent. `restoreIntegration` issues a fresh signing key, registers it with the vendor,
 * and makes the integration active again under a new generation.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError, VendorHttpError } from '../errors/index.js';
import { readScopeFor } from '../domain.js';
import { generateIntegrationSigningKey } from '../security/signing-keys.js';
import type { Integration } from '../store/integrations.js';
import { fromRow } from '../store/integrations.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { REVOCATION_ACK_CHANNEL, WATCHER_APPLICATION_NAME } from './revocation-watcher.js';

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

async function lockIntegration(client: PoolClient, integrationId: string): Promise<Integration> {
  const res = await client.query<IntegrationRow>('SELECT * FROM integrations WHERE id = $1 FOR UPDATE', [integrationId]);
  if (res.rowCount === 0) throw new NotFoundError('integration', integrationId);
  return fromRow(res.rows[0]!);
}

async function revokeLocked(client: PoolClient, i: Integration, ctx: AuditContext, reason: string | undefined, via: string): Promise<RevocationResult> {
  if (i.status === 'revoked') return { integrationId: i.id, tenantId: i.tenantId, generation: i.credentialGeneration, alreadyRevoked: true, workers: 0, acknowledged: 0 };
  const updated = await client.query<{ credential_generation: number }>(
    `UPDATE integrations SET status = 'revoked', credential_generation = credential_generation + 1, revoked_at = now()
      WHERE id = $1 RETURNING credential_generation`,
    [i.id],
  );
  const generation = updated.rows[0]!.credential_generation;
  await appendAuditEvents(client, [
    {
      ...ctx,
      action: 'integration.revoked',
      outcome: 'success',
      tenantId: i.tenantId,
      integrationId: i.id,
      details: { previousStatus: i.status, generation, signingKid: i.signingKid, via, ...(reason ? { reason } : {}) },
    },
  ]);
  return { integrationId: i.id, tenantId: i.tenantId, generation, alreadyRevoked: false, workers: 0, acknowledged: 0 };
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
  const [result] = await withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, async () => [
    await withTransaction(pool, async (client) => revokeLocked(client, await lockIntegration(client, integrationId), ctx, reason, 'integration')),
  ]);
  return result!;
}

const DEFAULT_AWAIT_MS = 5_000;

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
    const results: RevocationResult[] = [];
    for (const { id } of ids.rows) results.push(await revokeLocked(client, await lockIntegration(client, id), ctx, reason, `tenant:${tenantId}`));
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
  /** For vendor 'sandbox': its admin endpoint, used to register the fresh public key. */
  sandboxAdmin?: { url: string; adminToken: string };
}

/**
 * Issues fresh credentials (a new signing key pair; the vendor learns the new public key) and makes
 * the integration active again under a new credential generation. The old key is no longer used.
 */
export async function restoreIntegration(pool: Pool, integrationId: string, ctx: AuditContext, opts: RestoreOptions): Promise<Integration> {
  const current = await withTransaction(pool, (client) => lockIntegration(client, integrationId));
  if (current.status === 'active') throw new ConflictError('integration', integrationId, 'is already active');
  const tenant = await pool.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [current.tenantId]);
  if (tenant.rows[0]?.status !== 'active') throw new ConflictError('tenant', current.tenantId, 'is revoked: its integrations cannot be restored');
  // TODO(issue 4, auth styles): secret and tls_client_auth integrations get fresh credentials their own way.
  if (current.authMethod !== 'private_key_jwt' || !current.signingAlg) {
    throw new ConflictError('integration', integrationId, `uses ${current.authMethod}: restore issues fresh private_key_jwt keys only`);
  }
  const key = await generateIntegrationSigningKey({ alg: current.signingAlg, secretsDir: opts.secretsDir, integrationId });
  const publicJwk = { ...key.publicJwk, kid: key.kid, alg: current.signingAlg, use: 'sig' };
  if (current.vendor === 'sandbox') {
    if (!opts.sandboxAdmin) throw new InvalidArgumentError('sandbox', 'no running sandbox to register the new key with: start the dev stack (`ehrctl dev up`)');
    await replaceSandboxKey(opts.sandboxAdmin, current.clientId, publicJwk, current.resourceTypes.map(readScopeFor));
  }
  return withTransaction(pool, async (client) => {
    const locked = await lockIntegration(client, integrationId);
    if (locked.status === 'active' || locked.credentialGeneration !== current.credentialGeneration) {
      throw new ConflictError('integration', integrationId, 'changed while being restored; try again');
    }
    const res = await client.query<IntegrationRow>(
      `UPDATE integrations SET status = 'active', credential_generation = credential_generation + 1, revoked_at = NULL,
              signing_kid = $2, public_jwk = $3, private_key_ref = $4
        WHERE id = $1 RETURNING *`,
      [integrationId, key.kid, publicJwk, key.privateKeyRef],
    );
    const restored = fromRow(res.rows[0]!);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'integration.restored',
        outcome: 'success',
        tenantId: restored.tenantId,
        integrationId,
        details: { generation: restored.credentialGeneration, previousKid: locked.signingKid, signingKid: key.kid, signingAlg: restored.signingAlg },
      },
    ]);
    return restored;
  });
}

/** The sandbox's client registry: replace the client's key set with exactly the new key. */
async function replaceSandboxKey(admin: { url: string; adminToken: string }, clientId: string, jwk: Record<string, unknown>, scopes: string[]): Promise<void> {
  const res = await fetch(`${admin.url}/admin/clients/${encodeURIComponent(clientId)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-sandbox-admin': admin.adminToken },
    body: JSON.stringify({ jwks: { keys: [jwk] }, scopes }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new VendorHttpError(res.status, 'PUT', '/admin/clients');
}
