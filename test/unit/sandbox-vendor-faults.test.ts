/**
 * The sandbox's vendor-side faults and policies, seen from a plain HTTP client: HTTP-date
 * Retry-After, hangs, tokens expired between pages, foreign next links, 403 on a granted type,
 * disabled clients, clock skew, jti replay, and scopes narrowed after registration.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminFetch, adminJson, createTestClient, type SandboxTestClient } from '../../sandbox/test-client.js';

let sb: SandboxHandle;
let client: SandboxTestClient;
let token: string;

const search = (url: string, bearer = token): Promise<Response> =>
  fetch(url, { headers: { authorization: `Bearer ${bearer}` } });
const firstPage = (type: string): string => `${sb.fhirBaseUrl}/${type}?_count=5`;

beforeAll(async () => {
  sb = await startSandbox({ size: 300 });
  client = await createTestClient(sb, { scopes: ['system/*.rs'] });
  token = await client.token();
});
afterAll(async () => {
  await sb.close();
});
beforeEach(async () => {
  await adminFetch(sb, '/admin/faults', { method: 'DELETE' });
  await adminJson(sb, '/admin/clock', { skewSeconds: 0 }, 'PUT');
});

describe('sandbox vendor faults', () => {
  it('429 with Retry-After as an HTTP-date at least that far ahead', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'status', status: 429, retryAfterSeconds: 3, retryAfterAsDate: true });
    const before = Date.now();
    const res = await search(firstPage('Patient'));
    expect(res.status).toBe(429);
    const header = res.headers.get('retry-after') ?? '';
    expect(header).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Date.parse(header)).toBeGreaterThanOrEqual(Math.floor((before + 3000) / 1000) * 1000);
    expect((await adminFetch(sb, '/admin/faults', { body: { kind: 'status', retryAfterAsDate: true } })).status).toBe(
      400,
    );
  });

  it('hang: no answer until the client gives up; slow: answers late but whole', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'hang' });
    const started = Date.now();
    const hung = await fetch(firstPage('Patient'), {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(400),
    }).then(
      () => 'answered',
      (err: unknown) => (err as Error).name,
    );
    expect(hung).toBe('TimeoutError');
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    await adminJson(sb, '/admin/faults', { kind: 'slow', delayMs: 300 });
    const t0 = Date.now();
    const slow = await search(firstPage('Patient'));
    expect(slow.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(((await slow.json()) as { entry: unknown[] }).entry).toHaveLength(5);
  });

  it('expire-token: the page is good, the next page meets a 401', async () => {
    const own = await client.token();
    await adminJson(sb, '/admin/faults', { kind: 'expire-token', resourceType: 'Encounter' });
    const page = await search(firstPage('Encounter'), own);
    expect(page.status).toBe(200);
    const next = ((await page.json()) as { link: Array<{ relation: string; url: string }> }).link.find(
      (l) => l.relation === 'next',
    )!.url;
    expect((await search(next, own)).status).toBe(401);
    token = await client.token();
    expect((await search(next)).status).toBe(200);
  });

  it('foreign-next-link: the next link keeps path and query but names another host', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'foreign-next-link', nextHost: 'elsewhere.invalid' });
    const bundle = (await (await search(firstPage('Condition'))).json()) as {
      link: Array<{ relation: string; url: string }>;
    };
    const next = new URL(bundle.link.find((l) => l.relation === 'next')!.url);
    expect(next.hostname).toBe('elsewhere.invalid');
    expect(next.pathname).toBe(new URL(sb.fhirBaseUrl).pathname + '/Condition');
    expect(next.searchParams.get('_cursor')).toBeTruthy();
  });

  it('scope-violation: a 403 OperationOutcome on a type the token grants', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'scope-violation', resourceType: 'Observation' });
    const res = await search(firstPage('Observation'));
    expect(res.status).toBe(403);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect((await search(firstPage('Observation'))).status).toBe(200);
  });
});

describe('sandbox token endpoint policy', () => {
  it('jti replay is reported once, for the next assertion only', async () => {
    await adminJson(sb, '/admin/faults', { kind: 'jti-replay' });
    const replayed = await client.requestToken('system/Patient.rs');
    expect(replayed.status).toBe(401);
    expect(replayed.body).toMatchObject({
      error: 'invalid_client',
      error_description: 'assertion jti has already been used',
    });
    expect((await client.requestToken('system/Patient.rs')).status).toBe(200);
  });

  it('clock skew: a few seconds are within leeway, ten minutes either way are not', async () => {
    await adminJson(sb, '/admin/clock', { skewSeconds: 5 }, 'PUT');
    expect((await client.requestToken('system/Patient.rs')).status).toBe(200);
    for (const skewSeconds of [600, -600]) {
      await adminJson(sb, '/admin/clock', { skewSeconds }, 'PUT');
      const res = await client.requestToken('system/Patient.rs');
      expect(res.status, String(skewSeconds)).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    }
  });

  it('a disabled client gets invalid_client until re-enabled', async () => {
    const other = await createTestClient(sb, { scopes: ['system/Patient.rs'] });
    await adminJson(sb, `/admin/clients/${other.clientId}/disabled`, { disabled: true }, 'PUT');
    const refused = await other.requestToken('system/Patient.rs');
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('invalid_client');
    await adminJson(sb, `/admin/clients/${other.clientId}/disabled`, { disabled: false }, 'PUT');
    expect((await other.requestToken('system/Patient.rs')).status).toBe(200);
    expect(
      (await adminFetch(sb, '/admin/clients/nobody/disabled', { body: { disabled: true }, method: 'PUT' })).status,
    ).toBe(404);
  });

  it('narrowed scopes: the grant is the intersection, and existing tokens lose the narrowed types', async () => {
    const narrowed = await createTestClient(sb, {
      scopes: ['system/Patient.rs', 'system/Condition.rs', 'system/Observation.rs'],
    });
    const early = await narrowed.token();
    await adminJson(
      sb,
      `/admin/clients/${narrowed.clientId}/scopes`,
      { scopes: ['system/Patient.rs', 'system/Observation.rs'] },
      'PUT',
    );
    const granted = await narrowed.requestToken('system/Patient.rs system/Condition.rs');
    expect(granted.status).toBe(200);
    expect(granted.body.scope).toBe('system/Patient.rs');
    expect((await narrowed.requestToken('system/Condition.rs')).body.error).toBe('invalid_scope');
    expect((await search(firstPage('Condition'), early)).status).toBe(403);
    expect((await search(firstPage('Patient'), early)).status).toBe(200);
    // Asking beyond the registration is still refused outright (an over-reach, not a narrowing).
    expect((await narrowed.requestToken('system/Encounter.rs')).body.error).toBe('invalid_scope');
    await adminJson(sb, `/admin/clients/${narrowed.clientId}/scopes`, { scopes: null }, 'PUT');
    expect((await search(firstPage('Condition'), early)).status).toBe(200);
  });
});
