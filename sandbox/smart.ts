/**
 * SMART Backend Services: client registry, `private_key_jwt` assertion verification (jose), opaque access
 * tokens, discovery. Error descriptions are fixed strings: they never echo the assertion or a token.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt, decodeProtectedHeader, errors, importJWK, jwtVerify, type JWK } from 'jose';
import { RESOURCE_TYPES, type ResourceType } from '../lib/domain.js';
import type { SandboxContext } from './context.js';
import {
  TokenRefusal,
  assertAcceptedAuthMethod,
  assertClientMayAuthenticate,
  assertScopeSyntax,
  grantWithinNarrowing,
} from './token-policy.js';
import {
  CLIENT_AUTH_METHODS,
  RemoteJwks,
  certificateThumbprint,
  hashSecret,
  presentedClient,
  secretMatches,
  subjectDn,
  type AssertionAudienceRule,
  type ClientAuthMethod,
  type StoredSecret,
} from './client-auth.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ALLOWED_ALGS = ['RS384', 'ES384'] as const;
type AllowedAlg = (typeof ALLOWED_ALGS)[number];
const MAX_ASSERTION_LIFETIME_S = 300;
const CLOCK_SKEW_S = 10;

export interface RegisteredClient {
  clientId: string;
  keys: Map<string, JWK>;
  scopes: readonly string[];
  jku?: string;
  /** The one client authentication method accepted for this client (default private_key_jwt). */
  authMethod: ClientAuthMethod;
  /** private_key_jwt with a hosted JWKS instead of registered keys. */
  jwks?: RemoteJwks;
  /** client_secret_*: a salted hash, never the secret. */
  secret?: StoredSecret;
  /** tls_client_auth: the certificate's `x5t#S256` and/or subject DN. */
  tlsThumbprint?: string;
  tlsSubjectDn?: string;
  /** Which `aud` a client assertion must carry. */
  assertionAudience: AssertionAudienceRule;
  /** Successful authentications, and the kids the client's assertions used (tests read these). */
  authentications: number;
  kidsSeen: Map<string, number>;
}

/** The TLS peer certificate of the request, when the sandbox serves TLS and the client sent one. */
export interface PeerCertificate {
  raw: Buffer;
  subject?: Record<string, string | string[]>;
}

export interface AccessToken {
  clientId: string;
  scopes: ReadonlySet<string>;
  expiresAtMs: number;
}

export type ClientRegistration = {
  clientId: string;
  jwks?: { keys: JWK[] };
  scopes: string[];
  jku?: string;
  authMethod?: ClientAuthMethod;
  jwksUri?: string;
  clientSecret?: string;
  tlsThumbprint?: string;
  tlsSubjectDn?: string;
  assertionAudience?: AssertionAudienceRule;
};

class OAuthFailure extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly code: string,
    readonly description: string,
  ) {
    super(code);
  }
}

