/**
 * What a webhook delivery goes through once its media type and size passed (webhook-receiver.ts refuses
 * those before the body is read): steps 3–7 of the receiver — signature, incident hold, webhook id,
 * integration status and notification shape, then the stored delivery with its audit event and the
 * delta sync's signal. Apart from the receiver, which keeps the server, its early refusals and the
 * process: this is the route's own order of checks, read top to bottom.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuditContext } from '../lib/audit/chain.js';
import { InvalidArgumentError, ScopeUnderIncidentError } from '../lib/errors/index.js';
import { assertWebhookAccepted } from '../lib/incidents/holds.js';
import { authenticateDelivery } from '../lib/webhooks/authenticate-delivery.js';
import type { Refusal } from '../lib/webhooks/deliveries.js';
import { markDeliverySignalled, storeDelivery } from '../lib/webhooks/deliveries.js';
import { summariseNotification } from '../lib/webhooks/notification.js';
import type { WebhookReceiverConfig, WebhookReceiverDeps } from './webhook-receiver.js';

export const WEBHOOK_ROUTE = '/webhooks/:integrationId';
/** Retry-After when storing or signalling failed on our side. */
export const TRANSIENT_RETRY_SECONDS = 30;
const WEBHOOK_ID = /^[A-Za-z0-9._:~-]{1,255}$/;

/** Audits a refusal (rate-limited) and answers it. */
export type RefuseDelivery = (
  reply: FastifyReply,
  ctx: AuditContext,
  r: Refusal,
  headers?: Record<string, string>,
) => Promise<FastifyReply>;

export interface DeliveryRoute {
  config: WebhookReceiverConfig;
  deps: WebhookReceiverDeps;
  actor: string;
  /** An unverified sender is answered no sooner than this many ms after its body arrived. */
  floorMs: number;
  refuse: RefuseDelivery;
}

function header(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function registerDeliveryRoute(app: FastifyInstance, r: DeliveryRoute): void {
  app.post<{ Params: { integrationId: string } }>(WEBHOOK_ROUTE, async (req, reply) => {
    const started = performance.now();
    const ctx = { actor: r.actor, correlationId: randomUUID() };
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const headers = {
      'webhook-id': header(req.headers['webhook-id']),
      'webhook-timestamp': header(req.headers['webhook-timestamp']),
      'webhook-signature': header(req.headers['webhook-signature']),
    };
    const clock = r.deps.nowSeconds ? { nowSeconds: r.deps.nowSeconds() } : {};
    const auth = await authenticateDelivery(r.deps.pool, req.params.integrationId, headers, body, clock);
    if (!auth.ok) {
      await sleep(Math.max(0, r.floorMs - (performance.now() - started)));
      return r.refuse(reply, ctx, auth.refusal);
    }
    const { target } = auth;
    const integrationId = target.integrationId;

    try {
      await assertWebhookAccepted(r.deps.pool, integrationId);
    } catch (err) {
      if (!(err instanceof ScopeUnderIncidentError)) throw err;
      // The sender keeps the delivery and retries; the incident id stays on our side (audit only).
      const retryAfter = String(r.config.WEBHOOK_RETRY_AFTER_SECONDS);
      return r.refuse(
        reply,
        ctx,
        { status: 503, reason: 'scope-under-incident', target, details: { incidentId: err.incidentId } },
        { 'retry-after': retryAfter },
      );
    }

    const webhookId = headers['webhook-id']!;
    if (!WEBHOOK_ID.test(webhookId)) return r.refuse(reply, ctx, { status: 400, reason: 'bad-webhook-id', target });
    if (auth.integrationStatus !== 'active') {
      const details = { integrationStatus: auth.integrationStatus };
      return r.refuse(reply, ctx, { status: 403, reason: 'integration-not-active', target, details });
    }

    let summary: ReturnType<typeof summariseNotification>;
    try {
      summary = summariseNotification(body);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      return r.refuse(reply, ctx, {
        status: 400,
        reason: 'unrecognised-payload',
        target,
        details: { webhookId, problem: err.problem },
      });
    }

    const delivery = { webhookId, summary, bodyBytes: body.length, verifiedWith: auth.verifiedWith };
    const outcome = await storeDelivery(r.deps.pool, target, delivery, ctx);
    if (outcome.stored || !outcome.signalled) {
      // Handshakes and heartbeats change nothing; a change naming only types we do not sync neither.
      const syncs = summary.kind === 'change' && !(summary.resourceTypes.length === 0 && summary.unknownTypes > 0);
      if (syncs) {
        try {
          await r.deps.notify(target, { webhookId, resourceTypes: summary.resourceTypes });
        } catch (err) {
          r.deps.logger?.error(
            { integrationId, webhookId, err: { message: (err as Error).message } },
            'delta sync not signalled; the redelivery will',
          );
          return reply
            .code(503)
            .header('retry-after', String(TRANSIENT_RETRY_SECONDS))
            .send({ error: 'unavailable', reason: 'stored-not-signalled' });
        }
      }
      await markDeliverySignalled(r.deps.pool, integrationId, webhookId);
    }
    r.deps.logger?.info(
      { integrationId, webhookId, duplicate: !outcome.stored, resourceTypes: summary.resourceTypes },
      'webhook accepted',
    );
    return reply.code(200).send({ accepted: true, duplicate: !outcome.stored });
  });
}
