/** Which vendor endpoints get a rate-limited task queue, its name, and its rate. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config/schema.js';
import { ConfigError } from '../../lib/errors/index.js';
import { endpointQueueFor, endpointQueuesFor, parseRateOverrides } from '../../lib/vendors/endpoint-queues.js';

const policy = { mainTaskQueue: 'ehr-connectors', overrides: parseRateOverrides(undefined) };
const ecw = { vendor: 'eclinicalworks', baseUrl: 'https://fhir4.eclinicalworks.example/fhir/r4/PRACTICE1' };

describe('endpoint queues', () => {
  it('gives a published limit its own readable queue at 90 % of the limit', () => {
    const q = endpointQueueFor(policy, ecw)!;
    expect(q.taskQueue).toMatch(/^ehr-connectors-vendor-eclinicalworks-[0-9a-f]{12}$/);
    expect(q.activitiesPerSecond).toBeCloseTo((250 / 60) * 0.9);
    expect(q.endpoint).toBe('https://fhir4.eclinicalworks.example/fhir/r4/PRACTICE1');
  });

  it('one queue per endpoint: a trailing slash or query is the same endpoint, another practice URL is not', () => {
    const same = { ...ecw, baseUrl: `${ecw.baseUrl}/?x=1` };
    const other = { ...ecw, baseUrl: ecw.baseUrl.replace('PRACTICE1', 'PRACTICE2') };
    const queues = endpointQueuesFor(policy, [ecw, same, other]);
    expect(queues).toHaveLength(2);
    expect(endpointQueueFor(policy, same)!.taskQueue).toBe(endpointQueueFor(policy, ecw)!.taskQueue);
  });

  it('no queue for vendors without a published limit or unknown vendors; an override adds or replaces one', () => {
    expect(endpointQueueFor(policy, { vendor: 'epic', baseUrl: 'https://epic.example/api/FHIR/R4' })).toBeUndefined();
    expect(endpointQueueFor(policy, { vendor: 'stub', baseUrl: 'https://stub.example/fhir' })).toBeUndefined();
    const overridden = { ...policy, overrides: parseRateOverrides('epic=10/1,eclinicalworks=20/5') };
    expect(
      endpointQueueFor(overridden, { vendor: 'epic', baseUrl: 'https://epic.example/api/FHIR/R4' })!
        .activitiesPerSecond,
    ).toBeCloseTo(9);
    expect(endpointQueueFor(overridden, ecw)!.activitiesPerSecond).toBeCloseTo(3.6);
  });

  it('configuration refuses a malformed EHR_VENDOR_RATE_LIMITS by name', () => {
    const base = { DATABASE_URL: 'postgres://app@127.0.0.1:5432/ehr', EHR_KEK_DIR: '/tmp/k' };
    expect(loadConfig({ ...base, EHR_VENDOR_RATE_LIMITS: 'eclinicalworks=200/60' }).EHR_VENDOR_RATE_LIMITS).toBe(
      'eclinicalworks=200/60',
    );
    expect(() => loadConfig({ ...base, EHR_VENDOR_RATE_LIMITS: 'eclinicalworks=fast' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, EHR_VENDOR_RATE_LIMITS: 'eclinicalworks=fast' })).toThrow(
      /EHR_VENDOR_RATE_LIMITS/,
    );
  });
});
