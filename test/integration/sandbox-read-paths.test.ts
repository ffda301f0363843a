/**
 * Each personality serves its vendor's read paths and refuses the rest, as the vendor does: Epic and
 * Oracle Health refuse searches without `patient` (Patient needs `_id`), the others refuse clinical
 * searches without `patient` but list patients; `_sort` is refused where the vendor lacks it; the page
 * size is clamped to the vendor's maximum; `standard` stays permissive. The CapabilityStatement says so.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import type { PersonalityId } from '../../sandbox/personalities.js';
import { READ_PATHS } from '../../sandbox/read-paths.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';

const open: SandboxHandle[] = [];
afterAll(async () => {
  await Promise.all(open.map((sb) => sb.close()));
});

async function sandboxWithToken(personality: PersonalityId): Promise<{ sb: SandboxHandle; token: string }> {
  const sb = await startSandbox({ size: 300, personality, rateLimit: null });
  open.push(sb);
  const secret = 'sandbox-read-paths-secret-0123456789';
  const v2 = ['standard', 'athenahealth', 'meditech'].includes(personality);
  const scope = v2 ? 'system/*.rs' : 'system/*.read';
  if (personality === 'oracle-health' || personality === 'nextgen') {
    const method = personality === 'nextgen' ? 'client_secret_post' : 'client_secret_basic';
    const { client_id: id } = await adminJson<{ client_id: string }>(sb, '/admin/clients', {
      token_endpoint_auth_method: method,
      client_secret: secret,
      scopes: [scope],
    });
    const form = new URLSearchParams({ grant_type: 'client_credentials', scope });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (method === 'client_secret_basic')
      headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    else {
      form.set('client_id', id);
      form.set('client_secret', secret);
    }
    const res = await fetch(sb.tokenUrl, { method: 'POST', headers, body: form.toString() });
    return { sb, token: ((await res.json()) as { access_token: string }).access_token };
  }
  const client = await createTestClient(sb, { scopes: [scope] });
  return { sb, token: await client.token() };
}

function search(sb: SandboxHandle, token: string, query: string): Promise<Response> {
  const extra = sb.personality === 'athenahealth' ? `${query.includes('?') ? '&' : '?'}ah-practice=Practice-1` : '';
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (sb.personality === 'nextgen') headers['x-ng-siteid'] = 'site-1';
  return fetch(`${sb.fhirBaseUrl}/${query}${extra}`, { headers });
}

const VENDORS: PersonalityId[] = ['epic', 'oracle-health', 'athenahealth', 'meditech', 'eclinicalworks', 'nextgen'];

describe('sandbox read paths per personality', () => {
  it.each(VENDORS)('%s: clinical searches need patient; _sort refused; pages clamped', async (personality) => {
    const { sb, token } = await sandboxWithToken(personality);
    const reads = READ_PATHS[personality];
    const refused = await search(sb, token, 'Observation?_count=10');
    expect(refused.status).toBe(400);
    const oo = (await refused.json()) as { resourceType: string; issue: Array<{ code: string }> };
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue[0]?.code).toBe('required');
    expect((await search(sb, token, 'Observation?_sort=_lastUpdated&patient=x')).status).toBe(400);

    const group = (await (await search(sb, token, `Group/${reads.groupId}`)).json()) as {
      member: Array<{ entity: { reference: string } }>;
    };
    const patient = group.member[0]?.entity.reference as string;
    const scoped = await search(sb, token, `Observation?patient=${patient}&_count=100000`);
    expect(scoped.status).toBe(200);
    const patientList = await search(sb, token, 'Patient?_count=100000');
    expect(patientList.status).toBe(reads.systemSearch === 'patient-only' ? 200 : 400);
    if (patientList.status === 200) {
      const bundle = (await patientList.json()) as { entry: unknown[] };
      expect(bundle.entry.length).toBe(Math.min(reads.maxPageSize, 30));
    }
    const byId = await search(sb, token, `Patient?_id=${patient.split('/')[1]}`);
    expect(byId.status).toBe(200);

    const meta = (await (await fetch(`${sb.fhirBaseUrl}/metadata`)).json()) as {
      rest: Array<{ resource: Array<{ type: string; documentation?: string; searchParam?: Array<{ name: string }> }> }>;
    };
    const obs = meta.rest[0]?.resource.find((r) => r.type === 'Observation');
    expect(obs?.documentation).toBe('search needs patient');
    expect(obs?.searchParam?.some((p) => p.name === '_sort')).toBe(false);
  });

  it('standard stays permissive: system-wide search with _sort', async () => {
    const { sb, token } = await sandboxWithToken('standard');
    expect((await search(sb, token, 'Observation?_sort=_lastUpdated&_count=10')).status).toBe(200);
  });
});