/** What the ledger and tests compare: a SHA-256 prefix of an access token, never the token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 16);
}

export class SmartAuth {
  private readonly clients = new Map<string, RegisteredClient>();
  private readonly tokens = new Map<string, AccessToken>();
  /** `${clientId}\n${jti}` → ms after which the jti can be forgotten (its assertion has expired). */
  private readonly usedJtis = new Map<string, number>();
  private lastSweepMs = 0;

  /** jwksRefetchMinMs: on an unknown kid, a hosted JWKS is refetched at most this often. */
  constructor(
    private readonly now: () => number = Date.now,
    private readonly jwksRefetchMinMs = 2_000,
  ) {}

  client(clientId: string): RegisteredClient | undefined {
    return this.clients.get(clientId);
  }

  hasClient(clientId: string): boolean {
    return this.clients.has(clientId);
  }

  register(reg: ClientRegistration): void {
    const keys = new Map<string, JWK>();
    for (const key of reg.jwks?.keys ?? []) keys.set(key.kid as string, key);
    this.clients.set(reg.clientId, {
      clientId: reg.clientId,
      keys,
      scopes: [...reg.scopes],
      ...(reg.jku ? { jku: reg.jku } : {}),
      authMethod: reg.authMethod ?? 'private_key_jwt',
      ...(reg.jwksUri ? { jwks: new RemoteJwks(reg.jwksUri, this.now, this.jwksRefetchMinMs) } : {}),
      ...(reg.clientSecret !== undefined ? { secret: hashSecret(reg.clientSecret) } : {}),
      ...(reg.tlsThumbprint ? { tlsThumbprint: reg.tlsThumbprint } : {}),
      ...(reg.tlsSubjectDn ? { tlsSubjectDn: reg.tlsSubjectDn } : {}),
      assertionAudience: reg.assertionAudience ?? 'token-endpoint',
      authentications: 0,
      kidsSeen: new Map(),
    });
  }

  /**
   * Identifies and verifies the client of a token or revocation request by the method registered
   * for it. Throws OAuthFailure (fixed descriptions) otherwise.
   */
  async authenticateClient(
    req: { authorization: string | undefined; form: URLSearchParams; peer: PeerCertificate | undefined },
    endpoints: { tokenUrl: string; issuer: string },
  ): Promise<RegisteredClient> {
    const invalidClient = (why: string): OAuthFailure => new OAuthFailure(401, 'invalid_client', why);
    const presented = presentedClient(req.authorization, req.form, ASSERTION_TYPE);
    if (presented === 'none') throw new OAuthFailure(400, 'invalid_request', 'client authentication is required');
    if (presented === 'ambiguous')
      throw new OAuthFailure(400, 'invalid_request', 'more than one client authentication method was used');
    if (presented === 'malformed') throw new OAuthFailure(400, 'invalid_request', 'client authentication is malformed');
    let client: RegisteredClient;
    if (presented.method === 'private_key_jwt') {
      client = await this.verifyAssertion(presented.assertion, endpoints, presented.clientId);
    } else {
      const found = this.clients.get(presented.clientId);
      if (!found) throw invalidClient('unknown client');
      if (found.authMethod !== presented.method)
        throw invalidClient('client authentication method is not the one registered');
      if (presented.method === 'tls_client_auth') {
        if (!req.peer || req.peer.raw.length === 0) throw invalidClient('no client certificate was presented');
        const thumbprintOk =
          found.tlsThumbprint === undefined || found.tlsThumbprint === certificateThumbprint(req.peer.raw);
        const dnOk = found.tlsSubjectDn === undefined || found.tlsSubjectDn === subjectDn(req.peer.subject);
        if (!thumbprintOk || !dnOk) throw invalidClient('client certificate does not match the registration');
      } else if (!found.secret || !secretMatches(found.secret, presented.secret)) {
        throw invalidClient('client secret is wrong');
      }
      client = found;
    }
    client.authentications++;
    return client;
  }

  /** The token for a `Authorization` header value, or undefined when missing, unknown or expired. */
  authenticate(header: string | undefined): AccessToken | undefined {
    const match = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header ?? '');
    if (!match) return undefined;
    const token = this.tokens.get(match[1] as string);
    if (!token || this.now() >= token.expiresAtMs) return undefined;
    return token;
  }

  /**
   * RFC 7009 for an authenticated client: a token of another client (or an unknown one) is left
   * alone, and the answer is the same either way. A token of this client is revoked together with
   * every other token of the same grant (§2.1 allows it); for client_credentials the grant is the
   * client itself, so all of the client's access tokens die.
   */
  revoke(client: RegisteredClient, token: string): number {
    const found = this.tokens.get(token);
    if (!found || found.clientId !== client.clientId) return 0;
    let revoked = 0;
    for (const [value, t] of this.tokens) {
      if (t.clientId !== client.clientId) continue;
      this.tokens.delete(value);
      revoked++;
    }
    return revoked;
  }

  /** Replaces a registered client's key set and scopes (key rotation, restore after revocation). */
  replaceKeys(clientId: string, jwks: { keys: JWK[] }, scopes: string[]): boolean {
    const client = this.clients.get(clientId);
    if (!client) return false;
    this.register({
      clientId,
      jwks,
      scopes,
      ...(client.jku ? { jku: client.jku } : {}),
      assertionAudience: client.assertionAudience,
    });
    return true;
  }

  expireTokens(clientId?: string): number {
    const now = this.now();
    let expired = 0;
    for (const token of this.tokens.values()) {
      if (clientId !== undefined && token.clientId !== clientId) continue;
      if (token.expiresAtMs > now) expired++;
      token.expiresAtMs = Math.min(token.expiresAtMs, now);
    }
    return expired;
  }

  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweepMs < 5_000) return;
    this.lastSweepMs = now;
    for (const [key, until] of this.usedJtis) if (until <= now) this.usedJtis.delete(key);
    for (const [key, token] of this.tokens) if (token.expiresAtMs + 60_000 <= now) this.tokens.delete(key);
  }

  /** Verifies a client assertion; returns the authenticated client or throws OAuthFailure. */
  async verifyAssertion(
    assertion: string,
    endpoints: { tokenUrl: string; issuer: string },
    formClientId: string | undefined,
  ): Promise<RegisteredClient> {
    const invalidClient = (why: string): OAuthFailure => new OAuthFailure(401, 'invalid_client', why);
    if (assertion.split('.').length !== 3)
      throw new OAuthFailure(400, 'invalid_request', 'client_assertion is not a compact JWS');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      throw new OAuthFailure(400, 'invalid_request', 'client_assertion could not be decoded');
    }
    if (!ALLOWED_ALGS.includes(header.alg as AllowedAlg)) throw invalidClient('assertion alg must be RS384 or ES384');
    const alg = header.alg as AllowedAlg;
    if (typeof header.kid !== 'string' || header.kid.length === 0) throw invalidClient('assertion header lacks kid');
    if (header.typ !== undefined && header.typ.toUpperCase() !== 'JWT')
      throw invalidClient('assertion typ must be JWT');
    const client = typeof claims.iss === 'string' ? this.clients.get(claims.iss) : undefined;
    if (!client) throw invalidClient('unknown client');
    if (client.authMethod !== 'private_key_jwt')
      throw invalidClient('client authentication method is not the one registered');
    if (claims.sub !== client.clientId) throw invalidClient('iss and sub must both equal the client_id');
    if (formClientId !== undefined && formClientId !== client.clientId)
      throw invalidClient('client_id does not match the assertion');
    if (header.jku !== undefined && header.jku !== client.jku)
      throw invalidClient('jku does not match the registered JWKS URL');
    const jwk = client.jwks ? await client.jwks.key(header.kid) : client.keys.get(header.kid);
    if (!jwk) throw invalidClient('unknown kid');
    if (jwk.alg !== undefined && jwk.alg !== alg) throw invalidClient('registered key is not for this alg');
    let key: Awaited<ReturnType<typeof importJWK>>;
    try {
      key = await importJWK(jwk, alg);
    } catch {
      throw invalidClient('registered key is not usable with this alg');
    }
    try {
      await jwtVerify(assertion, key, {
        algorithms: [alg],
        issuer: client.clientId,
        subject: client.clientId,
        audience: client.assertionAudience === 'issuer' ? endpoints.issuer : endpoints.tokenUrl,
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ['exp', 'jti', 'iss', 'sub', 'aud'],
        currentDate: new Date(this.now()),
      });
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw invalidClient('assertion has expired');
      if (err instanceof errors.JWTClaimValidationFailed)
        throw invalidClient(`assertion claim "${safeClaim(err.claim)}" is invalid`);
      if (err instanceof errors.JWSSignatureVerificationFailed)
        throw invalidClient('assertion signature verification failed');
      throw invalidClient('assertion verification failed');
    }
    const nowS = this.now() / 1000;
    const exp = claims.exp as number;
    if (exp > nowS + MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S)
      throw invalidClient('assertion exp is more than 5 minutes ahead');
    if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw invalidClient('assertion lacks jti');
    this.sweep();
    const jtiKey = `${client.clientId}\n${claims.jti}`;
    if (this.usedJtis.has(jtiKey)) throw invalidClient('assertion jti has already been used');
    this.usedJtis.set(jtiKey, (exp + CLOCK_SKEW_S) * 1000);
    client.kidsSeen.set(header.kid, (client.kidsSeen.get(header.kid) ?? 0) + 1);
    return client;
  }

  /** Requested scopes that the client may have; throws invalid_scope otherwise. */
  grantScopes(client: RegisteredClient, requested: string | undefined): string[] {
    const wanted = (requested ?? '').split(' ').filter((s) => s.length > 0);
    if (wanted.length === 0) throw new OAuthFailure(400, 'invalid_scope', 'scope is required');
    const registered = new Set(client.scopes);
    for (const scope of wanted) {
      const wildcard = /^system\/[A-Za-z]+\.([a-z]+)$/.exec(scope);
      const ok = registered.has(scope) || (wildcard !== null && registered.has(`system/*.${wildcard[1]}`));
      if (!ok) throw new OAuthFailure(400, 'invalid_scope', 'requested scope exceeds the registered scopes');
    }
    return [...new Set(wanted)];
  }

  issue(clientId: string, scopes: readonly string[], ttlSeconds: number): string {
    const token = randomBytes(32).toString('base64url');
    this.tokens.set(token, { clientId, scopes: new Set(scopes), expiresAtMs: this.now() + ttlSeconds * 1000 });
    return token;
  }
}

function safeClaim(claim: string): string {
  return /^[a-z]{1,8}$/.test(claim) ? claim : 'unknown';
}

/** True when the token's scopes allow reading and searching `type`. */
export function scopeAllows(token: AccessToken, type: ResourceType): boolean {
  return [`system/${type}.rs`, `system/${type}.read`, 'system/*.rs', 'system/*.read'].some((s) => token.scopes.has(s));
}

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
