import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { adminFetch, adminJson, createTestClient, type SandboxTestClient } from '../../sandbox/test-client.js';

let sb: SandboxHandle;
let es: SandboxTestClient;
let rs: SandboxTestClient;

beforeAll(async () => {
  sb = await startSandbox({ size: 300 });
  es = await createTestClient(sb, { scopes: ['system/Patient.rs', 'system/Observation.rs'], alg: 'ES384' });
  rs = await createTestClient(sb, { scopes: ['system/*.rs'], alg: 'RS384', clientId: 'rs-client' });
});
afterAll(async () => {
  await sb.close();
});

function expectRejected(res: { status: number; body: Record<string, unknown> }, status: number, error: string): void {
  expect(res.status).toBe(status);
  expect(res.body.error).toBe(error);
  expect(typeof res.body.error_description).toBe('string');
  expect(res.body.access_token).toBeUndefined();
}

describe('sandbox SMART token endpoint', () => {
  it('issues opaque, short-lived tokens for valid ES384 and RS384 assertions', async () => {
    for (const client of [es, rs]) {
      const res = await client.requestToken('system/Patient.rs');
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/Patient.rs' });
      expect(res.body.access_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
      const fhir = await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, {
        headers: { authorization: `Bearer ${String(res.body.access_token)}` },
      });
      expect(fhir.status).toBe(200);
    }
    const wildcard = await rs.requestToken('system/Condition.rs system/Encounter.rs');
    expect(wildcard.status).toBe(200);
  });

  it('rejects bad assertions', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectRejected(
      await es.requestToken('system/Patient.rs', { claims: { aud: `${sb.url}/other/token` } }),
      401,
      'invalid_client',
    );
    expectRejected(await es.requestToken('system/Patient.rs', { claims: { exp: now + 600 } }), 401, 'invalid_client');
    expectRejected(await es.requestToken('system/Patient.rs', { claims: { exp: now - 120 } }), 401, 'invalid_client');
    expectRejected(await es.requestToken('system/Patient.rs', { claims: { exp: undefined } }), 401, 'invalid_client');
    expectRejected(await es.requestToken('system/Patient.rs', { claims: { jti: undefined } }), 401, 'invalid_client');
    expectRejected(await es.requestToken('system/Patient.rs', { kid: 'kid-unknown' }), 401, 'invalid_client');
    expectRejected(
      await es.requestToken('system/Patient.rs', { claims: { sub: 'someone-else' } }),
      401,
      'invalid_client',
    );
    expectRejected(
      await es.requestToken('system/Patient.rs', { claims: { iss: 'nobody', sub: 'nobody' } }),
      401,
      'invalid_client',
    );
    // HS256 with a guessable secret, and RS256 with a real RSA key: both refused on alg.
    expectRejected(
      await es.requestToken('system/Patient.rs', { alg: 'HS256', key: new TextEncoder().encode('x'.repeat(32)) }),
      401,
      'invalid_client',
    );
    const rsa = await generateKeyPair('RS256');
    expectRejected(
      await rs.requestToken('system/Patient.rs', { alg: 'RS256', key: rsa.privateKey }),
      401,
      'invalid_client',
    );
    // A right-looking header signed by a key that is not the registered one.
    const other = await generateKeyPair('ES384');
    expectRejected(await es.requestToken('system/Patient.rs', { key: other.privateKey }), 401, 'invalid_client');
  });

  it('rejects a reused jti', async () => {
    const assertion = await es.assertion();
    const post = (): Promise<Response> =>
      fetch(sb.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
          scope: 'system/Patient.rs',
        }).toString(),
      });
    expect((await post()).status).toBe(200);
    const replay = await post();
    expect(replay.status).toBe(401);
    const body = (await replay.json()) as Record<string, string>;
    expect(body.error).toBe('invalid_client');
    expect(body.error_description).not.toContain(assertion.split('.')[1]);
  });

  it('rejects malformed requests and scopes beyond registration', async () => {
    expectRejected(await es.requestToken('system/Condition.rs'), 400, 'invalid_scope');
    expectRejected(await es.requestToken(''), 400, 'invalid_scope');
    const form = (fields: Record<string, string>): Promise<Response> =>
      fetch(sb.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const assertion = await es.assertion();
    const base = {
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: 'system/Patient.rs',
    };
    let res = await form({ ...base, grant_type: 'password' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Record<string, string>).error).toBe('unsupported_grant_type');
    res = await form({ grant_type: 'client_credentials', scope: 'system/Patient.rs' });
    expect(((await res.json()) as Record<string, string>).error).toBe('invalid_request');
    res = await fetch(sb.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(base),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Record<string, string>).error).toBe('invalid_request');
  });

  it('enforces scopes per type (403) and token expiry (401)', async () => {
    const token = await es.token('system/Patient.rs');
    const auth = { authorization: `Bearer ${token}` };
    expect((await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: auth })).status).toBe(200);
    const forbidden = await fetch(`${sb.fhirBaseUrl}/Observation?_count=1`, { headers: auth });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as Record<string, string>).resourceType).toBe('OperationOutcome');

    const missing = await fetch(`${sb.fhirBaseUrl}/Patient`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');

    const rsToken = await rs.token();
    const { expired } = await adminJson<{ expired: number }>(sb, '/admin/tokens/expire', { client_id: es.clientId });
    expect(expired).toBeGreaterThanOrEqual(1);
    const after = await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: auth });
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(((await after.json()) as Record<string, string>).resourceType).toBe('OperationOutcome');
    // Other clients' tokens survive a targeted expiry; a fresh assertion gets a working token again.
    expect(
      (await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${rsToken}` } })).status,
    ).toBe(200);
    expect(
      (await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${await es.token()}` } }))
        .status,
    ).toBe(200);
    await adminJson(sb, '/admin/tokens/expire', {});
    expect(
      (await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${rsToken}` } })).status,
    ).toBe(401);
  });

  it('registers clients only with public keys and unique ids', async () => {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const { exportJWK } = await import('jose');
    const priv = { ...(await exportJWK(privateKey)), kid: 'k1' };
    expect(
      (await adminFetch(sb, '/admin/clients', { body: { jwks: { keys: [priv] }, scopes: ['system/*.rs'] } })).status,
    ).toBe(400);
    const pub = { kty: priv.kty, crv: priv.crv, x: priv.x, y: priv.y, kid: 'k1' };
    expect(
      (
        await adminFetch(sb, '/admin/clients', {
          body: { client_id: 'rs-client', jwks: { keys: [pub] }, scopes: ['system/*.rs'] },
        })
      ).status,
    ).toBe(409);
    const stats = await adminJson<{ tokenRequests: number; tokensIssued: number }>(sb, '/admin/stats');
    expect(stats.tokenRequests).toBeGreaterThan(stats.tokensIssued);
  });
});
