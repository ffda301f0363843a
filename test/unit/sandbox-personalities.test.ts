/**
 * The sandbox impersonating vendors: what a connector meets at each one — the auth methods it
 * accepts, its scope syntax, its base path, its paging, its required parameters and its rate limit.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle, type SandboxOptions } from '../../sandbox/index.js';
import { PERSONALITIES, type ClientAuthMethod, type PersonalityId } from '../../sandbox/personalities.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';

const open: SandboxHandle[] = [];
async function sandbox(personality: PersonalityId, extra: Partial<SandboxOptions> = {}): Promise<SandboxHandle> {
  const sb = await startSandbox({ size: 300, personality, ...extra });
  open.push(sb);
  return sb;
}
afterAll(async () => {
  await Promise.all(open.map((sb) => sb.close()));
});

const ALL_METHODS: ClientAuthMethod[] = [
  'private_key_jwt',
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
];

/** A token request shaped like `method` (credentials are made up: only the shape matters here). */
function tokenRequestOfShape(sb: SandboxHandle, method: ClientAuthMethod): Promise<Response> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/Patient.read' });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'client_secret_basic')
    headers.authorization = `Basic ${Buffer.from('some-client:not-a-real-secret').toString('base64')}`;
  if (method === 'client_secret_post') {
    form.set('client_id', 'some-client');
    form.set('client_secret', 'not-a-real-secret');
  }
  if (method === 'tls_client_auth') form.set('client_id', 'some-client');
  if (method === 'private_key_jwt') {
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', 'e30.e30.c2ln');
  }
  return fetch(sb.tokenUrl, { method: 'POST', headers, body: form.toString() });
}

async function follow(sb: SandboxHandle, token: string, first: string): Promise<{ ids: string[]; links: string[] }> {
  const ids: string[] = [];
  const links: string[] = [];
  for (let url: string | undefined = first; url;) {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as {
      entry: Array<{ resource: { id: string } }>;
      link: Array<{ relation: string; url: string }>;
    };
    ids.push(...bundle.entry.map((e) => e.resource.id));
    url = bundle.link.find((l) => l.relation === 'next')?.url;
    if (url) links.push(url);
  }
  return { ids, links };
}

