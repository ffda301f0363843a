/**
 * The webhook receiver: `POST /webhooks/<integrationId>` (Standard Webhooks). Each delivery passes,
 * in this order:
 *   1. a JSON Content-Type (415 before the body is read: a retry will not fix it, so no 5xx);
 *   2. the body size limit (413) — nothing larger is read;
 *   3. the signature, against the named integration's accepted secrets — current, and previous during
 *      a rotation's window (401 with the verifier's reason code; never the secret). An unknown
 *      integration, one without a usable secret, and a held one with a wrong signature all get this
 *      same 401, byte for byte and no sooner than UNVERIFIED_REFUSAL_FLOOR_MS: nothing about an
 *      integration or an incident is told to a sender who has not proven the secret;
 *   4. no incident hold refuses the scope's webhooks (503 + Retry-After, to a verified sender only:
 *      it redelivers after recovery, so nothing is lost while we refuse);
 *   5. the webhook id is well formed (400), the integration is active (403) and the body is a
 *      notification we understand (400);
 *   6. the delivery row and its `webhook.received` audit event, in one transaction; a webhook id
 *      seen before answers 200 without storing again;
 *   7. signal-with-start of the integration's delta-sync workflow. If that fails the row stays
 *      unsignalled and we answer 503: the redelivery signals it then.
 * Every refusal is audited (`webhook.refused`, with the real cause), rate-limited per integration and
 * reason. The body is never stored or logged: only ids, types and counts (lib/webhooks/notification.ts).
 * Plain HTTP: production puts its TLS-terminating ingress in front, like the hosted JWKS. Steps 3–7 are
 * the delivery route, webhook-delivery.ts; this file keeps the server, steps 1–2 and the process.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify from 'fastify';
import type { FastifyReply } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import type { AuditContext } from '../lib/audit/chain.js';
import { RefusalAuditLimiter } from '../lib/audit/refusal-limiter.js';
import type { Config } from '../lib/config/schema.js';
import { ID_PATTERN } from '../lib/domain.js';
import { EhrError } from '../lib/errors/index.js';
import type { Logger } from '../lib/log/logger.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import type { Pool } from '../lib/store/pool.js';
import { assertDatabaseReachable, createPool, describeDatabaseUrl } from '../lib/store/pool.js';
import { checkWebhookContentType } from '../lib/webhooks/content-type.js';
import type { DeliveryTarget, Refusal } from '../lib/webhooks/deliveries.js';
import { auditRefusal } from '../lib/webhooks/deliveries.js';
import type { ChangeNotification } from '../workflows/webhook-delta-sync.js';
import { notifyDeltaSync } from '../client/delta-sync-client.js';
import { HTTP_ERROR_NAMES } from './http-error-names.js';
import { TRANSIENT_RETRY_SECONDS, WEBHOOK_ROUTE, registerDeliveryRoute } from './webhook-delivery.js';
import { runServiceMain } from './service-main.js';

export type WebhookReceiverConfig = Pick<
  Config,
  'WEBHOOK_HOST' | 'WEBHOOK_PORT' | 'WEBHOOK_MAX_BODY_BYTES' | 'WEBHOOK_RETRY_AFTER_SECONDS'
>;

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
  /** Answer an unverified sender no sooner than this many ms after its body arrived (UNVERIFIED_REFUSAL_FLOOR_MS). */
  unverifiedRefusalFloorMs?: number;
}

export interface WebhookReceiverHandle {
  /** e.g. http://127.0.0.1:8891 — vendors post to `<url>/webhooks/<integrationId>`. */
  url: string;
  close(): Promise<void>;
}

/**
 * An unknown integration is answered without reading any secret, a known one after reading its
 * secrets (a file, or a secret manager): the floor hides that difference in the response time.
 */
export const UNVERIFIED_REFUSAL_FLOOR_MS = 100;
/** The integration id in a delivery's path, for the audit of a refusal made before the route ran. */
function claimedIntegration(url: string): Record<string, string> {
  const claimed = /^\/webhooks\/([^/?]+)/.exec(url)?.[1];
  return claimed && ID_PATTERN.test(claimed) ? { claimedIntegrationId: claimed } : {};
}

