/**
 * The sandbox accepts writes the way vendors do and refuses what they refuse: a versioned update of a generated
 * record (ETag W/"n", a stale If-Match is 412), no update-as-create (404), a deleted record is 410, a conditional
 * create answers its one match with 200 and several with 412; written versions are what later reads, searches
 * and `_history` serve. The write ledger counts effects per Idempotency-Key.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';

const SCOPES = ['system/Appointment.rs', 'system/Appointment.cud'];

interface Json {
  id?: string;
  status?: string;
  meta?: { versionId?: string; lastUpdated?: string };
  entry?: Array<{ resource: Json; response?: { etag?: string } }>;
  [element: string]: unknown;
}

describe('sandbox writes', () => {
  let sb: SandboxHandle;
  let token: string;

  beforeAll(async () => {
    sb = await startSandbox({ seed: 21, size: 60 });
    token = await (await createTestClient(sb, { scopes: SCOPES })).token();
  });
  afterAll(async () => {
    await sb.close();
  });

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${sb.fhirBaseUrl}/${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/fhir+json',
        ...(body ? { 'content-type': 'application/fhir+json', 'idempotency-key': `key-${randomUUID()}` } : {}),
        ...headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return {
      status: res.status,
      etag: res.headers.get('etag'),
      body: text ? (JSON.parse(text) as Json) : ({} as Json),
    };
  };

  it('updates a generated record by version; a stale If-Match is 412; reads, searches and history serve it', async () => {
    const { records } = await adminJson<{ records: Array<{ id: string }> }>(sb, '/admin/manifest?type=Appointment');
    const id = records[0]!.id;
    const current = await call('GET', `Appointment/${id}`);
    expect(current.etag).toBe('W/"1"');
    const next = { ...current.body, status: 'cancelled' };
    delete next.meta;
    const updated = await call('PUT', `Appointment/${id}`, next, { 'if-match': 'W/"1"' });
    expect(updated).toMatchObject({
      status: 200,
      etag: 'W/"2"',
      body: { status: 'cancelled', meta: { versionId: '2' } },
    });
    const stale = await call('PUT', `Appointment/${id}`, { ...next, status: 'booked' }, { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);

    expect((await call('GET', `Appointment/${id}`)).body).toMatchObject({
      status: 'cancelled',
      meta: { versionId: '2' },
    });
    const search = await call('GET', `Appointment?_lastUpdated=ge${updated.body.meta!.lastUpdated!}`);
    expect(search.body.entry!.map((e) => [e.resource.id, e.resource.status])).toContainEqual([id, 'cancelled']);
    const history = await call('GET', 'Appointment/_history');
    expect(history.body.entry![0]).toMatchObject({
      resource: { id, status: 'cancelled' },
      response: { etag: 'W/"2"' },
    });
  });

  it('refuses update-as-create (404) and an update of a deleted record (410)', async () => {
    expect((await call('PUT', 'Appointment/nope-1', { resourceType: 'Appointment', status: 'booked' })).status).toBe(
      404,
    );
    const { records } = await adminJson<{ records: Array<{ id: string }> }>(sb, '/admin/manifest?type=Appointment');
    const id = records[1]!.id;
    await adminJson(sb, '/admin/records/delete', { resourceType: 'Appointment', ids: [id] });
    expect((await call('PUT', `Appointment/${id}`, { resourceType: 'Appointment', id, status: 'booked' })).status).toBe(
      410,
    );
  });

  it('a conditional create answers its one match with 200, several matches with 412', async () => {
    const ours = { system: 'urn:test:sandbox-writes', value: randomUUID() };
    const resource = { resourceType: 'Appointment', status: 'proposed', identifier: [ours] };
    const condition = { 'if-none-exist': `identifier=${ours.system}|${ours.value}` };
    const first = await call('POST', 'Appointment', resource, condition);
    expect(first.status).toBe(201);
    const again = await call('POST', 'Appointment', resource, condition);
    expect(again).toMatchObject({ status: 200, body: { id: first.body.id } });
    // A second resource carrying the same identifier (created without the condition) makes the criterion ambiguous.
    expect((await call('POST', 'Appointment', resource)).status).toBe(201);
    expect((await call('POST', 'Appointment', resource, condition)).status).toBe(412);
    const { ledger, conditionalMatches } = await adminJson<{
      conditionalMatches: number;
      ledger: Array<{ effects: number; ifNoneExist?: string }>;
    }>(sb, '/admin/writes');
    expect(conditionalMatches).toBe(1);
    expect(ledger.filter((r) => r.ifNoneExist === condition['if-none-exist']).map((r) => r.effects)).toEqual([1, 0, 0]);
  });
});
