/**
 * The gateway's token endpoint (SMART Backend Services, the gateway as authorization server): a
 * `client_credentials` grant authenticated by a `private_key_jwt` client assertion (RFC 7523; RS384 or
 * ES384, iss = sub = the consumer id, aud = this token URL, exp at most 5 minutes ahead, a jti never seen
 * before), verified with jose against the consumer's registered JWKS (inline, or fetched from its JWKS URL
 * and cached). The requested scopes must be SMART v2 scopes within the consumer's registered ones. The
 * assertion's jti is remembered in PostgreSQL until it expires, in the same transaction as the token's
 * `gateway.token.issued` audit event, so every gateway process refuses a replay. Every refusal is a
 * GatewayRefusalError: the caller is told only the RFC 6749 code, the audit trail gets the reason.
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import type { AuditContext } from '../../audit/chain.js';
import { appendAuditEvents } from '../../audit/chain.js';
import { ID_PATTERN } from '../../domain.js';
import { GatewayRefusalError } from '../../errors/index.js';
import type { Pool } from '../../store/pool.js';
import { withTransaction } from '../../store/pool.js';
import type { ConsumerRow } from '../consumers-repository.js';
import { readConsumer, rememberJti, sweepExpiredJtis } from '../consumers-repository.js';
import { formatScope, scopesNotCovered, splitScopes } from '../scopes.js';
import type { AccessTokens } from './access-tokens.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['RS384', 'ES384'] as const;
const MAX_ASSERTION_LIFETIME_S = 300;
const CLOCK_SKEW_S = 10;
const MAX_ASSERTION_CHARS = 16 * 1024;
const SWEEP_EVERY_MS = 60_000;

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
}

/** Consumers' key sets: inline JWKS per call, remote ones cached per URL (jose refreshes them on unknown kids). */
export class ConsumerKeySets {
  private readonly remote = new Map<string, JWTVerifyGetKey>();
  keySet(consumer: ConsumerRow): JWTVerifyGetKey {
    if (consumer.jwks) return createLocalJWKSet(consumer.jwks);
    const url = consumer.jwksUrl!;
    let set = this.remote.get(url);
    if (!set) {
      set = createRemoteJWKSet(new URL(url), {
        timeoutDuration: 5_000,
        cooldownDuration: 30_000,
        cacheMaxAge: 300_000,
      });
      if (this.remote.size > 1_000) this.remote.clear();
      this.remote.set(url, set);
    }
    return set;
  }
}

export interface TokenEndpointDeps {
  pool: Pool;
  tokens: AccessTokens;
  /** The absolute token URL: the audience assertions must name. */
  tokenUrl: string;
  keySets: ConsumerKeySets;
  now?: () => number;
}

const refusal = (status: 400 | 401, error: string, reason: string, consumer?: ConsumerRow) =>
  new GatewayRefusalError(status, error, reason, consumer?.id, consumer?.tenantId);

/** The claimed client id of a form, when it is a well-formed id (for the audit of a refusal). */
export function claimedConsumerId(form: Record<string, string | undefined>): string | undefined {
  let claimed = form.client_id;
  if (claimed === undefined && form.client_assertion) {
    try {
      const iss = decodeJwt(form.client_assertion).iss;
      claimed = typeof iss === 'string' ? iss : undefined;
    } catch {
      claimed = undefined;
    }
  }
  return claimed !== undefined && ID_PATTERN.test(claimed) ? claimed : undefined;
}

