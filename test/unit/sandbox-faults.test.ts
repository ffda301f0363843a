import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminFetch, adminJson, createTestClient } from '../../sandbox/test-client.js';

let sb: SandboxHandle;
let token: string;

const search = (type: string, count = 5): Promise<Response> =>
  fetch(`${sb.fhirBaseUrl}/${type}?_count=${count}`, { headers: { authorization: `Bearer ${token}` } });

async function isHealthy(type: string): Promise<boolean> {
  const res = await search(type);
  if (res.status !== 200) return false;
  const bundle = (await res.json()) as { entry: Array<{ resource: { resourceType: string } }> };
  return bundle.entry.every((e) => e.resource.resourceType === type);
}

beforeAll(async () => {
  sb = await startSandbox({ size: 400 });
  token = await (await createTestClient(sb, { scopes: ['system/*.rs'] })).token();
});
afterAll(async () => {
  await sb.close();
});
beforeEach(async () => {
  expect((await adminFetch(sb, '/admin/faults', { method: 'DELETE' })).status).toBe(200);
});

describe('sandbox fault injection', () => {
  it('malformed-json: a 200 FHIR response whose body does not parse, once', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'malformed-json' });
    const res = await search('Patient');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const text = await res.text();
    expect(() => JSON.parse(text)).toThrow();
    expect(await isHealthy('Patient')).toBe(true);
  });

  it('wrong-resource-type: entries carry another resourceType', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'wrong-resource-type', resourceType: 'Observation' });
    expect(await isHealthy('Patient')).toBe(true); // fault scoped to Observation
    const bundle = (await (await search('Observation')).json()) as {
      resourceType: string;
      entry: Array<{ resource: { resourceType: string } }>;
    };
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.entry.length).toBeGreaterThan(0);
    for (const e of bundle.entry) expect(e.resource.resourceType).not.toBe('Observation');
    expect(await isHealthy('Observation')).toBe(true);
  });

  it('truncated-body: half the bytes with a matching content-length', async () => {
    const full = await (await search('Encounter', 20)).text();
    await adminJson(sb, '/admin/faults', { kind: 'truncated-body' });
    const res = await search('Encounter', 20);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(body.length);
    expect(body.length).toBe(Math.floor(Buffer.byteLength(full) / 2));
    expect(() => JSON.parse(body.toString('utf8'))).toThrow();
  });

  it('status: 503/429 with Retry-After and 500, `times` in a row, then healthy', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 503, retryAfterSeconds: 2, times: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await search('Condition');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
    expect(await isHealthy('Condition')).toBe(true);

    await adminJson(sb, '/admin/faults', { kind: 'status', status: 429, retryAfterSeconds: 1 });
    const throttled = await search('Condition');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('1');
    await throttled.arrayBuffer();

    await adminJson(sb, '/admin/faults', { kind: 'status', status: 500 });
    const broken = await search('Condition');
    expect(broken.status).toBe(500);
    expect(broken.headers.get('retry-after')).toBeNull();
    await broken.arrayBuffer();
    expect(await isHealthy('Condition')).toBe(true);
  });

  it('DELETE clears pending faults; bad fault requests are refused; stats count injections', async () => {
    await adminJson(sb, '/admin/stats/reset', {});
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 503, times: 5 });
    expect((await search('Patient')).status).toBe(503);
    await adminFetch(sb, '/admin/faults', { method: 'DELETE' });
    expect(await isHealthy('Patient')).toBe(true);
    expect((await adminFetch(sb, '/admin/faults', { body: { kind: 'explode' } })).status).toBe(400);
    expect((await adminFetch(sb, '/admin/faults', { body: { kind: 'status', status: 200 } })).status).toBe(400);
    const stats = await adminJson<{ faultsInjected: number }>(sb, '/admin/stats');
    expect(stats.faultsInjected).toBe(1);
  });
});
