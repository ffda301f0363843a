/**
 * A circuit breaker per integration. After `failureThreshold` consecutive retryable failures (5xx,
 * network errors, timeouts) the breaker opens: calls fail fast with CircuitOpenError, whose
 * retryAfterMs is the remaining cool-down, so Temporal's next attempt lands when the breaker is
 * half-open. Half-open lets exactly one probe through; its success closes the breaker, its failure
 * opens it for another cool-down. 4xx answers prove the vendor is up (they count as success); a 429
 * is the rate limit speaking, not ill health, so it counts as neither.
 *
 * The state lives in this worker's memory (a fast check before every call); every transition is
 * handed to `onTransition`, which workers/ wires to PostgreSQL so `ehrctl integrations list` shows it.
 */
import { CircuitOpenError, EhrError, VendorHttpError, VendorNetworkError } from '../errors/index.js';

export interface BreakerPreset {
  /** Consecutive retryable failures that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker fails fast before letting one probe through. */
  coolDownMs: number;
}

/** Named presets (EHR_CIRCUIT_BREAKER); documented in docs/decisions.md. */
export const BREAKER_PRESETS = {
  /** The default: five failures in a row is an outage, not a blip; 30 s is short next to a sync. */
  standard: { failureThreshold: 5, coolDownMs: 30_000 },
  /** For vendors known to fail in bursts: more patience, longer rest. */
  tolerant: { failureThreshold: 10, coolDownMs: 60_000 },
  /** Stop hammering quickly (e.g. a vendor that asked us to back off). */
  strict: { failureThreshold: 3, coolDownMs: 15_000 },
} as const satisfies Record<string, BreakerPreset>;
export type BreakerPresetName = keyof typeof BREAKER_PRESETS;
export const BREAKER_PRESET_NAMES = Object.keys(BREAKER_PRESETS) as BreakerPresetName[];

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerTransition {
  integrationId: string;
  tenantId: string;
  state: BreakerState;
  consecutiveFailures: number;
  /** When an open breaker lets the next probe through (open only). */
  retryAt: Date | null;
  /** The error code of the failure that opened (or re-opened) it. */
  lastErrorCode: string | null;
  at: Date;
}

interface Circuit {
  tenantId: string;
  state: BreakerState;
  failures: number;
  openedAtMs: number;
  lastErrorCode: string | null;
  probeInFlight: boolean;
}

/** How a finished call counts for the breaker. */
export type CallOutcome = 'success' | 'failure' | 'neutral';

/** 5xx, 408, network failures and timeouts mean the vendor is unwell; 429 is neutral; other answers mean it is up. */
export function outcomeOf(err: unknown): CallOutcome {
  if (err === undefined) return 'success';
  if (err instanceof VendorHttpError)
    return err.status === 429 ? 'neutral' : err.status >= 500 || err.status === 408 ? 'failure' : 'success';
  if (err instanceof VendorNetworkError) return 'failure';
  // Our own refusals (revoked, TLS policy, size cap …) say nothing about the vendor's health.
  if (err instanceof EhrError) return 'neutral';
  return 'failure';
}

/** A call admitted by the breaker; report how it went exactly once. */
export interface Admission {
  done(err?: unknown): void;
}

export class CircuitBreakers {
  private readonly circuits = new Map<string, Circuit>();
  private readonly now: () => number;

  constructor(
    private readonly opts: {
      preset: BreakerPreset;
      onTransition?(t: BreakerTransition): void;
      now?: () => number;
    },
  ) {
    this.now = opts.now ?? Date.now;
  }

  state(integrationId: string): BreakerState {
    return this.circuits.get(integrationId)?.state ?? 'closed';
  }

  /** Admits a call or throws CircuitOpenError (open, or half-open with its probe already out). */
  admit(integrationId: string, tenantId: string): Admission {
    const c = this.circuit(integrationId, tenantId);
    if (c.state === 'open') {
      const remaining = c.openedAtMs + this.opts.preset.coolDownMs - this.now();
      if (remaining > 0) throw new CircuitOpenError(integrationId, remaining, c.lastErrorCode);
      this.move(integrationId, c, 'half-open');
    }
    let probe = false;
    if (c.state === 'half-open') {
      // One probe at a time; the others wait a moment and find the breaker closed or open again.
      if (c.probeInFlight) throw new CircuitOpenError(integrationId, 1_000, c.lastErrorCode);
      c.probeInFlight = true;
      probe = true;
    }
    let reported = false;
    return {
      done: (err?: unknown) => {
        if (reported) return;
        reported = true;
        if (probe) c.probeInFlight = false;
        this.record(integrationId, c, outcomeOf(err), err);
      },
    };
  }

  private record(integrationId: string, c: Circuit, outcome: CallOutcome, err: unknown): void {
    switch (outcome) {
      case 'neutral':
        return;
      case 'success':
        c.failures = 0;
        if (c.state !== 'closed') this.move(integrationId, c, 'closed');
        return;
      case 'failure':
        c.failures += 1;
        c.lastErrorCode = err instanceof EhrError ? err.code : 'UNCLASSIFIED';
        if (c.state === 'half-open' || (c.state === 'closed' && c.failures >= this.opts.preset.failureThreshold)) {
          c.openedAtMs = this.now();
          this.move(integrationId, c, 'open');
        }
        return;
    }
  }

  private circuit(integrationId: string, tenantId: string): Circuit {
    let c = this.circuits.get(integrationId);
    if (!c) {
      c = { tenantId, state: 'closed', failures: 0, openedAtMs: 0, lastErrorCode: null, probeInFlight: false };
      this.circuits.set(integrationId, c);
    }
    return c;
  }

  private move(integrationId: string, c: Circuit, state: BreakerState): void {
    c.state = state;
    this.opts.onTransition?.({
      integrationId,
      tenantId: c.tenantId,
      state,
      consecutiveFailures: c.failures,
      retryAt: state === 'open' ? new Date(c.openedAtMs + this.opts.preset.coolDownMs) : null,
      lastErrorCode: state === 'closed' ? null : c.lastErrorCode,
      at: new Date(this.now()),
    });
  }
}