async function verifyAssertion(
  deps: TokenEndpointDeps,
  form: Record<string, string | undefined>,
  nowMs: number,
): Promise<{ consumer: ConsumerRow; jti: string; exp: number; kid: string }> {
  if (form.client_assertion_type !== ASSERTION_TYPE) throw refusal(400, 'invalid_request', 'assertion-type');
  const assertion = form.client_assertion ?? '';
  if (assertion.length === 0 || assertion.length > MAX_ASSERTION_CHARS || assertion.split('.').length !== 3)
    throw refusal(400, 'invalid_request', 'assertion-malformed');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw refusal(400, 'invalid_request', 'assertion-malformed');
  }
  const iss = typeof claims.iss === 'string' && ID_PATTERN.test(claims.iss) ? claims.iss : undefined;
  const consumer = iss === undefined ? undefined : await readConsumer(deps.pool, iss);
  if (!consumer) throw refusal(401, 'invalid_client', 'unknown-consumer');
  if (consumer.status !== 'active') throw refusal(401, 'invalid_client', 'consumer-revoked', consumer);
  if (form.client_id !== undefined && form.client_id !== consumer.id)
    throw refusal(401, 'invalid_client', 'client-id-mismatch', consumer);
  const alg = header.alg as (typeof ASSERTION_ALGS)[number];
  if (!ASSERTION_ALGS.includes(alg)) throw refusal(401, 'invalid_client', 'assertion-alg', consumer);
  if (typeof header.kid !== 'string' || header.kid.length === 0)
    throw refusal(401, 'invalid_client', 'assertion-kid', consumer);
  try {
    await jwtVerify(assertion, deps.keySets.keySet(consumer), {
      algorithms: [alg],
      issuer: consumer.id,
      subject: consumer.id,
      audience: deps.tokenUrl,
      clockTolerance: CLOCK_SKEW_S,
      requiredClaims: ['exp', 'jti', 'iss', 'sub', 'aud'],
      currentDate: new Date(nowMs),
    });
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw refusal(401, 'invalid_client', 'assertion-expired', consumer);
    if (err instanceof errors.JWTClaimValidationFailed)
      throw refusal(401, 'invalid_client', err.claim === 'aud' ? 'assertion-audience' : 'assertion-claims', consumer);
    if (err instanceof errors.JWSSignatureVerificationFailed)
      throw refusal(401, 'invalid_client', 'assertion-signature', consumer);
    if (err instanceof errors.JWKSNoMatchingKey)
      throw refusal(401, 'invalid_client', 'assertion-unknown-key', consumer);
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid)
      throw refusal(401, 'invalid_client', 'assertion-key-unavailable', consumer);
    throw refusal(401, 'invalid_client', 'assertion-invalid', consumer);
  }
  const exp = claims.exp as number;
  if (exp > nowMs / 1000 + MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S)
    throw refusal(401, 'invalid_client', 'assertion-lifetime', consumer);
  if (typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 255)
    throw refusal(401, 'invalid_client', 'assertion-jti', consumer);
  return { consumer, jti: claims.jti, exp, kid: header.kid };
}

export class TokenEndpoint {
  private lastSweep = 0;
  constructor(private readonly deps: TokenEndpointDeps) {}

  /** Exchanges a verified assertion for an access token; throws GatewayRefusalError. */
  async exchange(form: Record<string, string | undefined>, ctx: AuditContext): Promise<TokenResponse> {
    const nowMs = (this.deps.now ?? Date.now)();
    if (form.grant_type !== 'client_credentials') throw refusal(400, 'unsupported_grant_type', 'grant-type');
    const { consumer, jti, exp, kid } = await verifyAssertion(this.deps, form, nowMs);

    const requested = splitScopes(form.scope ?? '');
    if (requested.unknown.length > 0) throw refusal(400, 'invalid_scope', 'scope-unknown', consumer);
    if (requested.scopes.length === 0) throw refusal(400, 'invalid_scope', 'scope-missing', consumer);
    const registered = splitScopes(consumer.scopes.join(' ')).scopes;
    if (scopesNotCovered(registered, requested.scopes).length > 0)
      throw refusal(400, 'invalid_scope', 'scope-not-registered', consumer);
    const scope = requested.scopes.map(formatScope).join(' ');

    const sweep = nowMs - this.lastSweep > SWEEP_EVERY_MS;
    const issued = await withTransaction(this.deps.pool, async (client) => {
      if (sweep) await sweepExpiredJtis(client, CLOCK_SKEW_S * 2);
      if (!(await rememberJti(client, consumer.id, jti, new Date((exp + CLOCK_SKEW_S) * 1000))))
        throw refusal(401, 'invalid_client', 'jti-replayed', consumer);
      const token = await this.deps.tokens.issue({
        consumerId: consumer.id,
        tenantId: consumer.tenantId,
        scope,
        consumerGeneration: consumer.statusChangedAt.getTime(),
      });
      await appendAuditEvents(client, [
        {
          ...ctx,
          action: 'gateway.token.issued',
          outcome: 'success',
          tenantId: consumer.tenantId,
          details: {
            consumerId: consumer.id,
            scopes: scope.split(' '),
            tokenId: token.jti,
            expiresIn: token.expiresIn,
            kid,
          },
        },
      ]);
      return token;
    });
    if (sweep) this.lastSweep = nowMs;
    return { access_token: issued.token, token_type: 'bearer', expires_in: issued.expiresIn, scope };
  }
}
