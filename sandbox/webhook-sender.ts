/**
 * The vendor side of webhooks: `POST /admin/webhooks/send` changes records (optional) and delivers a
 * Standard Webhooks message about them to a URL, as a vendor's subscription would. The body is a FHIR
 * R4 backport notification Bundle (id-only: references, no content) or plain `{type, resourceTypes}`.
 * Signed here with HMAC-SHA256 over `id.timestamp.body` — the sandbox imports nothing of the product,
 * so it cannot borrow lib/webhooks and a mistake there would not hide one here.
 * Admin-only (the caller holds the sandbox admin token), used by tests and the demo.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import type { RecordRef } from './store.js';

const SendBody = z
  .object({
    url: z
      .string()
      .url()
      .max(2000)
      .refine((u) => /^https?:\/\//.test(u), 'http(s) only'),
    /** One secret (`whsec_<base64>` or raw), or several: one signature each, as during a rotation. */
    secret: z.union([z.string().min(1).max(1000), z.array(z.string().min(1).max(1000)).min(1).max(5)]),
    resourceTypes: z.array(z.enum(RESOURCE_TYPES)).max(RESOURCE_TYPES.length).default([]),
    /** Records changed per type before notifying (0: notify without a change). */
    changes: z.number().int().min(0).max(1000).default(1),
    format: z.enum(['fhir', 'simple']).default('fhir'),
    eventType: z.enum(['event-notification', 'handshake', 'heartbeat']).default('event-notification'),
    webhookId: z
      .string()
      .regex(/^[A-Za-z0-9._:~-]{1,255}$/)
      .optional(),
    /** Added to the sandbox clock for `webhook-timestamp` (e.g. -600: a stale delivery). */
    timestampOffsetSeconds: z.number().int().min(-86_400).max(86_400).default(0),
  })
  .strict();
type SendBody = z.infer<typeof SendBody>;

const eventCounters = new WeakMap<SandboxContext, number>();

function secretBytes(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function standardWebhookSignature(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secretBytes(secret)).update(`${id}.${timestamp}.${body}`, 'utf8');
  return `v1,${mac.digest('base64')}`;
}

function notificationBundle(ctx: SandboxContext, b: SendBody, changed: RecordRef[], types: ResourceType[]): unknown {
  const eventNumber = (eventCounters.get(ctx) ?? 0) + (b.eventType === 'event-notification' ? 1 : 0);
  eventCounters.set(ctx, eventNumber);
  const focus = changed.length > 0 ? changed.map((r) => `${r.type}/${r.id}`) : types.map((t) => `${t}/unknown`);
  const parameters = [
    { name: 'subscription', valueReference: { reference: 'Subscription/sandbox-subscription' } },
    { name: 'topic', valueCanonical: 'http://example.org/fhir/SubscriptionTopic/sandbox-changes' },
    { name: 'status', valueCode: 'active' },
    { name: 'type', valueCode: b.eventType },
    { name: 'events-since-subscription-start', valueString: String(eventNumber) },
    ...(b.eventType === 'event-notification'
      ? focus.map((reference) => ({
          name: 'notification-event',
          part: [
            { name: 'event-number', valueString: String(eventNumber) },
            { name: 'focus', valueReference: { reference } },
          ],
        }))
      : []),
  ];
  return {
    resourceType: 'Bundle',
    id: randomUUID(),
    type: 'history',
    timestamp: new Date(Date.now() + ctx.clock.skewMs).toISOString(),
    entry: [
      {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: { resourceType: 'Parameters', parameter: parameters },
        request: { method: 'GET', url: 'Subscription/sandbox-subscription/$status' },
        response: { status: '200' },
      },
      ...(b.eventType === 'event-notification'
        ? changed.map((r) => ({
            fullUrl: `${ctx.urls.fhirBaseUrl}/${r.type}/${r.id}`,
            request: { method: 'PUT', url: `${r.type}/${r.id}` },
            response: { status: '200' },
          }))
        : []),
    ],
  };
}

export function registerWebhookSenderRoutes(admin: FastifyInstance, ctx: SandboxContext): void {
  admin.post('/webhooks/send', async (req, reply) => {
    const parsed = SendBody.safeParse(req.body);
    if (!parsed.success)
      return reply.code(400).send({
        error: 'invalid_request',
        error_description: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      });
    const b = parsed.data;
    const changed =
      b.eventType === 'event-notification' ? b.resourceTypes.flatMap((t) => ctx.store.modifySpread(t, b.changes)) : [];
    const body = JSON.stringify(
      b.format === 'fhir'
        ? notificationBundle(ctx, b, changed, b.resourceTypes)
        : { type: b.eventType, resourceTypes: b.resourceTypes },
    );
    const webhookId = b.webhookId ?? `msg_${randomUUID()}`;
    const timestamp = Math.floor((Date.now() + ctx.clock.skewMs) / 1000) + b.timestampOffsetSeconds;
    const secrets = Array.isArray(b.secret) ? b.secret : [b.secret];
    const res = await fetch(b.url, {
      method: 'POST',
      headers: {
        'content-type': b.format === 'fhir' ? 'application/fhir+json' : 'application/json',
        'webhook-id': webhookId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': secrets.map((s) => standardWebhookSignature(s, webhookId, timestamp, body)).join(' '),
      },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let answer: unknown = text.slice(0, 2000);
    try {
      answer = JSON.parse(text);
    } catch {
      // not JSON: kept as (truncated) text
    }
    return {
      webhookId,
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      answer,
      changed: changed.length,
      bodyBytes: Buffer.byteLength(body),
    };
  });
}
