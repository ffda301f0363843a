/**
 * Admin API for tests and the demo. Every route requires `x-sandbox-admin: <adminToken>`. The client routes
 * are client-admin.ts, the consistency and Bulk Data ones consistency-admin.ts, webhooks webhook-sender.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { RESOURCE_TYPES, isResourceType } from '../lib/domain.js';
import { badRequest } from './admin-reply.js';
import { registerClientAdminRoutes } from './client-admin.js';
import type { SandboxContext } from './context.js';
import { identityStrings, patientIdentity } from './data.js';
import { FaultRequest } from './faults.js';
import type { RecordRef } from './store.js';
import { registerConsistencyAdminRoutes } from './consistency-admin.js';
import { registerWebhookSenderRoutes } from './webhook-sender.js';

export const ADMIN_HEADER = 'x-sandbox-admin';
const FULL_IDENTIFIERS_MAX_SIZE = 20_000;
const TRUNCATED_PATIENTS = 5_000;
const MAX_BATCH = 100_000;

const TypeName = z.enum(RESOURCE_TYPES);
const ModifyBody = z
  .object({
    resourceType: TypeName,
    count: z.number().int().min(0).max(MAX_BATCH).optional(),
    ids: z.array(z.string().max(64)).max(MAX_BATCH).optional(),
  })
  .strict()
  .refine((b) => (b.count === undefined) !== (b.ids === undefined), 'give exactly one of count or ids');
const CreateBody = z.object({ resourceType: TypeName, count: z.number().int().min(1).max(MAX_BATCH) }).strict();
const RateLimitBody = z
  .object({
    requests: z.number().int().min(1).max(1_000_000),
    windowMs: z.number().int().min(1).max(3_600_000),
    window: z.enum(['fixed', 'sliding']),
  })
  .strict()
  .nullable();
/** Skew of the vendor's clock in seconds (positive: ahead of real time). */
const ClockBody = z.object({ skewSeconds: z.number().int().min(-86_400).max(86_400) }).strict();
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function summary(refs: readonly RecordRef[]): Array<{ id: string; versionId: string; lastUpdated: string }> {
  return refs.map((r) => ({
    id: r.id,
    versionId: String(r.version),
    lastUpdated: new Date(r.lastUpdatedMs).toISOString(),
  }));
}

export function registerAdminRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const expected = digest(ctx.adminToken);
  app.register(
    async (admin) => {
      admin.addHook('onRequest', async (req, reply) => {
        const given = req.headers[ADMIN_HEADER];
        if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
          return reply
            .code(401)
            .send({ error: 'unauthorized', error_description: `missing or wrong ${ADMIN_HEADER} header` });
        }
      });

      // Client registration, token expiry, and the vendor disabling or narrowing a client.
      registerClientAdminRoutes(admin, ctx);
      // The request ledger: FHIR requests that arrived at or after `since` (ms since the epoch).
      admin.get<{ Querystring: { since?: string } }>('/ledger', async (req, reply) => {
        const since = req.query.since === undefined ? 0 : Number(req.query.since);
        if (!Number.isFinite(since) || since < 0)
          return reply
            .code(400)
            .send({ error: 'invalid_request', error_description: 'since must be ms since the epoch' });
        return { entries: ctx.ledger.filter((e) => e.atMs >= since) };
      });

      admin.post('/records/modify', async (req, reply) => {
        const parsed = ModifyBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        const { resourceType, ids, count } = parsed.data;
        if (ids) {
          const result = ctx.store.modifyByIds(resourceType, ids);
          if (result.unknown.length > 0)
            return reply.code(404).send({ error: 'not_found', unknownIds: result.unknown.slice(0, 20) });
          return { modified: summary(result.modified) };
        }
        return { modified: summary(ctx.store.modifySpread(resourceType, count ?? 0)) };
      });

      admin.post('/records/create', async (req, reply) => {
        const parsed = CreateBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        return { created: summary(ctx.store.create(parsed.data.resourceType, parsed.data.count)) };
      });

      admin.get<{ Querystring: { type?: string } }>('/manifest', async (req, reply) => {
        const type = req.query.type;
        if (typeof type !== 'string' || !isResourceType(type)) {
          return reply
            .code(400)
            .send({ error: 'invalid_request', error_description: 'type must be a supported resource type' });
        }
        return { resourceType: type, records: summary(ctx.store.manifest(type)) };
      });

      admin.get<{ Params: { type: string; id: string } }>('/resource/:type/:id', async (req, reply) => {
        const { type, id } = req.params;
        const ref = isResourceType(type) ? ctx.store.lookup(type, id) : undefined;
        if (!ref) return reply.code(404).send({ error: 'not_found' });
        return reply.type('application/fhir+json; charset=utf-8').send(JSON.stringify(ctx.store.render(ref)));
      });

      admin.get('/identifiers', async () => {
        const truncated = ctx.size > FULL_IDENTIFIERS_MAX_SIZE;
        const base = ctx.store.baseCount('Patient');
        const limit = truncated ? Math.min(base, TRUNCATED_PATIENTS) : base;
        const strings = new Set<string>();
        const seed = ctx.store.seed;
        for (let i = 0; i < limit; i++) for (const s of identityStrings(patientIdentity(seed, i))) strings.add(s);
        for (const i of ctx.store.createdPatientIndices())
          for (const s of identityStrings(patientIdentity(seed, i))) strings.add(s);
        return { strings: [...strings], truncated, patients: limit + ctx.store.createdPatientIndices().length };
      });

      admin.get('/stats', async () => ctx.stats.toJSON());
      admin.post('/stats/reset', async () => {
        ctx.stats.reset();
        return ctx.stats.toJSON();
      });

      // The personality and the live state of its rate limit.
      admin.get('/personality', async () => ({
        personality: ctx.personality,
        rateLimit: ctx.rateLimiter.state(),
        clockSkewSeconds: ctx.clock.skewMs / 1000,
      }));
      admin.put('/rate-limit', async (req, reply) => {
        const parsed = RateLimitBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        ctx.rateLimiter.configure(parsed.data);
        return { rateLimit: ctx.rateLimiter.state() };
      });
      admin.put('/clock', async (req, reply) => {
        const parsed = ClockBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        ctx.clock.skewMs = parsed.data.skewSeconds * 1000;
        return { clockSkewSeconds: parsed.data.skewSeconds };
      });
      admin.post('/faults', async (req, reply) => {
        const parsed = FaultRequest.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        const fault = ctx.faults.add(parsed.data);
        return reply.code(201).send({ fault, pending: ctx.faults.pending() });
      });
      admin.delete('/faults', async () => ({ cleared: ctx.faults.clear() }));
      admin.get('/faults', async () => ({ pending: ctx.faults.pending() }));
      // The vendor notifies a subscriber (Standard Webhooks).
      registerWebhookSenderRoutes(admin, ctx);
      // Deletions, transactions, ties, search cap/cache/page size, and Bulk Data misbehaviour.
      registerConsistencyAdminRoutes(admin, ctx);
    },
    { prefix: '/admin' },
  );
}
