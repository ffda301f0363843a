/**
 * Access tokens per integration: cached in process memory only, refreshed ahead of expiry, one
 * request in flight per integration, and invalidated on a 401 so the caller can retry once.
 * SMART Backend Services issues no refresh token: "refresh" means a new signed client assertion.
 */
import { VendorAuthError } from '../errors/index.js';

export interface IssuedToken {
  accessToken: string;
  /** When to fetch a successor: the earlier of 60 s before expiry and 80 % of the lifetime (never before half). */
  refreshAtMs: number;
  scope: string;
}

export type TokenRequester = (
  integrationId: string,
) => Promise<{ accessToken: string; expiresInSeconds: number; scope: string }>;

export class TokenManager {
  private readonly cache = new Map<string, IssuedToken>();
  private readonly inflight = new Map<string, Promise<IssuedToken>>();
  /** Bumped by forget(): a refresh that started before a revocation must not repopulate the cache. */
  private readonly generation = new Map<string, number>();

  constructor(
    private readonly requestToken: TokenRequester,
    private readonly refreshAheadMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async accessToken(integrationId: string): Promise<string> {
    const cached = this.cache.get(integrationId);
    if (cached && cached.refreshAtMs > this.now()) return cached.accessToken;
    return (await this.refresh(integrationId)).accessToken;
  }

  /** The scope the vendor granted with the current token (a fresh token when none is cached). */
  async grantedScope(integrationId: string): Promise<string> {
    const cached = this.cache.get(integrationId);
    if (cached && cached.refreshAtMs > this.now()) return cached.scope;
    return (await this.refresh(integrationId)).scope;
  }

  /** Drops a token the vendor refused, unless a newer one has already replaced it. */
  invalidate(integrationId: string, refusedToken: string): void {
    if (this.cache.get(integrationId)?.accessToken === refusedToken) this.cache.delete(integrationId);
  }

  /** The cached token, if any (read before forget() to revoke it at the vendor). */
  peek(integrationId: string): string | undefined {
    return this.cache.get(integrationId)?.accessToken;
  }

  /** Forget every token of an integration (revocation, suspension), including one being fetched. */
  forget(integrationId: string): void {
    this.cache.delete(integrationId);
    this.inflight.delete(integrationId);
    this.generation.set(integrationId, (this.generation.get(integrationId) ?? 0) + 1);
  }

  private refresh(integrationId: string): Promise<IssuedToken> {
    const pending = this.inflight.get(integrationId);
    if (pending) return pending;
    const started = this.now();
    const generation = this.generation.get(integrationId) ?? 0;
    const request = this.requestToken(integrationId)
      .then((t) => {
        if ((this.generation.get(integrationId) ?? 0) !== generation) {
          throw new VendorAuthError(integrationId, 'credentials were revoked while a token was being fetched');
        }
        const lifetimeMs = t.expiresInSeconds * 1000;
        // Refresh at the earlier of `refreshAheadMs` before expiry and 80 % of the lifetime, but never
        // before half of it: a very short-lived token is still reused for back-to-back calls.
        const refreshAtMs =
          started + Math.max(Math.min(lifetimeMs - this.refreshAheadMs, lifetimeMs * 0.8), lifetimeMs / 2);
        const issued = { accessToken: t.accessToken, scope: t.scope, refreshAtMs };
        this.cache.set(integrationId, issued);
        return issued;
      })
      .finally(() => {
        if (this.inflight.get(integrationId) === request) this.inflight.delete(integrationId);
      });
    this.inflight.set(integrationId, request);
    return request;
  }
}
