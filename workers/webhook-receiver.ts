/**
 * The webhook receiver: `POST /webhooks/<integrationId>` (Standard Webhooks). Each delivery passes,
 * in this order:
 *   1. the body size limit (413) — nothing larger is read;
 *   2. the integration exists (404);
 *   3. no incident hold refuses the scope's webhooks (503 + Retry-After: the sender redelivers after
 *      recovery, so nothing is lost while we refuse);
 *   4. the signature, against the integration's accepted secrets — current, and previous during a
 *      rotation's window (401 with a reason code; never the secret);
 *   5. the integration is active (403) and the body is a notification we understand (400);
 *   6. the delivery row and its `webhook.received` audit event, in one transaction; a webhook id
 *      seen before answers 200 without storing again;
 *   7. signal-with-start of the integration's delta-sync workflow. If that fails the row stays
 *      unsignalled and we answer 503: the redelivery signals it then.
 * Refusals are audited (`webhook.refused`), rate-limited per integration and reason. The body is never
 * stored or logged: only ids, types and counts (lib/webhooks/notification.ts). Plain HTTP: production
 * puts its TLS-terminating ingress in front, like the hosted JWKS.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify from 'fastify';
import type { FastifyReply } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import type { AuditContext } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { loadConfig } from '../lib/config/schema.js';
import { ID_PATTERN } from '../lib/domain.js';
import { exitCodeForError } from '../lib/errors/exit-codes.js';
import { EhrError, InvalidArgumentError, ScopeUnderIncidentError } from '../lib/errors/index.js';
import { assertWebhookAccepted } from '../lib/incidents/holds.js';
import type { Logger } from '../lib/log/logger.js';
import { createLogger } from '../lib/log/logger.js';
import { openPayloadCodec } from '../lib/security/open-purpose-keys.js';
import type { Pool } from '../lib/store/pool.js';
import { assertDatabaseReachable, createPool, describeDatabaseUrl } from '../lib/store/pool.js';
import type { DeliveryTarget, Refusal } from '../lib/webhooks/deliveries.js';
import { RefusalAuditLimiter, auditRefusal, markDeliverySignalled, storeDelivery } from '../lib/webhooks/deliveries.js';
import { summariseNotification } from '../lib/webhooks/notification.js';
import { listWebhookSecrets, resolveWebhookSecret } from '../lib/webhooks/secrets.js';
import { verifyWebhook } from '../lib/webhooks/verify.js';
import type { ChangeNotification } from '../workflows/webhook-delta-sync.js';
import { notifyDeltaSync } from '../client/delta-sync-client.js';

export type WebhookReceiverConfig = Pick<Config, 'WEBHOOK_HOST' | 'WEBHOOK_PORT' | 'WEBHOOK_MAX_BODY_BYTES' | 'WEBHOOK_RETRY_AFTER_SECONDS'>;

export interface WebhookReceiverDeps {
  pool: Pool;
  /** Hands an accepted change to the integration's delta-sync workflow; throws when it cannot. */
  notify: (target: DeliveryTarget, notification: ChangeNotification) => Promise<void>;
  logger?: Logger;
  actor?: string;
  /** Tests move the receiver's clock. */
  nowSeconds?: () => number;
  /** Audit at most one refusal per integration and reason per this many ms (default 60 s). */
  refusalAuditWindowMs?: number;
}

export interface WebhookReceiverHandle {
  /** e.g. http://127.0.0.1:8891 — vendors post to `<url>/webhooks/<integrationId>`. */
  url: string;
  close(): Promise<void>;
}

/** Retry-After when storing or signalling failed on our side. */
const TRANSIENT_RETRY_SECONDS = 30;
const WEBHOOK_ID = /^[A-Za-z0-9._:~-]{1,255}$/;

