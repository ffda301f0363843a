/**
 * The sandbox's per-base-URL rate limit, in the two shapes vendors use:
 *  - fixed window (eClinicalWorks): N calls per window; once exceeded, every call until the window
 *    ends gets 429 with NO Retry-After, so the client must know to wait for the next window;
 *  - sliding window (athenahealth-like): at most N calls in any window-long span; a 429 carries
 *    Retry-After (whole seconds, at least 1) for when the oldest call leaves the span.
 */
import type { RateLimitSpec } from './personalities.js';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds?: number };

export interface RateLimitState {
  spec: RateLimitSpec | null;
  /** Calls counted in the current window (fixed) or the last window-long span (sliding). */
  used: number;
  /** Fixed window: when the current window ends (ms since the epoch); sliding: when the oldest call leaves. */
  resetsAtMs: number | null;
  allowed: number;
  throttled: number;
}

export class RateLimiter {
  private windowStartMs = 0;
  private fixedCount = 0;
  private readonly recent: number[] = [];
  private allowed = 0;
  private throttled = 0;

  constructor(
    private spec: RateLimitSpec | null,
    private readonly now: () => number = Date.now,
  ) {}

  /** Replaces the limit (tests use small numbers) and starts afresh. */
  configure(spec: RateLimitSpec | null): void {
    this.spec = spec;
    this.reset();
  }

  reset(): void {
    this.windowStartMs = 0;
    this.fixedCount = 0;
    this.recent.length = 0;
    this.allowed = 0;
    this.throttled = 0;
  }

  /** Counts one call and says whether it may be served. */
  take(): RateDecision {
    const spec = this.spec;
    if (!spec) return this.pass();
    const now = this.now();
    if (spec.window === 'fixed') {
      // Windows are aligned to the epoch, like a per-minute counter keyed by the minute.
      const start = now - (now % spec.windowMs);
      if (start !== this.windowStartMs) {
        this.windowStartMs = start;
        this.fixedCount = 0;
      }
      this.fixedCount++;
      return this.fixedCount <= spec.requests ? this.pass() : this.block();
    }
    while (this.recent.length > 0 && (this.recent[0] as number) <= now - spec.windowMs) this.recent.shift();
    if (this.recent.length < spec.requests) {
      this.recent.push(now);
      return this.pass();
    }
    const freesAtMs = (this.recent[0] as number) + spec.windowMs;
    return this.block(Math.max(1, Math.ceil((freesAtMs - now) / 1000)));
  }

  state(): RateLimitState {
    const spec = this.spec;
    const now = this.now();
    let used = 0;
    let resetsAtMs: number | null = null;
    if (spec?.window === 'fixed') {
      const current = now - (now % spec.windowMs) === this.windowStartMs;
      used = current ? this.fixedCount : 0;
      resetsAtMs = current ? this.windowStartMs + spec.windowMs : null;
    } else if (spec) {
      const live = this.recent.filter((t) => t > now - spec.windowMs);
      used = live.length;
      resetsAtMs = live.length > 0 ? (live[0] as number) + spec.windowMs : null;
    }
    return { spec, used, resetsAtMs, allowed: this.allowed, throttled: this.throttled };
  }

  private pass(): RateDecision {
    this.allowed++;
    return { allowed: true };
  }

  private block(retryAfterSeconds?: number): RateDecision {
    this.throttled++;
    return retryAfterSeconds === undefined ? { allowed: false } : { allowed: false, retryAfterSeconds };
  }
}
