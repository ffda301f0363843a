/**
 * Per-integration webhook secrets (the store workers/webhook-receiver.ts verifies against). Secrets are
 * held by reference: an operator's `file:`/`env:`/manager reference, or one generated here into the
 * secrets directory (0600, `whsec_<base64>` as Standard Webhooks senders expect). States: `current`
 * (one per integration), `previous` (still accepted during a rotation's window), `retired` (refused).
 * Each change is one transaction with its audit event and is safe to repeat.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { checkSecretRef, resolveSecret } from '../config/secrets.js';
import type { StoredSecretPolicy } from '../config/stored-secret-refs.js';
import { assertStoredSecretRefAllowed } from '../config/stored-secret-refs.js';
import { ID_PATTERN } from '../domain.js';
import { ConflictError, InvalidArgumentError, NotFoundError, SecretRefRefusedError } from '../errors/index.js';
import type { PoolClient, Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import {
  assertStoredSecretRefsAllowed,
  auditSecretRefRefusal,
  auditingSecretRefRefusals,
  readStoredSecretPolicy,
  refusingStoredSecretRefs,
} from '../store/secret-roots.js';
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
  const { rows } = await db.query<{
    version: number;
    secret_ref: string;
    state: WebhookSecretState;
    created_at: Date;
    retired_at: Date | null;
  }>(
    `SELECT version, secret_ref, state, created_at, retired_at FROM webhook_secrets
        WHERE integration_id = $1 ORDER BY version`,
    [integrationId],
  );
  return rows.map((r) => ({
    integrationId,
    version: r.version,
    secretRef: r.secret_ref,
    state: r.state,
    createdAt: r.created_at,
    retiredAt: r.retired_at,
  }));
}

async function lockIntegration(
  client: PoolClient,
  integrationId: string,
): Promise<{ tenantId: string; secrets: WebhookSecret[] }> {
  const res = await client.query<{ tenant_id: string }>('SELECT tenant_id FROM integrations WHERE id = $1 FOR UPDATE', [
    integrationId,
  ]);
  if (!res.rows[0]) throw new NotFoundError('integration', integrationId);
  return { tenantId: res.rows[0].tenant_id, secrets: await listWebhookSecrets(client, integrationId) };
}

function audit(
  client: PoolClient,
  ctx: AuditContext,
  tenantId: string,
  integrationId: string,
  action: string,
  details: Record<string, unknown>,
): Promise<unknown> {
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
  const scope = { stage: 'rotation' as const, integrationId };
  if (opts.secretRef !== undefined) {
    await assertStoredSecretRefsAllowed(pool, ctx, [{ field: 'webhook secret', ref: opts.secretRef }], scope);
    checkSecretRef(opts.secretRef, { field: 'webhook secret' });
  }
  // The reference is stored by the definer function add_webhook_secret, which checks it again.
  return auditingSecretRefRefusals(pool, ctx, scope, () =>
    withTransaction(pool, async (client) => {
      const locked = await lockIntegration(client, integrationId);
      const version = Math.max(0, ...locked.secrets.map((s) => s.version)) + 1;
      const current = locked.secrets.find((s) => s.state === 'current');
      const ref = opts.secretRef ?? (await generateSecretFile(opts.secretsDir, integrationId, version));
      await client.query(
        `UPDATE webhook_secrets SET state = 'retired', retired_at = now() WHERE integration_id = $1
            AND state = 'previous'`,
        [integrationId],
      );
      if (current)
        await client.query(`UPDATE webhook_secrets SET state = 'previous' WHERE integration_id = $1 AND version = $2`, [
          integrationId,
          current.version,
        ]);
      await refusingStoredSecretRefs(() =>
        client.query('SELECT add_webhook_secret($1, $2, $3)', [integrationId, version, ref]),
      );
      await audit(client, ctx, locked.tenantId, integrationId, 'webhook_secret.added', {
        version,
        previousVersion: current?.version ?? null,
        generated: opts.secretRef === undefined,
      });
      return { version, previousVersion: current?.version ?? null };
    }),
  );
}

/** Ends a secret's acceptance. The current secret cannot be retired (add a new one first). */
export async function retireWebhookSecret(
  pool: Pool,
  integrationId: string,
  version: number,
  ctx: AuditContext,
): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    const locked = await lockIntegration(client, integrationId);
    const secret = locked.secrets.find((s) => s.version === version);
    if (!secret) throw new NotFoundError(`webhook secret of integration ${integrationId}`, String(version));
    if (secret.state === 'retired') return { changed: false };
    if (secret.state === 'current')
      throw new ConflictError('webhook secret', String(version), 'is current: add a new secret before retiring it');
    await client.query(
      `UPDATE webhook_secrets SET state = 'retired', retired_at = now() WHERE integration_id = $1 AND version = $2`,
      [integrationId, version],
    );
    await audit(client, ctx, locked.tenantId, integrationId, 'webhook_secret.retired', { version });
    return { changed: true };
  });
}

