/**
 * Admin routes of the sandbox's writes (`x-sandbox-admin` required):
 *   GET  /admin/writes            counts, records with written content, and the write ledger (per request key:
 *                                 effects = versions written; more than one is a duplicate)
 *   POST /admin/write-faults      refuse the next N writes (of a type) with 400/403/409/422 and an
 *                                 OperationOutcome code, as a vendor's business rules do (or fail them with
 *                                 429/500/503, Retry-After optional)
 *   POST /admin/conflicting-edit  someone at the vendor edits given elements of a record (a new version; null
 *                                 removes an element): now, or `onNextWrite` the moment its next write arrives
 *   POST /admin/write-slow        the next N writes are carried out at once but answered after a delay
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { RESOURCE_TYPES } from '../lib/domain.js';
import { badRequest } from './admin-reply.js';
import type { SandboxContext } from './context.js';
import type { WriteLedger } from './write-ledger.js';
import { editedContent } from './write-ledger.js';

const ADMIN_HEADER = 'x-sandbox-admin';

const WriteFaultBody = z
  .object({
    status: z.union([
      z.literal(400),
      z.literal(403),
      z.literal(409),
      z.literal(422),
      z.literal(429),
      z.literal(500),
      z.literal(503),
    ]),
    code: z.string().regex(/^[a-z][a-z-]{0,63}$/),
    /** 429/503: the Retry-After sent with it. */
    retryAfterSeconds: z.number().int().min(0).max(3600).optional(),
    resourceType: z.enum(RESOURCE_TYPES).optional(),
    times: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

const ConflictingEditBody = z
  .object({
    resourceType: z.enum(RESOURCE_TYPES),
    id: z.string().regex(/^[A-Za-z0-9.-]{1,64}$/),
    elements: z.record(z.string().regex(/^[a-z][A-Za-z0-9]{0,63}$/), z.unknown()),
    /** Made the moment the record's next write arrives (before its If-Match is checked), not now. */
    onNextWrite: z.boolean().default(false),
  })
  .strict();

const SlowBody = z
  .object({
    delayMs: z.number().int().min(1).max(120_000),
    resourceType: z.enum(RESOURCE_TYPES).optional(),
    times: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

export function registerWriteAdminRoutes(app: FastifyInstance, ctx: SandboxContext, ledger: WriteLedger): void {
  const expected = createHash('sha256').update(ctx.adminToken, 'utf8').digest();
  const refused = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const given = req.headers[ADMIN_HEADER];
    if (typeof given === 'string' && timingSafeEqual(createHash('sha256').update(given, 'utf8').digest(), expected))
      return false;
    void reply.code(401).send({ error: 'unauthorized' });
    return true;
  };

  app.get('/admin/writes', async (req, reply) => {
    if (refused(req, reply)) return reply;
    return { ...ledger.stats, resources: ctx.store.writtenCount, ledger: ledger.ledger() };
  });

  app.post('/admin/write-faults', async (req, reply) => {
    if (refused(req, reply)) return reply;
    const parsed = WriteFaultBody.safeParse(req.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    const { times, ...rest } = parsed.data;
    ledger.refuseNext({ ...rest, remaining: times });
    return { queued: times };
  });

  app.post('/admin/conflicting-edit', async (req, reply) => {
    if (refused(req, reply)) return reply;
    const parsed = ConflictingEditBody.safeParse(req.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    const { resourceType, id, elements, onNextWrite } = parsed.data;
    const ref = ctx.store.lookup(resourceType, id);
    if (!ref || ref.deleted) return reply.code(404).send({ error: 'not_found' });
    if (onNextWrite) {
      ledger.editsOnNextWrite.set(`${resourceType}/${ref.id}`, elements);
      return { id: ref.id, armed: true };
    }
    const written = ctx.store.writeContent(resourceType, editedContent(ctx.store.render(ref), elements), ref.index);
    return { id: written.id, versionId: String(written.version) };
  });

  app.post('/admin/write-slow', async (req, reply) => {
    if (refused(req, reply)) return reply;
    const parsed = SlowBody.safeParse(req.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    const { times, ...rest } = parsed.data;
    ledger.slowNext({ ...rest, remaining: times });
    return { queued: times };
  });
}
