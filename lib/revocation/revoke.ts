/**
 * Revocation that fails closed, as a library call for the CLI and the containment workflow.
 * Revocation commits first: status 'revoked', credential generation bumped and the audit event
 * `integration.revoked`, in one transaction whose trigger NOTIFYs every worker
 * (lib/revocation/watcher.ts). Workers then refuse every vendor call for it, before the request is
 * sent. The way back is lib/revocation/restore.ts; the statements are in lib/revocation/repository.ts.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { Integration } from '../integrations/repository.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import {
  lockIntegrations,
  lockTenantStatus,
  markIntegrationsRevoked,
  markTenantRevoked,
  tenantIntegrationIds,
  watcherBackendPids,
} from './repository.js';
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

/**
 * Revokes the locked integrations not yet revoked: one UPDATE and one audit append for all of them,
 * so a scope of hundreds commits in a few round trips (containment's time-to-contain).
 */
async function revokeLocked(
  client: PoolClient,
  locked: Integration[],
  ctx: AuditContext,
  reason: string | undefined,
  via: string,
): Promise<RevocationResult[]> {
  const toRevoke = locked.filter((i) => i.status !== 'revoked');
  let generations = new Map<string, number>();
  if (toRevoke.length > 0) {
    generations = await markIntegrationsRevoked(
      client,
      toRevoke.map((i) => i.id),
    );
    await appendAuditEvents(
      client,
      toRevoke.map((i) => ({
        ...ctx,
        action: 'integration.revoked',
        outcome: 'success' as const,
        tenantId: i.tenantId,
        integrationId: i.id,
        details: {
          previousStatus: i.status,
          generation: generations.get(i.id)!,
          signingKid: i.signingKid,
          via,
          ...(reason ? { reason } : {}),
        },
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
async function withPropagation(
  pool: Pool,
  ctx: AuditContext,
  waitMs: number,
  commit: () => Promise<RevocationResult[]>,
): Promise<RevocationResult[]> {
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
    const workers = await watcherBackendPids(pool, WATCHER_APPLICATION_NAME);
    const count = (r: RevocationResult): number =>
      workers.filter((pid) => acks.get(`${r.integrationId}#${r.generation}`)?.has(pid)).length;
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
        details: {
          generation: r.generation,
          workers: r.workers,
          acknowledged: r.acknowledged,
          waitedMs: Date.now() - started,
        },
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
  if (reason.length > 200 || !/^[\x20-\x7e]+$/.test(reason))
    throw new InvalidArgumentError('--reason', 'use at most 200 printable ASCII characters (no PHI)');
  return reason;
}

/**
 * Revokes an integration. When this returns, the revocation is committed and every listening worker
 * has been notified (delivery is asynchronous; see docs/decisions.md for the exact guarantee).
 */
export async function revokeIntegration(
  pool: Pool,
  integrationId: string,
  ctx: AuditContext,
  opts: RevokeOptions = {},
): Promise<RevocationResult> {
  const reason = checkReason(opts.reason);
  const [result] = await withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, () =>
    withTransaction(pool, async (client) =>
      revokeLocked(client, await lockIntegrations(client, [integrationId]), ctx, reason, 'integration'),
    ),
  );
  return result!;
}

const DEFAULT_AWAIT_MS = 5_000;

/**
 * Revokes several integrations in one transaction (locked in id order), with one wait for the
 * workers: containment of a scope. Revoking them one call each would hold a listening connection
 * per call and can exhaust the pool with many integrations.
 */
export async function revokeIntegrations(
  pool: Pool,
  integrationIds: string[],
  ctx: AuditContext,
  opts: RevokeOptions & { via?: string } = {},
): Promise<RevocationResult[]> {
  const reason = checkReason(opts.reason);
  return withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, () =>
    withTransaction(pool, async (client) =>
      revokeLocked(
        client,
        await lockIntegrations(client, [...new Set(integrationIds)]),
        ctx,
        reason,
        opts.via ?? 'integrations',
      ),
    ),
  );
}

/** Revokes a tenant and every one of its integrations, in one transaction. */
export async function revokeTenant(
  pool: Pool,
  tenantId: string,
  ctx: AuditContext,
  opts: RevokeOptions = {},
): Promise<RevocationResult[]> {
  const reason = checkReason(opts.reason);
  return withPropagation(pool, ctx, opts.awaitWorkersMs ?? DEFAULT_AWAIT_MS, () =>
    withTransaction(pool, async (client) => {
      const status = await lockTenantStatus(client, tenantId);
      if (status === undefined) throw new NotFoundError('tenant', tenantId);
      if (status !== 'revoked') await markTenantRevoked(client, tenantId);
      const ids = await tenantIntegrationIds(client, tenantId);
      const results = await revokeLocked(
        client,
        await lockIntegrations(client, ids),
        ctx,
        reason,
        `tenant:${tenantId}`,
      );
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
    }),
  );
}
