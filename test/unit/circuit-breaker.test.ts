/** The circuit breaker's state machine, on a fake clock: what an operator and a retrying activity see. */
import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  IntegrationRevokedError,
  VendorHttpError,
  VendorNetworkError,
} from '../../lib/errors/index.js';
import type { BreakerTransition } from '../../lib/vendors/circuit-breaker.js';
import { CircuitBreakers } from '../../lib/vendors/circuit-breaker.js';

const ID = 'itg-breaker';
const TENANT = 't-breaker';
const unavailable = new VendorHttpError(503, 'GET', '/fhir/Patient');

function setup(failureThreshold = 3, coolDownMs = 10_000) {
  let now = 1_000_000;
  const transitions: BreakerTransition[] = [];
  const breakers = new CircuitBreakers({
    preset: { failureThreshold, coolDownMs },
    onTransition: (t) => transitions.push(t),
    now: () => now,
  });
  const call = (err?: unknown) => breakers.admit(ID, TENANT).done(err);
  return { breakers, transitions, call, advance: (ms: number) => (now += ms) };
}

function openError(fn: () => unknown): CircuitOpenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CircuitOpenError);
    return err as CircuitOpenError;
  }
  throw new Error('expected the breaker to refuse the call');
}

describe('circuit breaker', () => {
  it('opens after the threshold of consecutive retryable failures and fails fast with the remaining cool-down', () => {
    const b = setup(3, 10_000);
    b.call(unavailable);
    b.call(new VendorNetworkError('GET', '/fhir/Patient', 'timed out'));
    expect(b.breakers.state(ID)).toBe('closed');
    b.call(unavailable);
    expect(b.breakers.state(ID)).toBe('open');
    expect(b.transitions).toEqual([
      expect.objectContaining({
        integrationId: ID,
        tenantId: TENANT,
        state: 'open',
        consecutiveFailures: 3,
        lastErrorCode: 'VENDOR_UNAVAILABLE',
      }),
    ]);
    b.advance(4_000);
    const err = openError(() => b.breakers.admit(ID, TENANT));
    expect(err).toMatchObject({ code: 'VENDOR_CIRCUIT_OPEN', retryable: true, retryAfterMs: 6_000 });
  });

  it('a success in between resets the count; 4xx answers count as the vendor being up, 429 and our own refusals as neither', () => {
    const b = setup(3);
    b.call(unavailable);
    b.call(unavailable);
    b.call(new VendorHttpError(404, 'GET', '/fhir/Patient/x'));
    b.call(unavailable);
    b.call(unavailable);
    expect(b.breakers.state(ID)).toBe('closed');
    b.call(new VendorHttpError(429, 'GET', '/fhir/Patient'));
    b.call(new IntegrationRevokedError(ID, 'revoked'));
    expect(b.breakers.state(ID)).toBe('closed');
    b.call(unavailable);
    expect(b.breakers.state(ID)).toBe('open');
  });

  it('after the cool-down lets exactly one probe through; its success closes the breaker', () => {
    const b = setup(2, 5_000);
    b.call(unavailable);
    b.call(unavailable);
    b.advance(5_000);
    const probe = b.breakers.admit(ID, TENANT);
    expect(b.breakers.state(ID)).toBe('half-open');
    expect(openError(() => b.breakers.admit(ID, TENANT)).retryAfterMs).toBeGreaterThan(0);
    probe.done();
    expect(b.breakers.state(ID)).toBe('closed');
    expect(b.transitions.map((t) => t.state)).toEqual(['open', 'half-open', 'closed']);
    expect(b.transitions.at(-1)).toMatchObject({ consecutiveFailures: 0, retryAt: null, lastErrorCode: null });
    b.call();
  });

  it('a failed probe opens it for another full cool-down', () => {
    const b = setup(2, 5_000);
    b.call(unavailable);
    b.call(unavailable);
    b.advance(6_000);
    b.call(new VendorNetworkError('GET', '/fhir/Patient', 'ECONNRESET'));
    expect(b.breakers.state(ID)).toBe('open');
    expect(openError(() => b.breakers.admit(ID, TENANT)).retryAfterMs).toBe(5_000);
    expect(b.transitions.map((t) => t.state)).toEqual(['open', 'half-open', 'open']);
    expect(b.transitions.at(-1)!.lastErrorCode).toBe('VENDOR_NETWORK');
  });

  it('keeps integrations apart', () => {
    const b = setup(1);
    b.call(unavailable);
    expect(b.breakers.state(ID)).toBe('open');
    expect(b.breakers.state('itg-other')).toBe('closed');
    b.breakers.admit('itg-other', TENANT).done();
  });
});
