/**
 * Admin API for tests and the demo. Every route requires `x-sandbox-admin: <adminToken>`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { JWK } from 'jose';
import { z } from 'zod';
import { RESOURCE_TYPES, isResourceType } from '../lib/domain.js';
import { CLIENT_AUTH_METHODS } from './client-auth.js';
import type { SandboxContext } from './context.js';
import type { ClientRegistration } from './smart.js';
import { identityStrings, patientIdentity } from './data.js';
import { FaultRequest } from './faults.js';
import type { RecordRef } from './store.js';
import { narrowClientScopes } from './token-policy.js';
import { registerConsistencyAdminRoutes } from './consistency-admin.js';
import { registerWebhookSenderRoutes } from './webhook-sender.js';

export const ADMIN_HEADER = 'x-sandbox-admin';
const FULL_IDENTIFIERS_MAX_SIZE = 20_000;
const TRUNCATED_PATIENTS = 5_000;
const MAX_BATCH = 100_000;

const PUBLIC_JWK_FIELDS = new Set([
  'kty',
  'kid',
  'alg',
  'use',
  'key_ops',
  'n',
  'e',
  'crv',
  'x',
  'y',
  'x5c',
  'x5t',
  'x5t#S256',
  'ext',
]);
const Jwk = z
  .object({ kty: z.enum(['RSA', 'EC']), kid: z.string().min(1).max(200) })
  .catchall(z.unknown())
  .refine((k) => Object.keys(k).every((name) => PUBLIC_JWK_FIELDS.has(name)), 'only public JWK members are accepted');
const ClientBody = z
  .object({
    client_id: z
      .string()
      .regex(/^[A-Za-z0-9._~-]{1,128}$/)
      .optional(),
    token_endpoint_auth_method: z.enum(CLIENT_AUTH_METHODS).default('private_key_jwt'),
    jwks: z.object({ keys: z.array(Jwk).min(1).max(20) }).optional(),
    jwks_uri: z.string().url().max(2000).optional(),
    client_secret: z.string().min(16).max(512).optional(),
    tls_client_auth_subject_dn: z.string().min(1).max(1000).optional(),
    /** RFC 8705 `x5t#S256` of the client certificate. */
    tls_client_cert_thumbprint: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/)
      .optional(),
    assertion_audience: z.enum(['token-endpoint', 'issuer']).default('token-endpoint'),
    scopes: z
      .array(z.string().regex(/^[A-Za-z0-9/*._:-]{1,100}$/))
      .min(1)
      .max(100),
    jku: z.string().max(2000).optional(),
  })
  .strict()
  .refine(
    (b) => {
      switch (b.token_endpoint_auth_method) {
        case 'private_key_jwt':
          return (b.jwks === undefined) !== (b.jwks_uri === undefined);
        case 'client_secret_basic':
        case 'client_secret_post':
          return b.client_secret !== undefined;
        case 'tls_client_auth':
          return b.tls_client_auth_subject_dn !== undefined || b.tls_client_cert_thumbprint !== undefined;
      }
    },
    'private_key_jwt needs exactly one of jwks or jwks_uri; ' +
      'client_secret_* need client_secret; ' +
      'tls_client_auth needs a subject DN or thumbprint',
  );
type ClientBody = z.infer<typeof ClientBody>;

function registration(clientId: string, b: ClientBody): ClientRegistration {
  return {
    clientId,
    scopes: b.scopes,
    authMethod: b.token_endpoint_auth_method,
    assertionAudience: b.assertion_audience,
    ...(b.jwks ? { jwks: { keys: b.jwks.keys as JWK[] } } : {}),
    ...(b.jwks_uri ? { jwksUri: b.jwks_uri } : {}),
    ...(b.client_secret !== undefined ? { clientSecret: b.client_secret } : {}),
    ...(b.tls_client_auth_subject_dn ? { tlsSubjectDn: b.tls_client_auth_subject_dn } : {}),
    ...(b.tls_client_cert_thumbprint ? { tlsThumbprint: b.tls_client_cert_thumbprint } : {}),
    ...(b.jku ? { jku: b.jku } : {}),
  };
}
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
const ExpireBody = z.object({ client_id: z.string().max(128).optional() }).strict();
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
const ScopesBody = z
  .object({
    scopes: z
      .array(z.string().regex(/^[A-Za-z0-9/*._:-]{1,100}$/))
      .max(100)
      .nullable(),
  })
  .strict();
const DisableBody = z.object({ disabled: z.boolean() }).strict();

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

function badRequest(reply: FastifyReply, error: z.ZodError): FastifyReply {
  const paths = error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).slice(0, 5);
  return reply.code(400).send({ error: 'invalid_request', details: paths });
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

      admin.post('/clients', async (req, reply) => {
        const parsed = ClientBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        const clientId = parsed.data.client_id ?? `sandbox-client-${randomBytes(8).toString('hex')}`;
        if (ctx.auth.hasClient(clientId))
          return reply.code(409).send({ error: 'conflict', error_description: 'client_id is taken' });
        ctx.auth.register(registration(clientId, parsed.data));
        return reply.code(201).send({ client_id: clientId });
      });

      admin.put<{ Params: { clientId: string } }>('/clients/:clientId', async (req, reply) => {
        const parsed = ClientBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        // A full re-registration under the same client id (rotated secret, new key, new certificate).
        if (!ctx.auth.hasClient(req.params.clientId)) return reply.code(404).send({ error: 'not_found' });
        ctx.auth.register(registration(req.params.clientId, parsed.data));
        return { client_id: req.params.clientId };
      });

      // How the client authenticates and what the sandbox has seen of it (never the secret or keys).
      admin.get<{ Params: { clientId: string } }>('/clients/:clientId', async (req, reply) => {
        const client = ctx.auth.client(req.params.clientId);
        if (!client) return reply.code(404).send({ error: 'not_found' });
        return {
          client_id: client.clientId,
          token_endpoint_auth_method: client.authMethod,
          assertion_audience: client.assertionAudience,
          authentications: client.authentications,
          kids_seen: Object.fromEntries(client.kidsSeen),
          known_kids: client.jwks ? client.jwks.knownKids() : [...client.keys.keys()],
          jwks_fetches: client.jwks?.fetches ?? 0,
        };
      });

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

      admin.post('/tokens/expire', async (req, reply) => {
        const parsed = ExpireBody.safeParse(req.body ?? {});
        if (!parsed.success) return badRequest(reply, parsed.error);
        return { expired: ctx.auth.expireTokens(parsed.data.client_id) };
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
      // The vendor disables (or re-enables) a client: its token requests get invalid_client.
      admin.put<{ Params: { clientId: string } }>('/clients/:clientId/disabled', async (req, reply) => {
        const parsed = DisableBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        if (!ctx.auth.hasClient(req.params.clientId)) return reply.code(404).send({ error: 'not_found' });
        if (parsed.data.disabled) ctx.disabledClients.add(req.params.clientId);
        else ctx.disabledClients.delete(req.params.clientId);
        return { client_id: req.params.clientId, disabled: parsed.data.disabled };
      });
      // The vendor narrows what a registered client may read (null lifts it): grants become the
      // intersection with what is requested, and reads outside it get 403, existing tokens included.
      admin.put<{ Params: { clientId: string } }>('/clients/:clientId/scopes', async (req, reply) => {
        const parsed = ScopesBody.safeParse(req.body);
        if (!parsed.success) return badRequest(reply, parsed.error);
        if (!ctx.auth.hasClient(req.params.clientId)) return reply.code(404).send({ error: 'not_found' });
        return {
          client_id: req.params.clientId,
          allowedTypes: narrowClientScopes(ctx, req.params.clientId, parsed.data.scopes),
        };
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
