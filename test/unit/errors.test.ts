import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  AuditWriteError,
  ConfigError,
  MalformedVendorDataError,
  NotFoundError,
  ResponseTooLargeError,
  TlsPolicyError,
  VendorAuthError,
  VendorHttpError,
  VendorNetworkError,
  errorCode,
  toApplicationFailure,
} from '../../lib/errors/index.js';

describe('toApplicationFailure', () => {
  it('maps each EhrError to its code and retry class', () => {
    const cases = [
      { err: new ConfigError('DATABASE_URL', 'is required but not set'), type: 'CONFIG_INVALID', nonRetryable: true },
      { err: new NotFoundError('integration', 'acme-epic'), type: 'NOT_FOUND', nonRetryable: true },
      {
        err: new MalformedVendorDataError('Patient', 'entry 3 has no valid id'),
        type: 'VENDOR_DATA_MALFORMED',
        nonRetryable: true,
      },
      { err: new TlsPolicyError('vendor.example.com'), type: 'TLS_REQUIRED', nonRetryable: true },
      { err: new ResponseTooLargeError('/fhir/Patient', 1024), type: 'VENDOR_RESPONSE_TOO_LARGE', nonRetryable: true },
      { err: new VendorAuthError('acme-epic', 'refused'), type: 'VENDOR_AUTH_FAILED', nonRetryable: true },
      {
        err: new VendorAuthError('acme-epic', 'unreadable token response', true),
        type: 'VENDOR_AUTH_FAILED',
        nonRetryable: false,
      },
      { err: new VendorNetworkError('GET', '/fhir/Patient', 'timed out'), type: 'VENDOR_NETWORK', nonRetryable: false },
      { err: new AuditWriteError('vendor.call', 'db down'), type: 'AUDIT_WRITE_FAILED', nonRetryable: false },
      { err: new VendorHttpError(404, 'GET', '/fhir/Patient/x'), type: 'VENDOR_HTTP_404', nonRetryable: true },
      { err: new VendorHttpError(403, 'GET', '/fhir/Patient'), type: 'VENDOR_HTTP_403', nonRetryable: true },
      { err: new VendorHttpError(400, 'GET', '/fhir/Patient'), type: 'VENDOR_HTTP_400', nonRetryable: true },
      { err: new VendorHttpError(422, 'GET', '/fhir/Patient'), type: 'VENDOR_HTTP_422', nonRetryable: true },
      { err: new VendorHttpError(408, 'GET', '/fhir/Patient'), type: 'VENDOR_HTTP_408', nonRetryable: false },
      { err: new VendorHttpError(500, 'GET', '/fhir/Patient'), type: 'VENDOR_UNAVAILABLE', nonRetryable: false },
      { err: new VendorHttpError(503, 'GET', '/fhir/Patient'), type: 'VENDOR_UNAVAILABLE', nonRetryable: false },
      { err: new VendorHttpError(429, 'GET', '/fhir/Patient'), type: 'VENDOR_RATE_LIMITED', nonRetryable: false },
    ];
    for (const { err, type, nonRetryable } of cases) {
      const failure = toApplicationFailure(err);
      expect(failure, type).toBeInstanceOf(ApplicationFailure);
      expect(failure.type, err.message).toBe(type);
      expect(failure.nonRetryable, err.message).toBe(nonRetryable);
      expect(failure.message).toBe(err.message);
      expect(errorCode(err)).toBe(type);
      expect(errorCode(failure)).toBe(type);
    }
  });

  it('turns Retry-After into nextRetryDelay for retryable errors only', () => {
    expect(toApplicationFailure(new VendorHttpError(429, 'GET', '/fhir/Patient', 3_000)).nextRetryDelay).toBe(3_000);
    expect(toApplicationFailure(new VendorHttpError(503, 'GET', '/fhir/Patient', 120_000)).nextRetryDelay).toBe(
      120_000,
    );
    expect(toApplicationFailure(new VendorHttpError(503, 'GET', '/fhir/Patient')).nextRetryDelay).toBeUndefined();
    expect(
      toApplicationFailure(new VendorNetworkError('GET', '/fhir/Patient', 'timed out')).nextRetryDelay,
    ).toBeUndefined();
    // A non-retryable status never schedules a retry, whatever the vendor says.
    const notFound = toApplicationFailure(new VendorHttpError(404, 'GET', '/fhir/Patient/x', 5_000));
    expect(notFound.nonRetryable).toBe(true);
    expect(notFound.nextRetryDelay).toBeUndefined();
  });

  it('classifies unknown errors as retryable UNCLASSIFIED', () => {
    const plain = toApplicationFailure(new TypeError('boom'));
    expect(plain).toBeInstanceOf(ApplicationFailure);
    expect(plain.type).toBe('UNCLASSIFIED');
    expect(plain.nonRetryable).toBe(false);
    expect(plain.message).toBe('TypeError: boom');
    for (const thrown of ['a string', 42, undefined, null, { code: 'X' }]) {
      const f = toApplicationFailure(thrown);
      expect(f.type).toBe('UNCLASSIFIED');
      expect(f.nonRetryable).toBe(false);
      expect(f.message).toBe('unknown error');
    }
    expect(errorCode(new Error('x'))).toBe('UNCLASSIFIED');
    expect(errorCode('x')).toBe('UNCLASSIFIED');
  });

  it('passes an ApplicationFailure through unchanged', () => {
    const original = ApplicationFailure.create({ message: 'already classified', type: 'CUSTOM', nonRetryable: true });
    expect(toApplicationFailure(original)).toBe(original);
  });

  it('names errors by class and keeps the query string out of vendor messages', () => {
    const err = new VendorHttpError(500, 'GET', '/fhir/Patient');
    expect(err.name).toBe('VendorHttpError');
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe('vendor answered 500 to GET /fhir/Patient');
  });
});