/**
 * Rollback of a rotation: the new secret is retired and `previous` is current again. No-op when nothing is
 * previous.
 */
export async function restorePreviousWebhookSecret(
  pool: Pool,
  integrationId: string,
  ctx: AuditContext,
): Promise<{ restoredVersion: number | null }> {
  return withTransaction(pool, async (client) => {
    const locked = await lockIntegration(client, integrationId);
    const previous = locked.secrets.find((s) => s.state === 'previous');
    const current = locked.secrets.find((s) => s.state === 'current');
    if (!previous) return { restoredVersion: null };
    if (current)
      await client.query(
        `UPDATE webhook_secrets SET state = 'retired', retired_at = now() WHERE integration_id = $1 AND version = $2`,
        [integrationId, current.version],
      );
    await client.query(`UPDATE webhook_secrets SET state = 'current' WHERE integration_id = $1 AND version = $2`, [
      integrationId,
      previous.version,
    ]);
    await audit(client, ctx, locked.tenantId, integrationId, 'webhook_secret.restored', {
      version: previous.version,
      retiredVersion: current?.version ?? null,
    });
    return { restoredVersion: previous.version };
  });
}

/** Refusals audited in the last minute, so unauthenticated deliveries cannot flood the audit trail. */
const recentRefusals = new Map<string, number>();
const REFUSAL_AUDIT_WINDOW_MS = 60_000;

/**
 * One stored webhook secret's bytes, its reference checked first against the stored-reference policy
 * (default: the database's, `secret_roots`). A refusal is audited (at most once a minute per secret
 * and rule) and thrown: the delivery cannot be verified, so it is not accepted.
 */
export async function resolveWebhookSecret(
  pool: Pool,
  secret: WebhookSecret,
  opts: { policy?: StoredSecretPolicy; actor?: string } = {},
): Promise<Buffer> {
  const field = `webhook secret v${secret.version}`;
  let ref: string;
  try {
    ref = assertStoredSecretRefAllowed(secret.secretRef, {
      field,
      policy: opts.policy ?? (await readStoredSecretPolicy(pool)),
    });
  } catch (err) {
    if (err instanceof SecretRefRefusedError) {
      const key = `${secret.integrationId}#${secret.version}#${err.rule}`;
      const last = recentRefusals.get(key);
      if (last === undefined || Date.now() - last >= REFUSAL_AUDIT_WINDOW_MS) {
        recentRefusals.set(key, Date.now());
        const ctx = { actor: opts.actor ?? 'webhook-receiver', correlationId: randomUUID() };
        await auditSecretRefRefusal(pool, ctx, err, { stage: 'use', integrationId: secret.integrationId });
      }
    }
    throw err;
  }
  return webhookSecretBytes(await resolveSecret(ref, { field }));
}

/** The secrets a verifier accepts now (current first, then previous), resolved from their checked references. */
export async function acceptedWebhookSecrets(
  pool: Pool,
  integrationId: string,
  opts: { policy?: StoredSecretPolicy } = {},
): Promise<Buffer[]> {
  const accepted = (await listWebhookSecrets(pool, integrationId))
    .filter((s) => s.state !== 'retired')
    .sort((a, b) => b.version - a.version);
  const policy = opts.policy ?? (await readStoredSecretPolicy(pool));
  return Promise.all(accepted.map((s) => resolveWebhookSecret(pool, s, { policy })));
}