function header(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Accepted secrets, current first, with the state each had (for the audit's `verifiedWith`). */
async function acceptedSecrets(db: Pool, integrationId: string): Promise<Array<{ state: 'current' | 'previous'; bytes: Buffer }>> {
  const live = (await listWebhookSecrets(db, integrationId)).filter((s) => s.state !== 'retired').sort((a, b) => (a.state === 'current' ? -1 : b.state === 'current' ? 1 : b.version - a.version));
  return Promise.all(
    live.map(async (s) => ({ state: s.state as 'current' | 'previous', bytes: await resolveWebhookSecret(db, s) })),
  );
}

export async function startWebhookReceiver(config: WebhookReceiverConfig, deps: WebhookReceiverDeps): Promise<WebhookReceiverHandle> {
  const { pool, logger: log } = deps;
  const actor = deps.actor ?? `webhook-receiver:${os.hostname()}:${process.pid}`;
  const limiter = new RefusalAuditLimiter(deps.refusalAuditWindowMs);
  const app = Fastify({ logger: false, bodyLimit: config.WEBHOOK_MAX_BODY_BYTES, forceCloseConnections: true });
  // The signature covers the exact bytes: keep the body raw, whatever its content type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const refuse = async (reply: FastifyReply, ctx: AuditContext, r: Refusal, headers: Record<string, string> = {}) => {
    try {
      if (await auditRefusal(pool, limiter, r, ctx)) log?.warn({ status: r.status, reason: r.reason, integrationId: r.target?.integrationId }, 'webhook refused');
    } catch (err) {
      log?.error({ err: { message: (err as Error).message }, reason: r.reason }, 'could not audit a webhook refusal');
    }
    const error = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 413: 'payload_too_large', 503: 'unavailable' }[r.status] ?? 'refused';
    return reply.code(r.status).headers(headers).send({ error, reason: r.reason });
  };

  app.setErrorHandler(async (err: { statusCode?: number; code?: string }, req, reply) => {
    const ctx = { actor, correlationId: randomUUID() };
    if (err.statusCode === 413) {
      const claimed = /^\/webhooks\/([^/?]+)/.exec(req.url)?.[1];
      return refuse(reply, ctx, { status: 413, reason: 'body-too-large', details: { limitBytes: config.WEBHOOK_MAX_BODY_BYTES, ...(claimed && ID_PATTERN.test(claimed) ? { claimedIntegrationId: claimed } : {}) } });
    }
    log?.error({ err: { message: err instanceof EhrError ? err.message : 'unexpected failure', code: err.code } }, 'webhook delivery failed');
    return reply.code(503).header('retry-after', String(TRANSIENT_RETRY_SECONDS)).send({ error: 'unavailable', reason: 'temporarily-unavailable' });
  });

  app.get('/healthz', async () => ({ ok: true }));

  app.post<{ Params: { integrationId: string } }>('/webhooks/:integrationId', async (req, reply) => {
    const ctx = { actor, correlationId: randomUUID() };
    const integrationId = req.params.integrationId;
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!ID_PATTERN.test(integrationId)) return refuse(reply, ctx, { status: 404, reason: 'unknown-integration' });
    const found = await pool.query<{ tenant_id: string; vendor: string; status: string }>('SELECT tenant_id, vendor, status FROM integrations WHERE id = $1', [integrationId]);
    const row = found.rows[0];
    if (!row) return refuse(reply, ctx, { status: 404, reason: 'unknown-integration', details: { claimedIntegrationId: integrationId } });
    const target: DeliveryTarget = { tenantId: row.tenant_id, integrationId, vendor: row.vendor };

    try {
      await assertWebhookAccepted(pool, integrationId);
    } catch (err) {
      if (!(err instanceof ScopeUnderIncidentError)) throw err;
      // The sender keeps the delivery and retries; the incident id stays on our side (audit only).
      const retryAfter = String(config.WEBHOOK_RETRY_AFTER_SECONDS);
      return refuse(reply, ctx, { status: 503, reason: 'scope-under-incident', target, details: { incidentId: err.incidentId } }, { 'retry-after': retryAfter });
    }

    const secrets = await acceptedSecrets(pool, integrationId);
    if (secrets.length === 0) return refuse(reply, ctx, { status: 401, reason: 'no-webhook-secret', target });
    const headers = { 'webhook-id': header(req.headers['webhook-id']), 'webhook-timestamp': header(req.headers['webhook-timestamp']), 'webhook-signature': header(req.headers['webhook-signature']) };
    const verdict = verifyWebhook(headers, body, secrets.map((s) => s.bytes), deps.nowSeconds ? { nowSeconds: deps.nowSeconds() } : {});
    if (!verdict.ok) return refuse(reply, ctx, { status: 401, reason: verdict.reason, target });
    const webhookId = headers['webhook-id']!;
    if (!WEBHOOK_ID.test(webhookId)) return refuse(reply, ctx, { status: 400, reason: 'bad-webhook-id', target });
    if (row.status !== 'active') return refuse(reply, ctx, { status: 403, reason: 'integration-not-active', target, details: { integrationStatus: row.status } });

    let summary: ReturnType<typeof summariseNotification>;
    try {
      summary = summariseNotification(body);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      return refuse(reply, ctx, { status: 400, reason: 'unrecognised-payload', target, details: { webhookId, problem: err.problem } });
    }

    const outcome = await storeDelivery(pool, target, { webhookId, summary, bodyBytes: body.length, verifiedWith: secrets[verdict.secretIndex]!.state }, ctx);
    if (outcome.stored || !outcome.signalled) {
      // Handshakes and heartbeats change nothing; a change naming only types we do not sync neither.
      const syncs = summary.kind === 'change' && !(summary.resourceTypes.length === 0 && summary.unknownTypes > 0);
      if (syncs) {
        try {
          await deps.notify(target, { webhookId, resourceTypes: summary.resourceTypes });
        } catch (err) {
          log?.error({ integrationId, webhookId, err: { message: (err as Error).message } }, 'delta sync not signalled; the redelivery will');
          return reply.code(503).header('retry-after', String(TRANSIENT_RETRY_SECONDS)).send({ error: 'unavailable', reason: 'stored-not-signalled' });
        }
      }
      await markDeliverySignalled(pool, integrationId, webhookId);
    }
    log?.info({ integrationId, webhookId, duplicate: !outcome.stored, resourceTypes: summary.resourceTypes }, 'webhook accepted');
    return reply.code(200).send({ accepted: true, duplicate: !outcome.stored });
  });

  await app.listen({ host: config.WEBHOOK_HOST, port: config.WEBHOOK_PORT });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.WEBHOOK_PORT;
  const host = config.WEBHOOK_HOST.includes(':') ? `[${config.WEBHOOK_HOST}]` : config.WEBHOOK_HOST;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  log?.info({ url }, 'webhook receiver listening');
  return { url, close: () => app.close() };
}

