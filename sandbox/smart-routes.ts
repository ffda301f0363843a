/**
 * The SMART HTTP surface: discovery (`.well-known/smart-configuration`), the token endpoint and RFC 7009
 * revocation. Separate from smart.ts, which keeps the client registry and the tokens: these routes are
 * the wire format and the vendor's token policy (token-policy.ts) around it. Error descriptions are fixed
 * strings: they never echo the assertion or a token.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RESOURCE_TYPES } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import type { PeerCertificate } from './smart.js';
import { ALLOWED_ALGS, ASSERTION_TYPE, OAuthFailure } from './smart-assertion.js';
import {
  TokenRefusal,
  assertAcceptedAuthMethod,
  assertClientMayAuthenticate,
  assertScopeSyntax,
  grantWithinNarrowing,
} from './token-policy.js';
import { CLIENT_AUTH_METHODS } from './client-auth.js';

/** The parts of a request that can authenticate a client: Basic header, form, TLS peer certificate. */
function clientAuthInput(
  req: FastifyRequest,
  form: URLSearchParams,
): { authorization: string | undefined; form: URLSearchParams; peer: PeerCertificate | undefined } {
  const socket = req.raw.socket as Partial<TLSSocket>;
  const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  const peer =
    cert && Buffer.isBuffer(cert.raw)
      ? { raw: cert.raw, subject: cert.subject as unknown as Record<string, string | string[]> }
      : undefined;
  return { authorization: req.headers.authorization, form, peer };
}

function endpointsOf(ctx: SandboxContext): { tokenUrl: string; issuer: string } {
  return { tokenUrl: ctx.urls.tokenUrl, issuer: ctx.urls.fhirBaseUrl };
}

function oauthError(reply: FastifyReply, status: number, error: string, description: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error, error_description: description });
}

export function smartConfiguration(ctx: SandboxContext): Record<string, unknown> {
  return {
    issuer: ctx.urls.fhirBaseUrl,
    token_endpoint: ctx.urls.tokenUrl,
    revocation_endpoint: `${ctx.urls.url}/oauth/revoke`,
    revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
    token_endpoint_auth_signing_alg_values_supported: [...ALLOWED_ALGS],
    scopes_supported: [
      ...RESOURCE_TYPES.map((t) => `system/${t}.rs`),
      'system/*.rs',
      ...RESOURCE_TYPES.map((t) => `system/${t}.read`),
    ],
    capabilities: ['client-confidential-asymmetric', 'permission-v2'],
  };
}

export function registerSmartRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, new URLSearchParams(body as string));
  });

  const discovery = async (): Promise<Record<string, unknown>> => smartConfiguration(ctx);
  app.get('/.well-known/smart-configuration', discovery);
  app.get(`${ctx.personality.basePath}/.well-known/smart-configuration`, discovery);

  // RFC 7009 token revocation, the client authenticated like at the token endpoint (assertion aud: the token endpoint).
  app.post('/oauth/revoke', async (req, reply) => {
    if (!(req.body instanceof URLSearchParams))
      return oauthError(reply, 400, 'invalid_request', 'body must be application/x-www-form-urlencoded');
    const form = req.body;
    for (const name of [
      'token',
      'token_type_hint',
      'client_assertion_type',
      'client_assertion',
      'client_id',
      'client_secret',
    ]) {
      if (form.getAll(name).length > 1) return oauthError(reply, 400, 'invalid_request', 'a parameter was repeated');
    }
    const token = form.get('token');
    if (!token) return oauthError(reply, 400, 'invalid_request', 'token is required');
    const hint = form.get('token_type_hint');
    if (hint !== null && hint !== 'access_token' && hint !== 'refresh_token')
      return oauthError(reply, 400, 'unsupported_token_type', 'unknown token_type_hint');
    try {
      const client = await ctx.auth.authenticateClient(clientAuthInput(req, form), endpointsOf(ctx));
      ctx.stats.tokensRevoked += ctx.auth.revoke(client, token);
      return reply.code(200).header('cache-control', 'no-store').send();
    } catch (err) {
      if (err instanceof OAuthFailure) return oauthError(reply, err.status, err.code, err.description);
      return oauthError(reply, 400, 'invalid_request', 'the revocation request could not be processed');
    }
  });

  app.post('/oauth/token', async (req, reply) => {
    ctx.stats.tokenRequests++;
    const fail = (status: number, error: string, description: string): FastifyReply => {
      ctx.stats.tokenRequestsRejected++;
      return oauthError(reply, status, error, description);
    };
    if (!(req.body instanceof URLSearchParams)) {
      return fail(400, 'invalid_request', 'body must be application/x-www-form-urlencoded');
    }
    const form = req.body;
    for (const name of [
      'grant_type',
      'client_assertion_type',
      'client_assertion',
      'scope',
      'client_id',
      'client_secret',
    ]) {
      if (form.getAll(name).length > 1) return fail(400, 'invalid_request', 'a parameter was repeated');
    }
    const grantType = form.get('grant_type');
    if (grantType === null) return fail(400, 'invalid_request', 'grant_type is required');
    if (grantType !== 'client_credentials')
      return fail(400, 'unsupported_grant_type', 'only client_credentials is supported');
    let method: ReturnType<typeof assertAcceptedAuthMethod>;
    try {
      method = assertAcceptedAuthMethod(ctx, req.headers.authorization, form);
    } catch (err) {
      if (err instanceof TokenRefusal) return fail(err.status, err.code, err.description);
      throw err;
    }
    if (form.has('client_assertion_type') && form.get('client_assertion_type') !== ASSERTION_TYPE) {
      return fail(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    if (form.has('client_assertion_type') && !form.get('client_assertion'))
      return fail(400, 'invalid_request', 'client_assertion is required');
    try {
      const client = await ctx.auth.authenticateClient(clientAuthInput(req, form), endpointsOf(ctx));
      assertClientMayAuthenticate(ctx, client.clientId, method);
      assertScopeSyntax(ctx, form.get('scope') ?? undefined);
      const scopes = grantWithinNarrowing(
        ctx,
        client.clientId,
        ctx.auth.grantScopes(client, form.get('scope') ?? undefined),
      );
      const accessToken = ctx.auth.issue(client.clientId, scopes, ctx.tokenTtlSeconds);
      ctx.stats.tokensIssued++;
      return reply
        .header('cache-control', 'no-store')
        .header('pragma', 'no-cache')
        .send({
          access_token: accessToken,
          token_type: 'bearer',
          expires_in: ctx.tokenTtlSeconds,
          scope: scopes.join(' '),
        });
    } catch (err) {
      if (err instanceof OAuthFailure || err instanceof TokenRefusal)
        return fail(err.status, err.code, err.description);
      return fail(400, 'invalid_request', 'the token request could not be processed');
    }
  });
}
