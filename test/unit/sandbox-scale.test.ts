import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';

type Bundle = {
  total?: number;
  link: Array<{ relation: string; url: string }>;
  entry: Array<{ resource: { id: string; meta: { lastUpdated: string } } }>;
};

let sb: SandboxHandle;
let token: string;

beforeAll(async () => {
  sb = await startSandbox({ size: 1_000_000, seed: 3 });
  token = await (await createTestClient(sb, { scopes: ['system/Observation.rs', 'system/Patient.rs'] })).token();
});
afterAll(async () => {
  await sb.close();
});

const get = async (url: string): Promise<Bundle> => {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Bundle;
};

describe('sandbox at 1,000,000 resources', () => {
  it('serves pages from deep in Observation via _lastUpdated=gt and keeps paging', async () => {
    // Observation holds 350,000 records, one per second from 2024-01-01; start ~90% of the way in.
    const late = new Date(Date.UTC(2024, 0, 1) + 315_000 * 1000 + 500).toISOString();
    const first = await get(`${sb.fhirBaseUrl}/Observation?_lastUpdated=gt${late}&_count=1000&_sort=_lastUpdated`);
    expect(first.entry).toHaveLength(1000);
    expect(first.total).toBe(350_000 - 315_001);
    expect(first.entry[0]?.resource.meta.lastUpdated).toBe(
      new Date(Date.UTC(2024, 0, 1) + 315_001 * 1000).toISOString(),
    );
    const next = first.link.find((l) => l.relation === 'next')?.url as string;
    expect(next.startsWith(sb.fhirBaseUrl)).toBe(true);
    const second = await get(next);
    expect(second.entry).toHaveLength(1000);
    const firstIds = new Set(first.entry.map((e) => e.resource.id));
    expect(second.entry.some((e) => firstIds.has(e.resource.id))).toBe(false);
    expect(second.entry[0]!.resource.meta.lastUpdated > first.entry[999]!.resource.meta.lastUpdated).toBe(true);

    const since = new Date(Date.UTC(2024, 0, 1) + 349_990 * 1000).toISOString();
    const tail = await get(`${sb.fhirBaseUrl}/Observation?_lastUpdated=ge${since}&_count=100`);
    expect(tail.entry).toHaveLength(10);
    expect(tail.link.some((l) => l.relation === 'next')).toBe(false);

    const ids = await adminJson<{ strings: string[]; truncated: boolean }>(sb, '/admin/identifiers');
    expect(ids.truncated).toBe(true);
    expect(ids.strings.length).toBeGreaterThan(5_000);
  });
});
