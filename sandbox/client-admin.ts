/**
 * Admin routes (under /admin, behind the admin header) for the vendor's client registry: registering and
 * re-registering a client by any auth method, what the sandbox has seen of it (never its secret or keys),
 * expiring tokens, and the vendor disabling a client or narrowing what it may read. Apart from
 * admin-routes.ts because this is the one part that speaks OAuth client metadata (RFC 7591 and 8705 names).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { JWK } from 'jose';
import { z } from 'zod';
import { badRequest } from './admin-reply.js';
import { CLIENT_AUTH_METHODS } from './client-auth.js';
import type { SandboxContext } from './context.js';
import type { ClientRegistration } from './smart.js';
import { narrowClientScopes } from './token-policy.js';

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
const ExpireBody = z.object({ client_id: z.string().max(128).optional() }).strict();
const ScopesBody = z
  .object({
    scopes: z
      .array(z.string().regex(/^[A-Za-z0-9/*._:-]{1,100}$/))
      .max(100)
      .nullable(),
  })
  .strict();
const DisableBody = z.object({ disabled: z.boolean() }).strict();

export function registerClientAdminRoutes(admin: FastifyInstance, ctx: SandboxContext): void {
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

  admin.post('/tokens/expire', async (req, reply) => {
    const parsed = ExpireBody.safeParse(req.body ?? {});
    if (!parsed.success) return badRequest(reply, parsed.error);
    return { expired: ctx.auth.expireTokens(parsed.data.client_id) };
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
}
