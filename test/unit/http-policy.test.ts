import { describe, expect, it } from 'vitest';
import { ResponseTooLargeError, TlsPolicyError, VendorHttpError } from '../../lib/errors/index.js';
import {
  assertTransportAllowed,
  errorForStatus,
  isLoopback,
  parseRetryAfterMs,
  readBodyCapped,
  safePath,
} from '../../lib/vendors/http-policy.js';

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2024-06-01T12:00:00Z');

  it('reads delta-seconds as milliseconds', () => {
    expect(parseRetryAfterMs('3', now)).toBe(3_000);
    expect(parseRetryAfterMs('0', now)).toBe(0);
    expect(parseRetryAfterMs('120', now)).toBe(120_000);
  });

  it('reads an HTTP date relative to now', () => {
    expect(parseRetryAfterMs('Sat, 01 Jun 2024 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
  });

  it('never returns a negative delay for a date in the past', () => {
    expect(parseRetryAfterMs('Sat, 01 Jun 2024 11:00:00 GMT', now)).toBe(0);
  });

  it('ignores missing and unreadable values', () => {
    expect(parseRetryAfterMs(null, now)).toBeUndefined();
    expect(parseRetryAfterMs('', now)).toBeUndefined();
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    // RFC 9110 delta-seconds is digits only: signs and exponents are not a hint.
    expect(parseRetryAfterMs('-5', now)).toBeUndefined();
    expect(parseRetryAfterMs('1e12', now)).toBeUndefined();
    expect(parseRetryAfterMs('later please', now)).toBeUndefined();
    expect(parseRetryAfterMs('Infinity', now)).toBeUndefined();
  });

  it('caps hostile values at ten minutes', () => {
    expect(parseRetryAfterMs('600', now)).toBe(600_000);
    expect(parseRetryAfterMs('601', now)).toBe(600_000);
    expect(parseRetryAfterMs('86400', now)).toBe(600_000);
    expect(parseRetryAfterMs('Fri, 01 Jan 2100 00:00:00 GMT', now)).toBe(600_000);
  });

  it('treats garbage that V8 Date.parse happens to accept as no hint', () => {
    expect(parseRetryAfterMs('abc 12', now)).toBeUndefined();
  });
});

describe('isLoopback / assertTransportAllowed', () => {
  const allowed = [
    'https://vendor.example.com/fhir',
    'https://203.0.113.9:8443/fhir',
    'http://127.0.0.1:8080/fhir',
    'http://127.5.6.7/fhir',
    'http://localhost:3000/fhir',
    'http://[::1]:3000/fhir',
  ];
  it.each(allowed)('allows %s', (u) => {
    expect(() => assertTransportAllowed(new URL(u))).not.toThrow();
  });

  it('recognises loopback hosts, including all of 127/8 and [::1]', () => {
    for (const u of [
      'http://127.0.0.1/',
      'http://127.255.0.1/',
      'http://localhost/',
      'http://[::1]/',
      'http://127.1/',
    ]) {
      expect(isLoopback(new URL(u))).toBe(true);
    }
    for (const u of [
      'http://128.0.0.1/',
      'http://10.0.0.1/',
      'http://127.0.0.1.nip.io/',
      'http://localhost.example.com/',
      'http://[::2]/',
    ]) {
      expect(isLoopback(new URL(u))).toBe(false);
    }
  });

  const refused = [
    'http://vendor.example.com/fhir',
    'http://10.0.0.5/fhir',
    'http://127.0.0.1.nip.io/fhir',
    'http://localhost.example.com/fhir',
    'ftp://127.0.0.1/fhir',
    'ftp://vendor.example.com/fhir',
    'ws://127.0.0.1/fhir',
    'file:///etc/passwd',
  ];
  it.each(refused)('refuses %s with a non-retryable TlsPolicyError', (u) => {
    let caught: unknown;
    try {
      assertTransportAllowed(new URL(u));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TlsPolicyError);
    expect((caught as TlsPolicyError).retryable).toBe(false);
    expect((caught as TlsPolicyError).code).toBe('TLS_REQUIRED');
  });
});

describe('readBodyCapped', () => {
  it('returns the body when it fits, including exactly at the limit', async () => {
    const body = await readBodyCapped(new Response('0123456789'), 10, '/x');
    expect(body.toString()).toBe('0123456789');
  });

  it('refuses a declared content-length over the limit without reading', async () => {
    const res = new Response('0123456789', { headers: { 'content-length': '10' } });
    await expect(readBodyCapped(res, 9, '/x')).rejects.toBeInstanceOf(ResponseTooLargeError);
  });

  it('refuses an undeclared streamed body once it crosses the limit', async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1024));
      },
    });
    await expect(readBodyCapped(new Response(stream), 10_000, '/x')).rejects.toBeInstanceOf(ResponseTooLargeError);
  });
});

describe('errorForStatus / safePath', () => {
  it('classifies statuses and carries Retry-After', () => {
    const e429 = errorForStatus(
      new Response(null, { status: 429, headers: { 'retry-after': '3' } }),
      'GET',
      '/fhir/Patient',
    );
    expect(e429).toBeInstanceOf(VendorHttpError);
    expect(e429).toMatchObject({ status: 429, retryable: true, retryAfterMs: 3_000, code: 'VENDOR_RATE_LIMITED' });
    expect(errorForStatus(new Response(null, { status: 503 }), 'GET', '/p')).toMatchObject({
      retryable: true,
      code: 'VENDOR_UNAVAILABLE',
    });
    for (const status of [400, 403, 404, 422]) {
      expect(errorForStatus(new Response(null, { status }), 'GET', '/p')).toMatchObject({
        retryable: false,
        code: `VENDOR_HTTP_${status}`,
      });
    }
  });

  it('never includes the query string', () => {
    expect(safePath(new URL('https://v.example.com/fhir/Patient?name=Smith&birthdate=1970-01-01'))).toBe(
      '/fhir/Patient',
    );
  });
});