describe('sandbox vendor personalities', () => {
  for (const id of ['epic', 'oracle-health', 'athenahealth', 'meditech', 'eclinicalworks', 'nextgen'] as const) {
    it(`${id}: refuses client authentication it does not accept with invalid_client, and serves its own base path`, async () => {
      const sb = await sandbox(id);
      const p = PERSONALITIES[id];
      expect(sb.fhirBaseUrl).toBe(`${sb.url}${p.basePath}`);
      const discovery = await fetch(`${sb.fhirBaseUrl}/.well-known/smart-configuration`);
      expect(discovery.status).toBe(200);
      for (const method of ALL_METHODS) {
        const res = await tokenRequestOfShape(sb, method);
        const body = (await res.json()) as { error: string; error_description: string };
        if (p.authMethods?.includes(method)) {
          expect(body.error_description, method).not.toMatch(/accepts client authentication by/);
        } else {
          expect(res.status, method).toBe(401);
          expect(body, method).toMatchObject({ error: 'invalid_client' });
          expect(body.error_description).toMatch(/accepts client authentication by/);
        }
      }
      const personality = await adminJson<{ personality: { id: string } }>(sb, '/admin/personality');
      expect(personality.personality.id).toBe(id);
    });
  }

  it('epic speaks SMART v1 scopes only, meditech v2 only; standard both', async () => {
    const epic = await sandbox('epic');
    const v1 = await createTestClient(epic, { scopes: ['system/Patient.read', 'system/Patient.rs'] });
    expect((await v1.requestToken('system/Patient.rs')).body).toMatchObject({ error: 'invalid_scope' });
    const granted = await v1.requestToken('system/Patient.read');
    expect(granted.status).toBe(200);
    expect(granted.body.scope).toBe('system/Patient.read');
    expect(granted.body.expires_in).toBe(3600);
    const token = granted.body.access_token as string;
    expect(
      (
        await fetch(`${epic.fhirBaseUrl}/Patient?_id=pt-0000000-00&_count=2`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).status,
    ).toBe(200);
    expect(
      (await fetch(`${epic.url}/fhir/Patient?_count=2`, { headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(404);

    const meditech = await sandbox('meditech');
    const v2 = await createTestClient(meditech, { scopes: ['system/Patient.read', 'system/Patient.rs'] });
    expect((await v2.requestToken('system/Patient.read')).body).toMatchObject({ error: 'invalid_scope' });
    expect((await v2.requestToken('system/Patient.rs')).status).toBe(200);

    const standard = await sandbox('standard');
    const both = await createTestClient(standard, { scopes: ['system/Patient.read', 'system/Patient.rs'] });
    expect((await both.requestToken('system/Patient.read')).status).toBe(200);
    expect((await both.requestToken('system/Patient.rs')).status).toBe(200);
  });

  it('athenahealth: a search without ah-practice is a 400 OperationOutcome; offset paging returns every record exactly once', async () => {
    const sb = await sandbox('athenahealth', { rateLimit: null }); // paging, not throttling, is under test here
    const token = await (await createTestClient(sb, { scopes: ['system/*.rs'] })).token();
    const missing = await fetch(`${sb.fhirBaseUrl}/Patient?_count=5`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(missing.status).toBe(400);
    const outcome = (await missing.json()) as { resourceType: string; issue: Array<{ diagnostics: string }> };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]?.diagnostics).toMatch(/ah-practice/);

    const practice = 'a-1.Practice-195900';
    const { ids, links } = await follow(sb, token, `${sb.fhirBaseUrl}/Patient?_count=7&ah-practice=${practice}`);
    const manifest = (
      await adminJson<{ records: Array<{ id: string }> }>(sb, '/admin/manifest?type=Patient')
    ).records.map((r) => r.id);
    expect(ids).toEqual(manifest);
    expect(new Set(ids).size).toBe(ids.length);
    expect(links.length).toBeGreaterThan(2);
    for (const link of links) {
      const u = new URL(link);
      expect(u.searchParams.get('_getpagesoffset')).toMatch(/^\d+$/);
      expect(u.searchParams.get('ah-practice')).toBe(practice);
      expect(u.searchParams.has('_cursor')).toBe(false);
    }
  });

  it('athenahealth: a sliding limit answers 429 with Retry-After until a slot frees', async () => {
    const sb = await sandbox('athenahealth', { rateLimit: { requests: 2, windowMs: 1500, window: 'sliding' } });
    const token = await (await createTestClient(sb, { scopes: ['system/*.rs'] })).token();
    const get = (): Promise<Response> =>
      fetch(`${sb.fhirBaseUrl}/Patient?_count=1&ah-practice=p1`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get()).status).toBe(200);
    expect((await get()).status).toBe(200);
    const limited = await get();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, Number(limited.headers.get('retry-after')) * 1000));
    expect((await get()).status).toBe(200);
  });

  it('eClinicalWorks: 250 calls/min by default; past the limit a 429 without Retry-After until the next window', async () => {
    const defaults = await sandbox('eclinicalworks');
    const state = await adminJson<{ rateLimit: { spec: { requests: number; windowMs: number; window: string } } }>(
      defaults,
      '/admin/personality',
    );
    expect(state.rateLimit.spec).toEqual({ requests: 250, windowMs: 60_000, window: 'fixed' });

    const windowMs = 2000;
    const sb = await sandbox('eclinicalworks', { rateLimit: { requests: 3, windowMs, window: 'fixed' } });
    const token = await (await createTestClient(sb, { scopes: ['system/*.read'] })).token('system/*.read');
    const get = (): Promise<Response> =>
      fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } });
    // Start at the beginning of a window so the burst below falls inside one.
    await new Promise((r) => setTimeout(r, windowMs - (Date.now() % windowMs) + 20));
    for (let i = 0; i < 3; i++) expect((await get()).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const limited = await get();
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeNull();
    }
    const during = await adminJson<{ rateLimit: { used: number; throttled: number; resetsAtMs: number } }>(
      sb,
      '/admin/personality',
    );
    expect(during.rateLimit.throttled).toBe(2);
    await new Promise((r) => setTimeout(r, Math.max(0, during.rateLimit.resetsAtMs - Date.now()) + 20));
    expect((await get()).status).toBe(200);
  });
});