export async function startWebhookReceiver(
  config: WebhookReceiverConfig,
  deps: WebhookReceiverDeps,
): Promise<WebhookReceiverHandle> {
  const { pool, logger: log } = deps;
  const actor = deps.actor ?? `webhook-receiver:${os.hostname()}:${process.pid}`;
  const limiter = new RefusalAuditLimiter(deps.refusalAuditWindowMs);
  const floorMs = deps.unverifiedRefusalFloorMs ?? UNVERIFIED_REFUSAL_FLOOR_MS;
  const app = Fastify({ logger: false, bodyLimit: config.WEBHOOK_MAX_BODY_BYTES, forceCloseConnections: true });
  // The signature covers the exact bytes: keep the body raw (its media type is checked before it is read).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const refuse = async (reply: FastifyReply, ctx: AuditContext, r: Refusal, headers: Record<string, string> = {}) => {
    try {
      if (await auditRefusal(pool, limiter, r, ctx))
        log?.warn({ status: r.status, reason: r.reason, integrationId: r.target?.integrationId }, 'webhook refused');
    } catch (err) {
      log?.error({ err: { message: (err as Error).message }, reason: r.reason }, 'could not audit a webhook refusal');
    }
    return reply
      .code(r.status)
      .headers(headers)
      .send({ error: HTTP_ERROR_NAMES[r.status] ?? 'refused', reason: r.answerReason ?? r.reason });
  };

  // Before any body is read: unknown routes, and deliveries whose media type we will not parse.
  app.addHook('onRequest', async (req, reply) => {
    const ctx = { actor, correlationId: randomUUID() };
    // A body over the limit (or of unknown length) is cut off, not drained; a smaller one is drained so
    // the sender reads its refusal (closing on unread bytes can reset the connection before it does).
    const length = Number(req.headers['content-length'] ?? 0);
    const cutOff = !(length <= config.WEBHOOK_MAX_BODY_BYTES) || req.headers['transfer-encoding'] !== undefined;
    const unread: Record<string, string> = cutOff ? { connection: 'close' } : {};
    if (req.is404) {
      return refuse(reply, ctx, { status: 404, reason: 'unknown-route', details: { method: req.method } }, unread);
    }
    if (req.routeOptions.url !== WEBHOOK_ROUTE) return;
    const media = checkWebhookContentType(req.headers['content-type']);
    if (!media.ok) {
      return refuse(reply, ctx, { status: 415, reason: media.reason, details: claimedIntegration(req.url) }, unread);
    }
  });

  app.setErrorHandler(async (err: { statusCode?: number; code?: string }, req, reply) => {
    const ctx = { actor, correlationId: randomUUID() };
    if (err.statusCode === 413) {
      return refuse(reply, ctx, {
        status: 413,
        reason: 'body-too-large',
        details: { limitBytes: config.WEBHOOK_MAX_BODY_BYTES, ...claimedIntegration(req.url) },
      });
    }
    // The sender's malformed request (a Content-Length that lies, a broken stream): refused, never a 5xx to retry.
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      const details = { code: String(err.code ?? '').slice(0, 60), ...claimedIntegration(req.url) };
      return refuse(reply, ctx, { status: 400, reason: 'malformed-request', details });
    }
    log?.error(
      { err: { message: err instanceof EhrError ? err.message : 'unexpected failure', code: err.code } },
      'webhook delivery failed',
    );
    return reply
      .code(503)
      .header('retry-after', String(TRANSIENT_RETRY_SECONDS))
      .send({ error: 'unavailable', reason: 'temporarily-unavailable' });
  });

  app.get('/healthz', async () => ({ ok: true }));

  registerDeliveryRoute(app, { config, deps, actor, floorMs, refuse });

  await app.listen({ host: config.WEBHOOK_HOST, port: config.WEBHOOK_PORT });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.WEBHOOK_PORT;
  const host = config.WEBHOOK_HOST.includes(':') ? `[${config.WEBHOOK_HOST}]` : config.WEBHOOK_HOST;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  log?.info({ url }, 'webhook receiver listening');
  return { url, close: () => app.close() };
}

/** The process: its own pool, a Temporal client with the payload codec (signals are encrypted too). */
export async function runWebhookReceiver(
  config: Config,
  logger: Logger,
): Promise<{ handle: WebhookReceiverHandle; stop(): Promise<void> }> {
  const pool = createPool(config.DATABASE_URL, 8);
  try {
    await assertDatabaseReachable(pool, describeDatabaseUrl(config.DATABASE_URL));
    const actor = `webhook-receiver:${os.hostname()}:${process.pid}`;
    const codec = await openPayloadCodec(config, { pool, actor });
    // Lazy: the receiver starts (and stores deliveries) while Temporal is away; signals wait for it.
    const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS });
    const client = new Client({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      dataConverter: { payloadCodecs: [codec] },
    });
    const notify = (target: DeliveryTarget, n: ChangeNotification) =>
      notifyDeltaSync(client, config.TEMPORAL_TASK_QUEUE, target, n, {
        debounceSeconds: config.WEBHOOK_DEBOUNCE_SECONDS,
      });
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

if (require.main === module) runServiceMain('webhook-receiver', runWebhookReceiver);
