/**
 * Refusals from callers who proved nothing (no verified token, no valid signature) are audited, but at
 * most once per key (e.g. route or integration, and reason) per window: an unauthenticated flood
 * would otherwise write one chained audit row per request, and every row takes the chain's head lock
 * that the rest of the system's audited work waits on. The next audited refusal under a key says how
 * many were left out since the last (`suppressedBefore`), so the count is kept, not the rows.
 */
export class RefusalAuditLimiter {
  private readonly windows = new Map<string, { until: number; suppressed: number }>();
  constructor(
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** undefined: skip this one; a number: audit it, with that many left out since the last. */
  admit(key: string, nowMs = Date.now()): number | undefined {
    const w = this.windows.get(key);
    if (w && nowMs < w.until) {
      w.suppressed += 1;
      return undefined;
    }
    if (!w && this.windows.size >= this.maxKeys) this.windows.clear();
    this.windows.set(key, { until: nowMs + this.windowMs, suppressed: 0 });
    return w?.suppressed ?? 0;
  }
}
