/**
 * Admin routes (under /admin, behind the admin header) for incremental-sync and Bulk Data tests:
 * deletions, tied lastUpdated, transactions that commit late, the search cap/cache/page size/`_sort`, and
 * Bulk Data misbehaviour with what the sandbox observed of the client.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { RESOURCE_TYPES } from '../lib/domain.js';
import { BulkBehaviourPatch, newBulkBehaviour, newBulkLog } from './bulk-behaviour.js';
import type { SandboxContext } from './context.js';
import type { RecordRef } from './store.js';

const MAX_BATCH = 100_000;
const TypeName = z.enum(RESOURCE_TYPES);
const DeleteBody = z
  .object({
    resourceType: TypeName,
    count: z.number().int().min(1).max(MAX_BATCH).optional(),
    ids: z.array(z.string().max(64)).min(1).max(MAX_BATCH).optional(),
  })
  .strict()
  .refine((b) => (b.count === undefined) !== (b.ids === undefined), 'give exactly one of count or ids');
const TieBody = z.object({ resourceType: TypeName, count: z.number().int().min(1).max(MAX_BATCH) }).strict();
const TransactionBody = z
  .object({
    resourceType: TypeName,
    count: z.number().int().min(0).max(MAX_BATCH),
    deletes: z.number().int().min(0).max(MAX_BATCH).default(0),
  })
  .strict();
const SearchBehaviourBody = z
  .object({
    capResults: z.number().int().min(0).max(100_000_000).nullable(),
    cacheSeconds: z.number().int().min(1).max(3600).nullable(),
    maxPageSize: z.number().int().min(1).max(100_000),
    /** Whether searches accept (and the CapabilityStatement lists) `_sort=_lastUpdated`. */
    sortLastUpdated: z.boolean(),
  })
  .strict()
  .partial();
const ExpireBody = z.object({ jobId: z.string().max(64).optional() }).strict();

function summary(refs: readonly RecordRef[]): Array<Record<string, string | boolean>> {
  return refs.map((r) => ({
    id: r.id,
    versionId: String(r.version),
    lastUpdated: new Date(r.lastUpdatedMs).toISOString(),
    ...(r.deleted ? { deleted: true } : {}),
  }));
}

function invalid(reply: FastifyReply, error: z.ZodError): FastifyReply {
  const details = error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).slice(0, 5);
  return reply.code(400).send({ error: 'invalid_request', details });
}

function searchState(ctx: SandboxContext): Record<string, unknown> {
  const b = ctx.searchBehaviour;
  return {
    capResults: b.capResults,
    cacheSeconds: b.cacheSeconds,
    cacheHits: b.cacheHits,
    maxPageSize: ctx.maxPageSize,
    sortLastUpdated: ctx.reads.sortLastUpdated,
  };
}

export function registerConsistencyAdminRoutes(admin: FastifyInstance, ctx: SandboxContext): void {
  admin.post('/records/delete', async (req, reply) => {
    const parsed = DeleteBody.safeParse(req.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    const { resourceType, ids, count } = parsed.data;
    try {
      return { deleted: summary(ctx.changes.delete(resourceType, ids ? { ids } : { count: count ?? 0 })) };
    } catch (err) {
      if (err instanceof RangeError) return reply.code(404).send({ error: 'not_found' });
      throw err;
    }
  });

  admin.post('/records/tie', async (req, reply) => {
    const parsed = TieBody.safeParse(req.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    return { modified: summary(ctx.changes.modifyTied(parsed.data.resourceType, parsed.data.count)) };
  });

  admin.post('/transactions', async (req, reply) => {
    const parsed = TransactionBody.safeParse(req.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    const tx = ctx.changes.begin(parsed.data.resourceType, parsed.data.count, parsed.data.deletes);
    return reply
      .code(201)
      .send({ id: tx.id, startedAt: new Date(tx.startedMs).toISOString(), writes: tx.writes.length });
  });
  admin.get('/transactions', async () => ({ open: ctx.changes.open() }));
  admin.post<{ Params: { id: string } }>('/transactions/:id/commit', async (req, reply) => {
    const committed = ctx.changes.commit(req.params.id);
    if (!committed) return reply.code(404).send({ error: 'not_found' });
    return { committed: summary(committed) };
  });
  admin.post<{ Params: { id: string } }>('/transactions/:id/rollback', async (req, reply) =>
    ctx.changes.rollback(req.params.id) ? { rolledBack: true } : reply.code(404).send({ error: 'not_found' }),
  );

  admin.get('/search-behaviour', async () => searchState(ctx));
  admin.put('/search-behaviour', async (req, reply) => {
    const parsed = SearchBehaviourBody.safeParse(req.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    const b = ctx.searchBehaviour;
    if (parsed.data.capResults !== undefined) b.capResults = parsed.data.capResults;
    if (parsed.data.cacheSeconds !== undefined) {
      b.cacheSeconds = parsed.data.cacheSeconds;
      b.cache.clear();
    }
    if (parsed.data.maxPageSize !== undefined) ctx.maxPageSize = parsed.data.maxPageSize;
    if (parsed.data.sortLastUpdated !== undefined) ctx.reads.sortLastUpdated = parsed.data.sortLastUpdated;
    return searchState(ctx);
  });

  admin.get('/read-paths', async () => ({ personality: ctx.personality.id, reads: ctx.reads }));

  admin.get('/bulk/behaviour', async () => ctx.bulk.behaviour);
  admin.put('/bulk/behaviour', async (req, reply) => {
    const parsed = BulkBehaviourPatch.safeParse(req.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    for (const [key, value] of Object.entries(parsed.data)) {
      if (value !== undefined) (ctx.bulk.behaviour as unknown as Record<string, unknown>)[key] = value;
    }
    return ctx.bulk.behaviour;
  });
  admin.delete('/bulk/behaviour', async () => {
    ctx.bulk.behaviour = newBulkBehaviour();
    return ctx.bulk.behaviour;
  });
  admin.get('/bulk/log', async () => ({ ...ctx.bulk.log, otherOrigin: ctx.bulk.otherOrigin }));
  admin.delete('/bulk/log', async () => {
    ctx.bulk.log = newBulkLog();
    return ctx.bulk.log;
  });
  admin.get('/bulk/jobs', async () => ({
    jobs: [...ctx.bulk.jobs.values()].map((j) => ({
      id: j.id,
      level: j.level,
      state: j.state,
      types: j.types,
      transactionTime: new Date(j.transactionTimeMs).toISOString(),
      ...(j.expiresMs !== undefined ? { expires: new Date(j.expiresMs).toISOString() } : {}),
      files: j.files.map((f) => ({ name: f.name, kind: f.kind, count: f.count, downloads: f.downloads })),
    })),
  }));
  // Expires the files of one job (or of every completed job) now.
  admin.post('/bulk/expire', async (req, reply) => {
    const parsed = ExpireBody.safeParse(req.body ?? {});
    if (!parsed.success) return invalid(reply, parsed.error);
    const now = Date.now();
    let expired = 0;
    for (const job of ctx.bulk.jobs.values()) {
      if (parsed.data.jobId !== undefined && job.id !== parsed.data.jobId) continue;
      if (job.state !== 'complete') continue;
      job.expiresMs = now - 1;
      job.snapshots.clear();
      expired++;
    }
    return { expired };
  });
}
