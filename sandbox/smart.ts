/**
 * SMART Backend Services: client registry, client authentication by the registered method, jti replay,
 * opaque access tokens and their scopes. The assertion's verification is smart-assertion.ts, the HTTP
 * routes (discovery, token, revocation) smart-routes.ts. Error descriptions are fixed strings: they never
 * echo the assertion or a token.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { ResourceType } from '../lib/domain.js';
import {
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
import { ASSERTION_TYPE, CLOCK_SKEW_S, OAuthFailure, invalidClient, verifyClientAssertion } from './smart-assertion.js';

// Callers import these from here, as before the assertion check and the routes got files of their own.
export { ASSERTION_TYPE } from './smart-assertion.js';
export { registerSmartRoutes, smartConfiguration } from './smart-routes.js';

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

  /**
   * Verifies a client assertion (smart-assertion.ts) and that its jti was not used before; returns the
   * authenticated client or throws OAuthFailure.
   */
  async verifyAssertion(
    assertion: string,
    endpoints: { tokenUrl: string; issuer: string },
    formClientId: string | undefined,
  ): Promise<RegisteredClient> {
    const { client, kid, jti, exp } = await verifyClientAssertion(
      assertion,
      endpoints,
      formClientId,
      (clientId) => this.clients.get(clientId),
      () => this.now(),
    );
    this.sweep();
    const jtiKey = `${client.clientId}\n${jti}`;
    if (this.usedJtis.has(jtiKey)) throw invalidClient('assertion jti has already been used');
    this.usedJtis.set(jtiKey, (exp + CLOCK_SKEW_S) * 1000);
    client.kidsSeen.set(kid, (client.kidsSeen.get(kid) ?? 0) + 1);
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

/** True when the token's scopes allow reading and searching `type`. */
export function scopeAllows(token: AccessToken, type: ResourceType): boolean {
  return [`system/${type}.rs`, `system/${type}.read`, 'system/*.rs', 'system/*.read'].some((s) => token.scopes.has(s));
}
