/**
 * Read paths beside search: the personality's roster `Group/[id]` (every patient of the data set as a
 * member) and type-level `_history` (`_since`, newest first, deletions as entries with
 * `request.method: DELETE`) where the personality offers it.
 */
import type { FastifyInstance } from 'fastify';
import type { SandboxContext } from './context.js';
import { admit, checkType, FHIR_JSON, sendOutcome } from './fhir-routes.js';
import { faultResponse } from './faults.js';
import { BadRequest, applyLastUpdated, single, type Query } from './search-params.js';

const HISTORY_PAGE_MAX = 1000;

export function rosterGroup(ctx: SandboxContext): Record<string, unknown> {
  const n = ctx.store.count('Patient');
  const member: Array<{ entity: { reference: string } }> = [];
  for (let i = 0; i < n; i++) {
    const ref = ctx.store.ref('Patient', i);
    if (ref && !ref.deleted) member.push({ entity: { reference: `Patient/${ref.id}` } });
  }
  return {
    resourceType: 'Group',
    id: ctx.reads.groupId,
    meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00.000Z' },
    type: 'person',
    actual: true,
    name: 'Practice roster (synthetic)',
    quantity: member.length,
    member,
  };
}

export function registerReadRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const base = ctx.personality.basePath;

  app.get<{ Params: { id: string }; Querystring: Query }>(`${base}/Group/:id`, async (req, reply) => {
    ctx.stats.readRequests++;
    const token = admit(ctx, req, reply);
    if (!token) return reply;
    if (req.params.id !== ctx.reads.groupId) return sendOutcome(reply, 404, 'not-found', 'Group not found');
    return reply.type(FHIR_JSON).send(JSON.stringify(rosterGroup(ctx)));
  });

  app.get<{ Params: { type: string }; Querystring: Query }>(`${base}/:type/_history`, async (req, reply) => {
    ctx.stats.searchRequests++;
    const token = admit(ctx, req, reply);
    if (!token) return reply;
    const type = checkType(ctx, token, req.params.type, reply);
    if (!type) return reply;
    if (!ctx.reads.history) return sendOutcome(reply, 404, 'not-supported', '_history is not supported');
    let sinceMs: number | undefined;
    let count = 100;
    let offset = 0;
    try {
      const since = single(req.query, '_since');
      if (since !== undefined) {
        const b: { lower?: { ms: number; inclusive: boolean } } = {};
        applyLastUpdated(b, `gt${since.replace(/ /g, '+')}`);
        sinceMs = b.lower?.ms;
      }
      const c = single(req.query, '_count');
      if (c !== undefined) count = Math.min(Math.max(1, Number(c) || 1), HISTORY_PAGE_MAX);
      const o = single(req.query, '_getpagesoffset');
      if (o !== undefined) offset = Math.max(0, Number(o) || 0);
    } catch (err) {
      if (err instanceof BadRequest) return sendOutcome(reply, 400, err.code, err.message);
      throw err;
    }
    const all = ctx.changes.history(type, sinceMs);
    const page = all.slice(offset, offset + count);
    const typeUrl = `${ctx.urls.fhirBaseUrl}/${type}`;
    const link = [{ relation: 'self', url: `${ctx.urls.url}${req.url}` }];
    if (offset + count < all.length) {
      const next = new URLSearchParams({ _count: String(count), _getpagesoffset: String(offset + count) });
      if (sinceMs !== undefined) next.set('_since', new Date(sinceMs).toISOString());
      link.push({ relation: 'next', url: `${typeUrl}/_history?${next.toString()}` });
    }
    const bundle = {
      resourceType: 'Bundle',
      type: 'history',
      total: all.length,
      link,
      entry: page.map((ref) =>
        ref.deleted
          ? {
              fullUrl: `${typeUrl}/${ref.id}`,
              request: { method: 'DELETE', url: `${type}/${ref.id}` },
              response: { status: '204', lastModified: new Date(ref.lastUpdatedMs).toISOString() },
            }
          : {
              fullUrl: `${typeUrl}/${ref.id}`,
              resource: ctx.store.render(ref),
              request: { method: ref.version === 1 ? 'POST' : 'PUT', url: `${type}/${ref.id}` },
              response: { status: ref.version === 1 ? '201' : '200', etag: `W/"${ref.version}"` },
            },
      ),
    };
    const fault = ctx.faults.takeHistory(type);
    if (fault) {
      ctx.stats.faultsInjected++;
      // History faults are of kind status: the answer replaces the page whole.
      const raw = faultResponse(fault, type, { ...bundle, entry: [] });
      if (raw) return reply.code(raw.status).headers(raw.headers).send(raw.body);
    }
    return reply.type(FHIR_JSON).send(JSON.stringify(bundle));
  });
}
