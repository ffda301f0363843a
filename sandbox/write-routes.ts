/**
 * FHIR writes with idempotency keys: `POST /fhir/:type` (create) and `PUT /fhir/:type/:id` (update or
 * create with a client id). Every write must carry `Idempotency-Key`; a repeated key from the same
 * client returns the first answer and changes nothing, and the same key with a different body is
 * refused (422) — how Stripe-style idempotency behaves, and what our vendor writes rely on.
 * Written resources live beside the generated data set; `GET /admin/writes` counts them.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isResourceType, type ResourceType } from '../lib/domain.js';
import { ADMIN_HEADER } from './admin-routes.js';
import type { SandboxContext } from './context.js';
import { operationOutcome } from './faults.js';
import { FHIR_JSON } from './fhir-routes.js';
import type { AccessToken } from './smart.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{8,255}$/;
const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;

interface StoredAnswer {
  requestDigest: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface WrittenResource {
  version: number;
  resource: Record<string, unknown>;
}

export interface WriteStats {
  created: number;
  updated: number;
  /** Requests answered from the idempotency store (nothing written). */
  replayed: number;
  /** Same key, different request: refused. */
  keyConflicts: number;
}

function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** v2 `system/Patient.cud` (any of the letters), v1 `system/Patient.write`, `*` wildcards. */
function scopeAllowsWrite(token: AccessToken, type: ResourceType, access: 'c' | 'u'): boolean {
  return [...token.scopes].some((s) => {
    const m = /^system\/([A-Za-z*]+)\.(.+)$/.exec(s);
    if (!m || (m[1] !== type && m[1] !== '*')) return false;
    return m[2] === 'write' || m[2] === '*' || (/^[cruds]+$/.test(m[2]!) && m[2]!.includes(access));
  });
}

function outcome(reply: FastifyReply, status: number, code: string, diagnostics: string): FastifyReply {
  return reply
    .code(status)
    .type(FHIR_JSON)
    .send(JSON.stringify(operationOutcome(code, diagnostics)));
}

export function registerWriteRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const answers = new Map<string, StoredAnswer>();
  const written = new Map<string, WrittenResource>();
  const stats: WriteStats = { created: 0, updated: 0, replayed: 0, keyConflicts: 0 };

  app.addContentTypeParser('application/fhir+json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      const err = new Error('body is not JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  /** Authenticates, checks scope, body and key; replays a stored answer; else runs `write` and stores its answer. */
  async function handle(
    req: FastifyRequest<{ Params: { type: string; id?: string } }>,
    reply: FastifyReply,
    access: 'c' | 'u',
    write: (type: ResourceType, resource: Record<string, unknown>) => Omit<StoredAnswer, 'requestDigest'>,
  ): Promise<FastifyReply> {
    const token = ctx.auth.authenticate(req.headers.authorization);
    if (!token) {
      ctx.stats.rejectedTokens++;
      return outcome(
        reply.header('www-authenticate', 'Bearer error="invalid_token"'),
        401,
        'login',
        'missing, unknown or expired access token',
      );
    }
    const type = req.params.type;
    if (!isResourceType(type)) return outcome(reply, 404, 'not-supported', 'unknown or unsupported resource type');
    if (!scopeAllowsWrite(token, type, access)) {
      ctx.stats.forbidden++;
      return outcome(reply, 403, 'forbidden', `access token lacks a write scope for ${type}`);
    }
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))
      return outcome(reply, 400, 'required', 'Idempotency-Key header (8-255 visible characters) is required');
    const resource = req.body as Record<string, unknown> | undefined;
    if (!resource || typeof resource !== 'object' || Array.isArray(resource) || resource.resourceType !== type) {
      return outcome(reply, 400, 'invalid', `body must be a ${type} resource`);
    }
    const storeKey = `${token.clientId}\u0000${key}`;
    const requestDigest = digest(`${req.method} ${req.url}\u0000${JSON.stringify(resource)}`);
    const previous = answers.get(storeKey);
    if (previous) {
      if (previous.requestDigest !== requestDigest) {
        stats.keyConflicts++;
        return outcome(reply, 422, 'conflict', 'Idempotency-Key was already used for a different request');
      }
      stats.replayed++;
      return reply
        .code(previous.status)
        .headers({ ...previous.headers, 'idempotent-replayed': 'true' })
        .send(previous.body);
    }
    const answer = write(type, resource);
    if (answer.status < 500) answers.set(storeKey, { requestDigest, ...answer });
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  }

  function save(
    type: ResourceType,
    id: string,
    resource: Record<string, unknown>,
    version: number,
  ): Omit<StoredAnswer, 'requestDigest'> {
    const stored = { ...resource, id, meta: { versionId: String(version), lastUpdated: new Date().toISOString() } };
    written.set(`${type}/${id}`, { version, resource: stored });
    return {
      status: version === 1 ? 201 : 200,
      headers: {
        'content-type': FHIR_JSON,
        location: `${ctx.urls.fhirBaseUrl}/${type}/${id}/_history/${version}`,
        etag: `W/"${version}"`,
      },
      body: JSON.stringify(stored),
    };
  }

  app.post<{ Params: { type: string } }>('/fhir/:type', async (req, reply) =>
    handle(req, reply, 'c', (type, resource) => {
      stats.created++;
      return save(type, `w-${randomUUID()}`, resource, 1);
    }),
  );

  app.put<{ Params: { type: string; id: string } }>('/fhir/:type/:id', async (req, reply) => {
    if (!FHIR_ID.test(req.params.id)) return outcome(reply, 400, 'invalid', 'invalid resource id');
    const existing = written.get(`${req.params.type}/${req.params.id}`);
    return handle(req, reply, existing ? 'u' : 'c', (type, resource) => {
      const ifMatch = req.headers['if-match'];
      if (existing && typeof ifMatch === 'string' && ifMatch !== `W/"${existing.version}"`) {
        return {
          status: 412,
          headers: { 'content-type': FHIR_JSON },
          body: JSON.stringify(operationOutcome('conflict', 'If-Match does not match the current version')),
        };
      }
      if (existing) stats.updated++;
      else stats.created++;
      return save(type, req.params.id, resource, (existing?.version ?? 0) + 1);
    });
  });

  const expected = createHash('sha256').update(ctx.adminToken, 'utf8').digest();
  app.get('/admin/writes', async (req, reply) => {
    const given = req.headers[ADMIN_HEADER];
    if (typeof given !== 'string' || !timingSafeEqual(createHash('sha256').update(given, 'utf8').digest(), expected)) {
      return reply.code(401).send({ error: 'unauthorized' });
    }
    return { ...stats, resources: written.size };
  });
}
