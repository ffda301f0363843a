/**
 * What the gateway checks on every FHIR request before a handler sees it, in this order (cheapest and least
 * telling first): a bearer token (401), its signature, type, issuer, audience and expiry (401), the consumer it
 * names still active, of the token's tenant, and not changed since the token was issued (401: a revocation or
 * a restoration ends every token issued before it), the consumer's rate limit (429 + Retry-After), an incident
 * that freezes the tenant's reads (503 with a reason code). Then the active break-glass grants of the consumer
 * (from the breakglass side's `grantsFor`), and the GatewayAccess the handlers get. Every refusal is a
 * GatewayRefusalError; the gateway audits it.
 */
import type { BreakGlassGrant, GatewayAccess } from '../access.js';
import { GatewayRefusalError } from '../../errors/index.js';
import { holdCovering } from '../../incidents/holds.js';
import type { Pool } from '../../store/pool.js';
import { readConsumer } from '../consumers-repository.js';
import { splitScopes } from '../scopes.js';
import type { AccessTokens } from './access-tokens.js';
import type { ConsumerRateLimiter } from './rate-limit.js';

/** Retry-After of a 503 while an incident freezes the tenant. */
export const FROZEN_RETRY_AFTER_SECONDS = 300;

export interface RequestAuthDeps {
  pool: Pool;
  tokens: AccessTokens;
  rateLimiter: ConsumerRateLimiter;
  /** The consumer's break-glass grants (the breakglass side); expired ones are dropped here. */
  grantsFor?: (consumerId: string) => Promise<BreakGlassGrant[]>;
  now?: () => number;
}

export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer ([A-Za-z0-9\-_.~+/]+=*)$/i.exec(authorization?.trim() ?? '');
  return m?.[1];
}

export async function authorizeRequest(
  deps: RequestAuthDeps,
  authorization: string | undefined,
  correlationId: string,
): Promise<GatewayAccess> {
  const token = bearerToken(authorization);
  if (!token) throw new GatewayRefusalError(401, 'invalid_request', 'token-missing');
  const claims = await deps.tokens.verify(token);
  const consumer = await readConsumer(deps.pool, claims.consumerId);
  if (!consumer) throw new GatewayRefusalError(401, 'invalid_token', 'unknown-consumer');
  const known = (status: 401 | 429 | 503, error: string, reason: string, retryAfter?: number) =>
    new GatewayRefusalError(status, error, reason, consumer.id, consumer.tenantId, retryAfter);
  if (consumer.status !== 'active') throw known(401, 'invalid_token', 'consumer-revoked');
  if (consumer.tenantId !== claims.tenantId) throw known(401, 'invalid_token', 'token-tenant');
  if (claims.consumerGeneration !== consumer.statusChangedAt.getTime())
    throw known(401, 'invalid_token', 'token-before-status-change');
  const parsed = splitScopes(claims.scope);
  if (parsed.unknown.length > 0 || parsed.scopes.length === 0) throw known(401, 'invalid_token', 'token-scope');

  const rate = deps.rateLimiter.take(consumer.id, consumer.ratePerMinute, consumer.rateBurst);
  if (!rate.allowed) throw known(429, 'rate_limited', 'rate-limited', rate.retryAfterSeconds);

  const hold = await holdCovering(deps.pool, 'exports_frozen', { tenantId: consumer.tenantId });
  if (hold) throw known(503, 'unavailable', 'incident-freeze', FROZEN_RETRY_AFTER_SECONDS);

  const now = (deps.now ?? Date.now)();
  const grants = deps.grantsFor ? await deps.grantsFor(consumer.id) : [];
  return {
    tenantId: consumer.tenantId,
    consumerId: consumer.id,
    purpose: consumer.purpose,
    scopes: parsed.scopes,
    breakGlass: grants.filter((g) => g.consumerId === consumer.id && g.expiresAt.getTime() > now),
    correlationId,
  };
}
