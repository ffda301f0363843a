/**
 * Access tokens per integration: cached in process memory only, refreshed ahead of expiry, one
 * request in flight per integration, and invalidated on a 401 so the caller can retry once.
 * SMART Backend Services issues no refresh token: "refresh" means a new signed client assertion.
 */
export interface IssuedToken {
  accessToken: string;
  expiresAtMs: number;
  scope: string;
}

export type TokenRequester = (integrationId: string) => Promise<{ accessToken: string; expiresInSeconds: number; scope: string }>;

export class TokenManager {
  private readonly cache = new Map<string, IssuedToken>();
  private readonly inflight = new Map<string, Promise<IssuedToken>>();

  constructor(
    private readonly requestToken: TokenRequester,
    private readonly refreshAheadMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async accessToken(integrationId: string): Promise<string> {
    const cached = this.cache.get(integrationId);
    if (cached && cached.expiresAtMs - this.refreshAheadMs > this.now()) return cached.accessToken;
    return (await this.refresh(integrationId)).accessToken;
  }

  /** Drops a token the vendor refused, unless a newer one has already replaced it. */
  invalidate(integrationId: string, refusedToken: string): void {
    if (this.cache.get(integrationId)?.accessToken === refusedToken) this.cache.delete(integrationId);
  }

  /** Forget every token of an integration (revocation, suspension). */
  forget(integrationId: string): void {
    this.cache.delete(integrationId);
  }

  private refresh(integrationId: string): Promise<IssuedToken> {
    const pending = this.inflight.get(integrationId);
    if (pending) return pending;
    const started = this.now();
    const request = this.requestToken(integrationId)
      .then((t) => {
        const issued = { accessToken: t.accessToken, scope: t.scope, expiresAtMs: started + t.expiresInSeconds * 1000 };
        this.cache.set(integrationId, issued);
        return issued;
      })
      .finally(() => this.inflight.delete(integrationId));
    this.inflight.set(integrationId, request);
    return request;
  }
}
