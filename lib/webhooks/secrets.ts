/**
 * Per-integration webhook secrets (the store workers/webhook-receiver.ts verifies against). Secrets are
 * held by reference: an operator's `file:`/`env:`/manager reference, or one generated here into the
 * secrets directory (0600, `whsec_<base64>` as Standard Webhooks senders expect). States: `current`
 * (one per integration), `previous` (still accepted during a rotation's window), `retired` (refused).
 * Each change is one transaction with its audit event and is safe to repeat.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { checkSecretRef, resolveSecret } from '../config/secrets.js';
import { ID_PATTERN } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { PoolClient, Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { webhookSecretBytes } from './verify.js';

export type WebhookSecretState = 'current' | 'previous' | 'retired';

export interface WebhookSecret {
  integrationId: string;
  version: number;
  secretRef: string;
  state: WebhookSecretState;
  createdAt: Date;
  retiredAt: Date | null;
}

export async function listWebhookSecrets(db: Queryable, integrationId: string): Promise<WebhookSecret[]> {
  const { rows } = await db.query<{ version: number; secret_ref: string; state: WebhookSecretState; created_at: Date; retired_at: Date | null }>(
    'SELECT version, secret_ref, state, created_at, retired_at FROM webhook_secrets WHERE integration_id = $1 ORDER BY version',
    [integrationId],
  );
  return rows.map((r) => ({ integrationId, version: r.version, secretRef: r.secret_ref, state: r.state, createdAt: r.created_at, retiredAt: r.retired_at }));
}

async function lockIntegration(client: PoolClient, integrationId: string): Promise<{ tenantId: string; secrets: WebhookSecret[] }> {
  const res = await client.query<{ tenant_id: string }>('SELECT tenant_id FROM integrations WHERE id = $1 FOR UPDATE', [integrationId]);
  if (!res.rows[0]) throw new NotFoundError('integration', integrationId);
  return { tenantId: res.rows[0].tenant_id, secrets: await listWebhookSecrets(client, integrationId) };
}

function audit(client: PoolClient, ctx: AuditContext, tenantId: string, integrationId: string, action: string, details: Record<string, unknown>): Promise<unknown> {
  return appendAuditEvents(client, [{ ...ctx, action, outcome: 'success', tenantId, integrationId, details }]);
}

async function generateSecretFile(secretsDir: string, integrationId: string, version: number): Promise<string> {
  const dir = path.resolve(secretsDir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `webhook-${integrationId}-v${version}-${randomBytes(4).toString('hex')}.secret`);
  await fs.writeFile(file, `whsec_${randomBytes(32).toString('base64')}`, { mode: 0o600, flag: 'wx' });
  await fs.chmod(file, 0o600);
  return `file:${file}`;
}

/**
 * Adds a new current secret; the old current becomes `previous` (accepted until retired) and an older
 * `previous` is retired (one window at a time).
 */
export async function addWebhookSecret(
  pool: Pool,
  integrationId: string,
  ctx: AuditContext,
  opts: { secretsDir: string; secretRef?: string },
): Promise<{ version: number; previousVersion: number | null }> {
  if (!ID_PATTERN.test(integrationId)) throw new InvalidArgumentError('integrationId', 'is not a valid integration id');
  if (opts.secretRef !== undefined) checkSecretRef(opts.secretRef, { field: 'webhook secret' });
  return withTransaction(pool, async (client) => {
    const locked = await lockIntegration(client, integrationId);
    const version = Math.max(0, ...locked.secrets.map((s) => s.version)) + 1;
    const current = locked.secrets.find((s) => s.state === 'current');
    const ref = opts.secretRef ?? (await generateSecretFile(opts.secretsDir, integrationId, version));
    await client.query(`UPDATE webhook_secrets SET state = 'retired', retired_at = now() WHERE integration_id = $1 AND state = 'previous'`, [integrationId]);
    if (current) await client.query(`UPDATE webhook_secrets SET state = 'previous' WHERE integration_id = $1 AND version = $2`, [integrationId, current.version]);
    await client.query(`INSERT INTO webhook_secrets (integration_id, version, secret_ref, state) VALUES ($1, $2, $3, 'current')`, [integrationId, version, ref]);
    await audit(client, ctx, locked.tenantId, integrationId, 'webhook_secret.added', { version, previousVersion: current?.version ?? null, generated: opts.secretRef === undefined });
    return { version, previousVersion: current?.version ?? null };
  });
}

/** Ends a secret's acceptance. The current secret cannot be retired (add a new one first). */
export async function retireWebhookSecret(pool: Pool, integrationId: string, version: number, ctx: AuditContext): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const locked = await lockIntegration(client, integrationId);
    const secret = locked.secrets.find((s) => s.version === version);
    if (!secret) throw new NotFoundError(`webhook secret of integration ${integrationId}`, String(version));
    if (secret.state === 'retired') return { changed: false };
    if (secret.state === 'current') throw new ConflictError('webhook secret', String(version), 'is current: add a new secret before retiring it');
    await client.query(`UPDATE webhook_secrets SET state = 'retired', retired_at = now() WHERE integration_id = $1 AND version = $2`, [integrationId, version]);
    await audit(client, ctx, locked.tenantId, integrationId, 'webhook_secret.retired', { version });
    return { changed: true };
  });
}

/** Rollback of a rotation: the new secret is retired and `previous` is current again. No-op when nothing is previous. */
export async function restorePreviousWebhookSecret(pool: Pool, integrationId: string, ctx: AuditContext): Promise<{ restoredVersion: number | null }> {
  return withTransaction(pool, async (client) => {
    const locked = await lockIntegration(client, integrationId);
    const previous = locked.secrets.find((s) => s.state === 'previous');
    const current = locked.secrets.find((s) => s.state === 'current');
    if (!previous) return { restoredVersion: null };
    if (current) await client.query(`UPDATE webhook_secrets SET state = 'retired', retired_at = now() WHERE integration_id = $1 AND version = $2`, [integrationId, current.version]);
    await client.query(`UPDATE webhook_secrets SET state = 'current' WHERE integration_id = $1 AND version = $2`, [integrationId, previous.version]);
    await audit(client, ctx, locked.tenantId, integrationId, 'webhook_secret.restored', { version: previous.version, retiredVersion: current?.version ?? null });
    return { restoredVersion: previous.version };
  });
}

/** The secrets a verifier accepts now (current first, then previous), resolved from their references. */
export async function acceptedWebhookSecrets(db: Queryable, integrationId: string): Promise<Buffer[]> {
  const accepted = (await listWebhookSecrets(db, integrationId)).filter((s) => s.state !== 'retired').sort((a, b) => b.version - a.version);
  return Promise.all(accepted.map(async (s) => webhookSecretBytes(await resolveSecret(s.secretRef, { field: `webhook secret v${s.version}` }))));
}