/** The process: its own pool, a Temporal client with the payload codec (signals are encrypted too). */
export async function runWebhookReceiver(config: Config, logger: Logger): Promise<{ handle: WebhookReceiverHandle; stop(): Promise<void> }> {
  const pool = createPool(config.DATABASE_URL, 8);
  try {
    await assertDatabaseReachable(pool, describeDatabaseUrl(config.DATABASE_URL));
    const actor = `webhook-receiver:${os.hostname()}:${process.pid}`;
    const codec = await openPayloadCodec(config, { pool, actor });
    // Lazy: the receiver starts (and stores deliveries) while Temporal is away; signals wait for it.
    const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS });
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter: { payloadCodecs: [codec] } });
    const notify = (target: DeliveryTarget, n: ChangeNotification) =>
      notifyDeltaSync(client, config.TEMPORAL_TASK_QUEUE, target, n, { debounceSeconds: config.WEBHOOK_DEBOUNCE_SECONDS });
    const handle = await startWebhookReceiver(config, { pool, notify, logger, actor });
    return {
      handle,
      stop: async () => {
        await handle.close();
        await connection.close();
        await pool.end();
      },
    };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

if (require.main === module) {
  const config = loadConfig();
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'webhook-receiver' });
  runWebhookReceiver(config, logger)
    .then(({ stop }) => {
      const onSignal = () => void stop().then(() => process.exit(0));
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    })
    .catch((err: unknown) => {
      const message = err instanceof EhrError ? err.message : `unexpected failure: ${(err as Error)?.message ?? String(err)}`;
      process.stderr.write(`webhook-receiver: ${message}\n`);
      process.exit(exitCodeForError(err));
    });
}
