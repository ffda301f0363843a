import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminFetch, adminJson, createTestClient } from '../../sandbox/test-client.js';

type Bundle = {
  resourceType: string;
  type: string;
  total?: number;
  link: Array<{ relation: string; url: string }>;
  entry?: Array<{
    fullUrl: string;
    resource: { resourceType: string; id: string; meta: { versionId: string; lastUpdated: string } } & Record<
      string,
      unknown
    >;
  }>;
};
interface PatientShape {
  resourceType: string;
  id: string;
  meta: unknown;
  identifier: [{ system: string; value: string }];
  name: [{ family: string; given: [string] }];
  telecom: [{ value: string }];
  address: [{ line: [string] }];
  text: { div: string };
}
type Ref = { reference: string };
interface ClinicalShape {
  resourceType: string;
  subject: Ref;
  patient: Ref;
  participant: [{ actor: Partial<Ref> }];
  code: { coding: [{ system: string }] };
  valueQuantity: { value: unknown };
  note: [{ text: string }];
}
type Manifest = { resourceType: string; records: Array<{ id: string; versionId: string; lastUpdated: string }> };

let sb: SandboxHandle;
let token: string;

async function get(url: string, bearer: string | undefined = token): Promise<Response> {
  return fetch(url, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
}

async function pageAll(firstUrl: string): Promise<Array<NonNullable<Bundle['entry']>[number]>> {
  const out: Array<NonNullable<Bundle['entry']>[number]> = [];
  let url: string | undefined = firstUrl;
  while (url) {
    const res = await get(url);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    out.push(...(bundle.entry ?? []));
    url = bundle.link.find((l) => l.relation === 'next')?.url;
  }
  return out;
}

beforeAll(async () => {
  sb = await startSandbox({ seed: 7, size: 2000 });
  const client = await createTestClient(sb, { scopes: ['system/*.rs'] });
  token = await client.token();
});
afterAll(async () => {
  await sb.close();
});

describe('sandbox data', () => {
  it('is deterministic per seed: same seed → same first page bytes, different seed → different', async () => {
    const firstPage = async (seed: number): Promise<string> => {
      const other = await startSandbox({ seed, size: 500 });
      try {
        const c = await createTestClient(other, { scopes: ['system/Patient.rs', 'system/Observation.rs'] });
        const t = await c.token();
        const res = await get(`${other.fhirBaseUrl}/Observation?_count=25`, t);
        expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
        // The base URL (random port) is the only thing allowed to differ between two runs.
        return (await res.text()).split(other.url).join('BASE');
      } finally {
        await other.close();
      }
    };
    const a = await firstPage(11);
    const b = await firstPage(11);
    const c = await firstPage(12);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(JSON.parse(a).entry).toHaveLength(25);
  });

  it('serves realistic R4 shapes with synthetic, distinctive identifiers', async () => {
    const pats = (await (await get(`${sb.fhirBaseUrl}/Patient?_count=3`)).json()) as Bundle;
    const p = pats.entry?.[0]?.resource as unknown as PatientShape;
    expect(p.resourceType).toBe('Patient');
    expect(p.id).toMatch(/^pt-[0-9a-z]{7}-[0-9a-z]{2}$/);
    expect(p.meta).toEqual({ versionId: '1', lastUpdated: '2024-01-01T00:00:00.000Z' });
    expect(p.identifier[0].system).toBe('urn:oid:2.16.840.1.113883.3.SANDBOX.mrn');
    expect(p.identifier[0].value).toMatch(/^SYN-MRN-\d{8}$/);
    expect(p.name[0].family).toMatch(/^[A-Z][a-z]{6,}$/);
    expect(p.telecom[0].value).toMatch(/^555-01\d{2}-\d{4}$/);
    expect(p.address[0].line[0]).toMatch(/^\d+ Synthetic [A-Z][a-z]+ Way$/);
    expect(p.text.div).toContain(p.name[0].family);

    const { strings, truncated } = await adminJson<{ strings: string[]; truncated: boolean }>(sb, '/admin/identifiers');
    expect(truncated).toBe(false);
    for (const s of [
      p.name[0].family,
      p.name[0].given[0],
      p.identifier[0].value,
      p.telecom[0].value,
      p.address[0].line[0],
    ]) {
      expect(strings.includes(s)).toBe(true);
    }

    const refField = {
      Encounter: 'subject',
      Observation: 'subject',
      Condition: 'subject',
      MedicationRequest: 'subject',
      AllergyIntolerance: 'patient',
    } as const;
    for (const [type, field] of Object.entries(refField)) {
      const b = (await (await get(`${sb.fhirBaseUrl}/${type}?_count=2`)).json()) as Bundle;
      const r = b.entry?.[0]?.resource as unknown as ClinicalShape;
      expect(r.resourceType).toBe(type);
      expect(r[field].reference).toMatch(/^Patient\/pt-/);
      const patient = await get(`${sb.fhirBaseUrl}/${r[field].reference}`);
      expect(patient.status).toBe(200);
    }
    const appt = ((await (await get(`${sb.fhirBaseUrl}/Appointment?_count=1`)).json()) as Bundle).entry?.[0]
      ?.resource as unknown as ClinicalShape;
    expect(appt.participant[0].actor.reference).toMatch(/^Patient\/pt-/);
    const obs = ((await (await get(`${sb.fhirBaseUrl}/Observation?_count=1`)).json()) as Bundle).entry?.[0]
      ?.resource as unknown as ClinicalShape;
    expect(obs.code.coding[0].system).toBe('http://loinc.org');
    expect(typeof obs.valueQuantity.value).toBe('number');
    const subject = (await (await get(`${sb.fhirBaseUrl}/${obs.subject.reference}`)).json()) as PatientShape;
    expect(obs.note[0].text).toContain(subject.name[0].family);
  });
});

describe('sandbox FHIR search and paging', () => {
  it('pages through every type visiting each id exactly once, matching the manifest', async () => {
    for (const type of RESOURCE_TYPES) {
      const entries = await pageAll(`${sb.fhirBaseUrl}/${type}?_count=37&_sort=_lastUpdated`);
      const ids = entries.map((e) => e.resource.id);
      expect(new Set(ids).size).toBe(ids.length);
      const manifest = await adminJson<Manifest>(sb, `/admin/manifest?type=${type}`);
      expect(ids).toEqual(manifest.records.map((r) => r.id));
      for (const e of entries) expect(e.resource.resourceType).toBe(type);
      const stamps = entries.map((e) => e.resource.meta.lastUpdated);
      expect([...stamps].sort()).toEqual(stamps);
    }
    const totalObservations = (await adminJson<Manifest>(sb, '/admin/manifest?type=Observation')).records.length;
    expect(totalObservations).toBe(700);
  });

  it('returns exactly the modified and created records after _lastUpdated=gt, each once at its new position', async () => {
    const before = await pageAll(`${sb.fhirBaseUrl}/Condition?_count=500`);
    const highWater = before[before.length - 1]?.resource.meta.lastUpdated as string;
    const { modified } = await adminJson<{ modified: Manifest['records'] }>(sb, '/admin/records/modify', {
      resourceType: 'Condition',
      count: 9,
    });
    const byId = await adminJson<{ modified: Manifest['records'] }>(sb, '/admin/records/modify', {
      resourceType: 'Condition',
      ids: [modified[0]?.id],
    });
    const { created } = await adminJson<{ created: Manifest['records'] }>(sb, '/admin/records/create', {
      resourceType: 'Condition',
      count: 3,
    });
    expect(byId.modified[0]?.versionId).toBe('3');

    const delta = await pageAll(`${sb.fhirBaseUrl}/Condition?_lastUpdated=gt${encodeURIComponent(highWater)}&_count=4`);
    const expectedIds = new Set([...modified, ...created].map((r) => r.id));
    expect(delta.map((e) => e.resource.id).sort()).toEqual([...expectedIds].sort());
    const first = delta.find((e) => e.resource.id === modified[0]?.id);
    expect(first?.resource.meta.versionId).toBe('3');
    expect(first?.resource.meta.lastUpdated).toBe(byId.modified[0]?.lastUpdated);

    const everything = await pageAll(`${sb.fhirBaseUrl}/Condition?_count=61`);
    expect(everything).toHaveLength(before.length + 3);
    expect(new Set(everything.map((e) => e.resource.id)).size).toBe(everything.length);
    const manifest = await adminJson<Manifest>(sb, '/admin/manifest?type=Condition');
    expect(everything.map((e) => e.resource.id)).toEqual(manifest.records.map((r) => r.id));

    const read = await get(`${sb.fhirBaseUrl}/Condition/${modified[0]?.id}`);
    expect(read.headers.get('etag')).toBe('W/"3"');
    expect(read.headers.get('last-modified')).toBeTruthy();
    const admin = await adminFetch(sb, `/admin/resource/Condition/${modified[0]?.id}`);
    expect(await admin.json()).toEqual(await read.json());

    const ge = (await (
      await get(
        `${sb.fhirBaseUrl}/Condition?_lastUpdated=ge${encodeURIComponent(first?.resource.meta.lastUpdated as string)}`,
      )
    ).json()) as Bundle;
    expect(ge.entry?.[0]?.resource.id).toBe(modified[0]?.id);
    expect(ge.total).toBe(ge.entry?.length);
  });

  it('answers errors as OperationOutcomes', async () => {
    const cases: Array<[string, number]> = [
      [`${sb.fhirBaseUrl}/Basic`, 404],
      [`${sb.fhirBaseUrl}/Patient/pt-zzzzzzz-00`, 404],
      [`${sb.fhirBaseUrl}/Patient?_count=abc`, 400],
      [`${sb.fhirBaseUrl}/Patient?_lastUpdated=gtyesterday`, 400],
      [`${sb.fhirBaseUrl}/Patient?_sort=name`, 400],
      [`${sb.fhirBaseUrl}/Patient?_cursor=%%%`, 400],
      [`${sb.fhirBaseUrl}/Patient?family=x`, 400],
    ];
    for (const [url, status] of cases) {
      const res = await get(url);
      expect(res.status, url).toBe(status);
      expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
    const capped = (await (await get(`${sb.fhirBaseUrl}/Observation?_count=999999`)).json()) as Bundle;
    expect(capped.entry).toHaveLength(700);
    expect(capped.total).toBe(700);
  });

  it('serves metadata and SMART discovery without auth', async () => {
    const meta = (await (await fetch(`${sb.fhirBaseUrl}/metadata`)).json()) as Record<string, unknown>;
    expect(meta.resourceType).toBe('CapabilityStatement');
    for (const path of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']) {
      const conf = (await (await fetch(`${sb.url}${path}`)).json()) as Record<string, unknown>;
      expect(conf.token_endpoint).toBe(sb.tokenUrl);
      expect(conf.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384', 'ES384']);
      expect(conf.capabilities).toEqual(['client-confidential-asymmetric', 'permission-v2']);
    }
  });

  it('protects the admin API and counts what it served', async () => {
    expect((await fetch(`${sb.url}/admin/stats`)).status).toBe(401);
    expect((await fetch(`${sb.url}/admin/stats`, { headers: { 'x-sandbox-admin': 'nope' } })).status).toBe(401);
    await adminJson(sb, '/admin/stats/reset', {});
    await get(`${sb.fhirBaseUrl}/Encounter?_count=10`);
    await get(`${sb.fhirBaseUrl}/Encounter?_count=10`, 'not-a-token');
    const stats = await adminJson<{ served: Record<string, number>; searchRequests: number; rejectedTokens: number }>(
      sb,
      '/admin/stats',
    );
    expect(stats.served.Encounter).toBe(10);
    expect(stats.searchRequests).toBe(2);
    expect(stats.rejectedTokens).toBe(1);
  });

  it('keeps a request ledger: over the admin API and in process, the same entries, without tokens or ids', async () => {
    const since = Date.now();
    await get(`${sb.fhirBaseUrl}/Encounter?_count=3`);
    await get(`${sb.fhirBaseUrl}/Encounter?_count=3`, 'not-a-token');
    const { entries } = await adminJson<{
      entries: Array<{ method: string; resource: string; status?: number; tokenHash: string }>;
    }>(sb, `/admin/ledger?since=${since}`);
    expect(entries.map((e) => [e.method, e.resource, e.status])).toEqual([
      ['GET', 'Encounter', 200],
      ['GET', 'Encounter', 401],
    ]);
    expect(entries.every((e) => /^[0-9a-f]{16}$/.test(e.tokenHash))).toBe(true);
    expect(sb.ledger(since)).toEqual(entries);
    expect(sb.ledger(Date.now() + 1000)).toEqual([]);
  });
});
