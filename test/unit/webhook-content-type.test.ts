/** Which Content-Type a webhook delivery may carry (lib/webhooks/content-type.ts): JSON or FHIR JSON, UTF-8 only. */
import { describe, expect, it } from 'vitest';
import { checkWebhookContentType } from '../../lib/webhooks/content-type.js';

describe('webhook Content-Type', () => {
  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON;CHARSET=UTF-8',
    'application/fhir+json; fhirVersion=4.0',
    'application/json+fhir',
    'application/json; charset="utf-8"; x="a;b=c"',
    'application/json ;charset=utf8',
  ])('accepts %s', (value) => {
    expect(checkWebhookContentType(value)).toEqual({ ok: true });
  });

  it.each<[string | string[] | undefined, string]>([
    [undefined, 'missing-content-type'],
    ['', 'missing-content-type'],
    ['   ', 'missing-content-type'],
    [';;;', 'malformed-content-type'],
    ['application/', 'malformed-content-type'],
    ['application/json; charset', 'malformed-content-type'],
    ['application/json; charset="utf-8', 'malformed-content-type'],
    ['application/jsön', 'malformed-content-type'],
    [['application/json', 'application/json'], 'malformed-content-type'],
    [`application/json; x=${'a'.repeat(300)}`, 'malformed-content-type'],
    ['text/plain', 'unsupported-content-type'],
    ['application/x-www-form-urlencoded', 'unsupported-content-type'],
    ['application/json; charset=latin1', 'unsupported-content-type'],
    ['application/json; x="charset=utf-8"; charset=utf-16', 'unsupported-content-type'],
  ])('refuses %j (%s)', (value, reason) => {
    expect(checkWebhookContentType(value)).toEqual({ ok: false, reason });
  });
});
