/**
 * Per-consumer rate limit of the gateway: a token bucket per consumer, refilled at the consumer's
 * `rate_per_minute` up to `rate_burst`. Kept in each gateway process's memory: with N gateway processes behind
 * a balancer a consumer gets at most N times its rate (the limit protects the store and the audit chain from one
 * runaway client; it is not a billing meter).
 */
export interface RateDecision {
  allowed: boolean;
  /** When refused: seconds until one request fits (Retry-After). */
  retryAfterSeconds: number;
}

export class ConsumerRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number; rate: number; burst: number }>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxConsumers = 100_000,
  ) {}

  take(consumerId: string, ratePerMinute: number, burst: number): RateDecision {
    const now = this.now();
    const perMs = ratePerMinute / 60_000;
    let b = this.buckets.get(consumerId);
    if (!b || b.rate !== ratePerMinute || b.burst !== burst) {
      if (!b && this.buckets.size >= this.maxConsumers) this.buckets.clear();
      b = { tokens: burst, at: now, rate: ratePerMinute, burst };
      this.buckets.set(consumerId, b);
    }
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) };
  }
}
