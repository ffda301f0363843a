/**
 * The gateway's FHIR read side over a real sandbox sync (real Temporal, real PostgreSQL): what a consumer reads
 * equals the stored record decrypted and minimised for its purpose, element by element; search pages serve every
 * record once, also while records change between pages; tenants never see each other's records (404 as for a
 * missing one, audited); bad requests get the documented 400/403/404/503 answers; every request is audited and the
 * chain verifies afterwards.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import type { ResourceType } from '../../lib/domain.js';
import { liftHold, openIncident, raiseHold } from '../../lib/incidents/store.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { storeResources } from '../../lib/sync/store-resources.js';
import { uniqueId } from '../harness.js';
import { syncedSandboxTenant } from './stored-records.js';
import { registerSandboxTenant, testActor, useSyncHarness } from './support.js';
import { BASE_URL, allPages, asBundle, auditOf, caller, consumer, openKeyring, storedAs } from './gateway-support.js';
import { handleFhirRead } from '../../lib/gateway/fhir/handler.js';

const harness = useSyncHarness({ sandbox: { size: 200 }, config: { EHR_SYNC_PAGE_SIZE: '100' } });
let keyring: TenantKeyring;
const call = caller(() => ({ pool: harness.pool, keyring }));

let tenantA: string;
let integrationA: string;
const TYPES = ['Patient', 'Observation', 'Encounter'];

async function storedIds(tenantId: string, type: string): Promise<string[]> {
  const { rows } = await harness.pool.query<{ resource_id: string }>(
    'SELECT DISTINCT resource_id FROM records WHERE tenant_id = $1 AND resource_type = $2 ORDER BY 1',
    [tenantId, type],
  );
  return rows.map((r) => r.resource_id);
}

function synthetic(type: ResourceType, id: string, lastUpdated: string, patient: string, note: string) {
  const resource: Record<string, unknown> = {
    resourceType: type,
    id,
    meta: { versionId: note, lastUpdated },
    status: 'final',
    code: { text: note },
    subject: { reference: `Patient/${patient}` },
  };
  return { id, versionId: note, lastUpdated, resource };
}

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  const synced = await syncedSandboxTenant(harness, TYPES);
  tenantA = synced.tenantId;
  integrationA = synced.integrationIds[0]!;
  expect(synced.stored).toBeGreaterThan(0);
}, 120_000);

describe('reads from a real sync', () => {
  it('read by id returns the stored record decrypted and minimised for the consumer purpose, element by element', async () => {
    const clinical = consumer(tenantA, 'clinical-sync', ['system/*.rs']);
    const scheduling = consumer(tenantA, 'scheduling-sync', ['system/Patient.rs', 'system/Encounter.rs']);
    let narrower = 0;
    for (const type of TYPES as ResourceType[]) {
      for (const id of (await storedIds(tenantA, type)).slice(0, 5)) {
        const at = { tenantId: tenantA, integrationId: integrationA, resourceType: type, resourceId: id };
        const res = await call(clinical, `${type}/${id}`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(await storedAs(harness.pool, keyring, at, 'clinical-sync'));
        if (type === 'Observation') continue;
        const less = await call(scheduling, `${type}/${id}`);
        expect(less.status).toBe(200);
        expect(less.body).toEqual(await storedAs(harness.pool, keyring, at, 'scheduling-sync'));
        if (Object.keys(less.body as object).length < Object.keys(res.body as object).length) narrower += 1;
      }
    }
    // A purpose narrower than the integration's gets less than what is stored.
    expect(narrower).toBeGreaterThan(0);
    const refused = await call(scheduling, `Observation/${(await storedIds(tenantA, 'Observation'))[0]}`);
    expect(refused.status).toBe(403);
    expect((await auditOf(harness.pool, refused))[0]).toMatchObject({
      action: 'gateway.read',
      outcome: 'failure',
      details: { reason: 'purpose', consumerId: 'c-test', purpose: 'scheduling-sync', resourceType: 'Observation' },
    });
  });

  it('search pages serve every stored record once, also while records change between pages', async () => {
    const access = consumer(tenantA, 'clinical-sync', ['system/Observation.rs']);
    const ids = await storedIds(tenantA, 'Observation');
    const served = await allPages(call, access, 'Observation', '_count=7');
    expect(served.map((r) => r.id)).toEqual(ids);
    // A record updated behind the cursor and one updated ahead of it, between the first pages.
    const seenId = ids[1]!;
    const aheadId = ids[ids.length - 2]!;
    const later = new Date(Date.now() + 60_000).toISOString();
    const scope = { tenantId: tenantA, integrationId: integrationA, resourceType: 'Observation' as const };
    const during = await allPages(call, access, 'Observation', '_count=7', async (page) => {
      if (page !== 0) return;
      await storeResources({ pool: harness.pool, keyring }, testActor, { ...scope, purpose: 'clinical-sync' }, [
        synthetic('Observation', seenId, later, 'p-moved', 'v-moved-1'),
        synthetic('Observation', aheadId, later, 'p-moved', 'v-moved-2'),
      ]);
    });
    expect(during.map((r) => r.id)).toEqual(ids);
    expect(during.find((r) => r.id === aheadId)).toMatchObject({ meta: { versionId: 'v-moved-2' } });
  });

  it('patient= and _lastUpdated filter the served records; $everything returns the patient and their records', async () => {
    const access = consumer(tenantA, 'clinical-sync', ['system/*.rs']);
    const { rows } = await harness.pool.query<{ resource_id: string }>(
      `SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_type = 'Patient' ORDER BY 1 LIMIT 1`,
      [tenantA],
    );
    const patientId = rows[0]!.resource_id;
    const obs = await allPages(call, access, 'Observation', `patient=Patient/${patientId}&_count=3`);
    for (const o of obs) expect(o.subject).toEqual({ reference: `Patient/${patientId}` });
    const enc = await allPages(call, access, 'Encounter', `patient=${patientId}`);
    const every = await allPages(call, access, `Patient/${patientId}/$everything`, '_count=4');
    const byType = (t: string) => every.filter((r) => r.resourceType === t).map((r) => r.id);
    expect(byType('Patient')).toEqual([patientId]);
    // A percent-encoded `$` names the same operation.
    expect((await call(access, `Patient/${patientId}/%24everything`)).status).toBe(200);
    expect(byType('Observation')).toEqual(obs.map((o) => o.id));
    expect(byType('Encounter')).toEqual(enc.map((e) => e.id));
    expect(obs.length + enc.length).toBeGreaterThan(0);
    // Without Encounter scope, $everything leaves Encounters out.
    const narrow = consumer(tenantA, 'clinical-sync', ['system/Patient.r', 'system/Observation.s']);
    const fewer = await allPages(call, narrow, `Patient/${patientId}/$everything`, '');
    expect(fewer.filter((r) => r.resourceType === 'Encounter')).toEqual([]);
    expect(fewer.length).toBe(1 + obs.length);

    const all = await allPages(call, access, 'Observation', '_count=1000');
    const cutAt = (all[Math.floor(all.length / 2)]!.meta as { lastUpdated: string }).lastUpdated;
    const cut = encodeURIComponent(cutAt);
    const ge = await allPages(call, access, 'Observation', `_lastUpdated=ge${cut}&_count=1000`);
    const lt = await allPages(call, access, 'Observation', `_lastUpdated=lt${cut}&_count=1000`);
    expect(ge.length + lt.length).toBe(all.length);
    for (const r of ge)
      expect(Date.parse((r.meta as { lastUpdated: string }).lastUpdated)).toBeGreaterThanOrEqual(Date.parse(cutAt));
    const both = await allPages(call, access, 'Observation', `_lastUpdated=ge${cut}&_lastUpdated=lt${cut}`);
    expect(both).toEqual([]);
  });
});

describe('tenants, winners and refusals', () => {
  let tenantC: string;
  let first: string;
  let second: string;
  beforeAll(async () => {
    const c = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Observation'],
      integrations: 2,
    });
    tenantC = c.tenantId;
    [first, second] = [...c.integrationIds].sort() as [string, string];
    const deps = { pool: harness.pool, keyring };
    const store = (integrationId: string, items: ReturnType<typeof synthetic>[]) =>
      storeResources(
        deps,
        testActor,
        { tenantId: tenantC, integrationId, resourceType: 'Observation', purpose: 'clinical-sync' },
        items,
      );
    await store(first, [
      synthetic('Observation', 'o-newer-in-second', '2026-01-01T00:00:00.000Z', 'p-c1', 'first-old'),
      synthetic('Observation', 'o-tie', '2026-02-01T00:00:00.000Z', 'p-c1', 'first-tie'),
      synthetic('Observation', `o-only-c-${uniqueId('x')}`, '2026-01-01T00:00:00.000Z', 'p-c1', 'only-c'),
    ]);
    await store(second, [
      synthetic('Observation', 'o-newer-in-second', '2026-03-01T00:00:00.000Z', 'p-c2', 'second-new'),
      synthetic('Observation', 'o-tie', '2026-02-01T00:00:00.000Z', 'p-c1', 'second-tie'),
    ]);
  });

  it('two integrations holding one resource: the newest lastUpdated wins, then the lowest integration id', async () => {
    const access = consumer(tenantC, 'clinical-sync', ['system/Observation.rs']);
    expect((await call(access, 'Observation/o-newer-in-second')).body).toMatchObject({
      meta: { versionId: 'second-new' },
    });
    expect((await call(access, 'Observation/o-tie')).body).toMatchObject({ meta: { versionId: 'first-tie' } });
    const searched = await allPages(call, access, 'Observation', '_id=o-newer-in-second,o-tie');
    expect(searched.map((r) => (r.meta as { versionId: string }).versionId)).toEqual(['second-new', 'first-tie']);
    // Filters apply to the winner: the older copy matching in its place is never served.
    expect(await allPages(call, access, 'Observation', '_id=o-newer-in-second&_lastUpdated=lt2026-02')).toEqual([]);
    expect(await allPages(call, access, 'Observation', '_id=o-newer-in-second&patient=p-c1')).toEqual([]);
    const p2 = await allPages(call, access, 'Observation', 'patient=p-c2');
    expect(p2.map((r) => r.id)).toEqual(['o-newer-in-second']);
  });

  it("another tenant's resource is a 404 exactly like a missing one, and the attempt is audited", async () => {
    const { rows } = await harness.pool.query<{ resource_id: string }>(
      `SELECT resource_id FROM records WHERE tenant_id = $1 AND resource_id LIKE 'o-only-c-%'`,
      [tenantC],
    );
    const foreignId = rows[0]!.resource_id;
    const access = consumer(tenantA, 'clinical-sync', ['system/*.rs']);
    const foreign = await call(access, `Observation/${foreignId}`);
    const missing = await call(access, `Observation/${foreignId.replace('o-only-c-', 'o-nowhere-')}`);
    expect(foreign.status).toBe(404);
    const shape = (b: unknown) => JSON.stringify(b).replace(/o-(only-c|nowhere)-[a-z0-9-]+/g, 'ID');
    expect(shape(foreign.body)).toBe(shape(missing.body));
    expect(Object.keys(foreign.headers).sort()).toEqual(Object.keys(missing.headers).sort());
    expect((await auditOf(harness.pool, foreign))[0]).toMatchObject({
      action: 'gateway.read',
      outcome: 'failure',
      tenant_id: tenantA,
      details: { status: 404, reason: 'other-tenant', count: 0 },
    });
    expect((await auditOf(harness.pool, missing))[0]).toMatchObject({ details: { reason: 'not-found' } });
    // Searches by id never reach across either.
    expect(await allPages(call, access, 'Observation', `_id=${foreignId}`)).toEqual([]);
  });

  it('answers unknown types 404, unsupported parameters 400 naming them, scopes 403, incidents 503', async () => {
    const access = consumer(tenantC, 'clinical-sync', ['system/Observation.rs', 'system/Patient.r']);
    const cases: Array<[string, string, number, string | undefined]> = [
      ['Foo', '', 404, 'Foo'],
      ['Foo/1', '', 404, 'Foo'],
      ['Observation', 'code=1234-5', 400, 'code'],
      ['Observation', '_sort=-_lastUpdated', 400, '_sort'],
      ['Observation', 'patient:missing=true', 400, 'patient:missing'],
      ['Observation', '_lastUpdated=ne2026-01-01', 400, '_lastUpdated prefix ne'],
      ['Observation', '_lastUpdated=2026-13-01', 400, '_lastUpdated'],
      ['Observation', '_count=0', 400, '_count'],
      ['Observation', '_cursor=bm9wZQ', 400, '_cursor'],
      ['Patient', 'patient=p-1', 403, undefined], // Patient.r: no search scope
      ['Encounter/e-1', '', 403, undefined],
      ['Observation/o-tie/_history/1', '', 404, undefined],
      ['Patient/p-none/$everything', '', 404, 'Patient/p-none'],
      ['Patient/p-c1/$everything', '_since=2026-01-01', 400, '_since'],
    ];
    for (const [path, query, status, named] of cases) {
      const res = await call(access, path, query);
      expect([path, query, res.status]).toEqual([path, query, status]);
      const body = res.body as { resourceType: string; issue: Array<{ diagnostics: string }> };
      expect(body.resourceType).toBe('OperationOutcome');
      if (named) expect(body.issue[0]!.diagnostics).toContain(named);
      const events = await auditOf(harness.pool, res);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ outcome: 'failure', details: { status } });
    }
    const post = await handleFhirRead({ pool: harness.pool, keyring }, access, {
      method: 'POST',
      path: 'Observation',
      query: new URLSearchParams(),
      baseUrl: BASE_URL,
    });
    expect([post.status, post.headers.allow]).toEqual([405, 'GET']);
    // patient= is not a Patient search parameter (use _id): named, not ignored.
    const onPatient = await call(consumer(tenantC, 'clinical-sync', ['system/Patient.rs']), 'Patient', 'patient=p-1');
    expect([onPatient.status, JSON.stringify(onPatient.body)]).toEqual([400, expect.stringContaining('patient')]);
    // A cursor from another search is refused.
    const page = asBundle(await call(access, 'Observation', '_count=1'));
    const cursor = new URL(page.link.find((l) => l.relation === 'next')!.url).searchParams.get('_cursor')!;
    expect((await call(access, 'Observation', `_id=o-tie&_cursor=${cursor}`)).status).toBe(400);

    const incidentId = uniqueId('inc');
    await openIncident(
      harness.pool,
      {
        id: incidentId,
        scope: `tenant:${tenantC}`,
        severity: 'low',
        reason: 'test',
        declaredBy: 'test',
        drill: true,
        declaredAt: new Date(),
      },
      testActor,
    );
    await raiseHold(harness.pool, incidentId, `tenant:${tenantC}`, testActor);
    const frozen = await call(access, 'Observation/o-tie');
    expect(frozen.status).toBe(503);
    expect((await auditOf(harness.pool, frozen))[0]).toMatchObject({
      details: { reason: 'incident-hold', incidentId },
    });
    // The other tenant reads on.
    expect((await call(consumer(tenantA, 'clinical-sync', ['system/*.rs']), 'Observation', '_count=1')).status).toBe(
      200,
    );
    await liftHold(harness.pool, incidentId, testActor);
    expect((await call(access, 'Observation/o-tie')).status).toBe(200);
  });

  it('break-glass widens scopes for its types while unexpired, and tags every audit event', async () => {
    const grant = {
      id: uniqueId('bg'),
      consumerId: 'c-test',
      scopes: [{ context: 'system' as const, resourceType: 'Observation' as const, read: true, search: true }],
      reasonCode: 'EMERGENCY',
      expiresAt: new Date(Date.now() + 60_000),
    };
    const without = consumer(tenantC, 'clinical-sync', ['system/Patient.rs']);
    expect((await call(without, 'Observation/o-tie')).status).toBe(403);
    const under = consumer(tenantC, 'clinical-sync', ['system/Patient.rs'], [grant]);
    const read = await call(under, 'Observation/o-tie');
    expect(read.status).toBe(200);
    expect((await auditOf(harness.pool, read))[0]).toMatchObject({
      details: { breakGlassId: grant.id, scope: 'system/Observation.rs' },
    });
    const search = await call(under, 'Observation', 'patient=p-c1');
    expect(asBundle(search).entry.length).toBeGreaterThan(0);
    for (const e of await auditOf(harness.pool, search)) expect(e.details.breakGlassId).toBe(grant.id);
    const expired = consumer(tenantC, 'clinical-sync', ['system/Patient.rs'], [{ ...grant, expiresAt: new Date(0) }]);
    expect((await call(expired, 'Observation/o-tie')).status).toBe(403);
  });
});

describe('metadata', () => {
  it('lists exactly what is served: every listed type reads and searches with each listed parameter', async () => {
    const access = consumer(tenantA, 'clinical-sync', ['system/*.rs']);
    const res = await call(access, 'metadata');
    expect(res.status).toBe(200);
    expect(await auditOf(harness.pool, res)).toEqual([]);
    const statement = res.body as {
      rest: Array<{
        security: { extension: Array<{ extension: Array<{ url: string; valueUri: string }> }> };
        resource: Array<{
          type: string;
          interaction: Array<{ code: string }>;
          searchParam: Array<{ name: string }>;
          operation?: Array<{ name: string }>;
        }>;
      }>;
    };
    const rest = statement.rest[0]!;
    expect(rest.security.extension[0]!.extension).toEqual([
      { url: 'token', valueUri: 'https://gateway.test/auth/token' },
    ]);
    const values: Record<string, string> = { _id: 'x-1,x-2', _lastUpdated: 'gt2026-01-01', patient: 'p-1' };
    for (const r of rest.resource) {
      // Writes (create, update, patch on writable types) are checked in gateway-write-create.test.ts.
      expect(r.interaction.map((i) => i.code).slice(0, 2)).toEqual(['read', 'search-type']);
      expect(r.operation?.map((o) => o.name) ?? []).toEqual(r.type === 'Patient' ? ['everything'] : []);
      const who = r.type === 'Coverage' ? consumer(tenantA, 'billing-export', ['system/*.rs']) : access;
      for (const p of r.searchParam)
        expect([r.type, p.name, (await call(who, r.type, `${p.name}=${values[p.name]}`)).status]).toEqual([
          r.type,
          p.name,
          200,
        ]);
      expect((await call(who, `${r.type}/x-none`)).status).toBe(404);
      if (!r.searchParam.some((p) => p.name === 'patient'))
        expect((await call(who, r.type, 'patient=p-1')).status).toBe(400);
    }
  });
});

describe('the audit trail of gateway reads', () => {
  it('holds consumer, purpose, scope, type, count and pseudonyms — no ids or content — and verifies', async () => {
    const access = consumer(tenantA, 'clinical-sync', ['system/Observation.rs']);
    const res = await call(access, 'Observation', '_count=20');
    const served = asBundle(res).entry.map((e) => e.resource);
    const events = await auditOf(harness.pool, res);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: 'gateway.search',
      outcome: 'success',
      tenant_id: tenantA,
      details: {
        consumerId: 'c-test',
        purpose: 'clinical-sync',
        scope: 'system/Observation.rs',
        resourceType: 'Observation',
        count: served.length,
      },
    });
    const patients = events[0]!.details.patients as string[];
    expect(patients.length).toBeGreaterThan(0);
    for (const p of patients) expect(p).toMatch(/^psn_[A-Za-z0-9_-]{22}$/);
    const text = JSON.stringify(events);
    for (const r of served) {
      expect(text).not.toContain(`"${r.id as string}"`);
      expect(text).not.toContain((r.subject as { reference: string }).reference);
    }
    expect(await verifyAuditChain(harness.pool)).toMatchObject({ ok: true });
  });

  it('concurrent reads (committed together) each return only once their own event is in the chain', async () => {
    const access = consumer(tenantA, 'clinical-sync', ['system/Observation.rs']);
    const ids = (await storedIds(tenantA, 'Observation')).slice(0, 40);
    // Each answer's event is looked up the moment it arrives, while the other reads are still in flight.
    const answers = await Promise.all(
      ids.map(async (id) => {
        const res = await call(access, `Observation/${id}`);
        return { status: res.status, events: await auditOf(harness.pool, res) };
      }),
    );
    for (const { status, events } of answers) {
      expect(status).toBe(200);
      expect(events).toMatchObject([{ action: 'gateway.read', details: { count: 1 } }]);
    }
    expect(await verifyAuditChain(harness.pool)).toMatchObject({ ok: true });
  });
});
