/**
 * Our hosted JWKS (workers/jwks-server.ts) as a vendor sees it: the integration's published keys
 * with only public members, retired keys absent, Cache-Control from the vendor profile (capped),
 * an ETag that answers 304, and 404 for ids it does not know.
 */
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntegrationSigningKey, SigningKeyState } from '../../lib/keys/signing-key-repository.js';
import { MAX_JWKS_CACHE_SECONDS, startJwksServer, type JwksServer } from '../../workers/jwks-server.js';

async function key(kid: string, state: SigningKeyState): Promise<IntegrationSigningKey> {
  const { privateKey } = await generateKeyPair('ES384', { extractable: true });
  // The row deliberately carries a private member: the server must never let it out.
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES384', use: 'sig' };
  return {
    integrationId: 'i-1',
    kid,
    alg: 'ES384',
    publicJwk: jwk,
    privateKeyRef: 'file:/nowhere',
    state,
    createdAt: new Date(),
    activatedAt: null,
    retiredAt: null,
  };
}

let server: JwksServer;
let keys: IntegrationSigningKey[];

beforeAll(async () => {
  keys = [
    await key('old', 'previous'),
    await key('now', 'current'),
    await key('next', 'successor'),
    await key('gone', 'retired'),
  ];
  server = await startJwksServer({
    listen: '127.0.0.1:0',
    published: async (id) =>
      id === 'i-1' ? { vendor: 'sandbox', keys } : id === 'i-epic' ? { vendor: 'epic', keys: [] } : undefined,
  });
});
afterAll(async () => server.close());

describe('hosted JWKS', () => {
  it('serves current, successor and previous public keys only, with the profile cache time and an ETag', async () => {
    const res = await fetch(`${server.url}/jwks/i-1.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=5');
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(body.keys.map((k) => k.kid).sort()).toEqual(['next', 'now', 'old']);
    for (const k of body.keys) {
      expect(k.d).toBeUndefined();
      expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    }
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^".+"$/);
    const again = await fetch(`${server.url}/jwks/i-1.json`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
  });

  it('caps a long vendor cache time', async () => {
    const res = await fetch(`${server.url}/jwks/i-epic.json`);
    expect(res.headers.get('cache-control')).toBe(`public, max-age=${Math.min(3600, MAX_JWKS_CACHE_SECONDS)}`);
    expect(await res.json()).toEqual({ keys: [] });
  });

  it('announces a configured max-age instead of the profile one (tests that wait vendor caches out)', async () => {
    const short = await startJwksServer({
      listen: '127.0.0.1:0',
      published: async () => ({ vendor: 'epic', keys }),
      maxAgeSeconds: 1,
    });
    try {
      expect((await fetch(`${short.url}/jwks/i-1.json`)).headers.get('cache-control')).toBe('public, max-age=1');
    } finally {
      await short.close();
    }
  });

  it('answers 404 for unknown integrations and malformed paths', async () => {
    expect((await fetch(`${server.url}/jwks/nobody.json`)).status).toBe(404);
    expect((await fetch(`${server.url}/jwks/..%2Fetc.json`)).status).toBe(404);
    expect((await fetch(`${server.url}/jwks/i-1`)).status).toBe(404);
  });
});
