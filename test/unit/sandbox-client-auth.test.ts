/**
 * The sandbox caches a client's hosted JWKS like a vendor: for the Cache-Control max-age it was
 * served with, refetching early only for an unknown kid and then at most once per interval; a
 * private member never makes it into the cache; a failed fetch keeps the keys it had.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteJwks, hashSecret, presentedClient, secretMatches } from '../../sandbox/client-auth.js';
import { ASSERTION_TYPE } from '../../sandbox/smart.js';

let served: { keys: Array<Record<string, unknown>> } = { keys: [] };
let status = 200;
let requests = 0;
let url = '';
const server = http.createServer((_req, res) => {
  requests++;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'public, max-age=10' });
  res.end(JSON.stringify(served));
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks/i.json`;
});
afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

const ec = (kid: string): Record<string, unknown> => ({ kty: 'EC', crv: 'P-384', kid, x: 'x', y: 'y' });

describe('sandbox hosted-JWKS cache', () => {
  it('honours max-age, refetches for an unknown kid at most once per interval, and ignores private keys', async () => {
    let now = 1_000_000;
    const jwks = new RemoteJwks(url, () => now, 2_000);
    served = { keys: [ec('a'), { ...ec('p'), d: 'secret' }] };
    requests = 0;
    expect(await jwks.key('a')).toMatchObject({ kid: 'a' });
    expect(await jwks.key('p')).toBeUndefined();
    expect(requests).toBe(1); // the unknown 'p' came within the refetch interval: no second fetch

    served = { keys: [ec('a'), ec('b')] };
    now += 1_000;
    expect(await jwks.key('b')).toBeUndefined(); // unknown, but refetched too recently
    now += 1_500;
    expect(await jwks.key('b')).toMatchObject({ kid: 'b' });
    expect(requests).toBe(2);

    served = { keys: [ec('b')] };
    now += 5_000;
    expect(await jwks.key('a')).toMatchObject({ kid: 'a' }); // still within max-age=10 of the last fetch
    expect(requests).toBe(2);
    now += 6_000;
    expect(await jwks.key('a')).toBeUndefined(); // max-age passed: refetched, 'a' is gone
    expect(requests).toBe(3);

    status = 500;
    now += 11_000;
    expect(await jwks.key('b')).toMatchObject({ kid: 'b' }); // a failing endpoint does not drop known keys
    status = 200;
  });

  it('identifies the method a request used, and refuses two at once or a malformed one', () => {
    const basic = `Basic ${Buffer.from('c1:s%3A1').toString('base64')}`;
    expect(presentedClient(basic, new URLSearchParams(), ASSERTION_TYPE)).toEqual({
      method: 'client_secret_basic',
      clientId: 'c1',
      secret: 's:1',
    });
    expect(
      presentedClient(undefined, new URLSearchParams({ client_id: 'c1', client_secret: 'x' }), ASSERTION_TYPE),
    ).toMatchObject({ method: 'client_secret_post' });
    expect(presentedClient(undefined, new URLSearchParams({ client_id: 'c1' }), ASSERTION_TYPE)).toEqual({
      method: 'tls_client_auth',
      clientId: 'c1',
    });
    expect(presentedClient(basic, new URLSearchParams({ client_id: 'c1', client_secret: 'x' }), ASSERTION_TYPE)).toBe(
      'ambiguous',
    );
    expect(presentedClient('Bearer abc', new URLSearchParams(), ASSERTION_TYPE)).toBe('malformed');
    expect(
      presentedClient(
        undefined,
        new URLSearchParams({ client_assertion_type: 'other', client_assertion: 'a.b.c' }),
        ASSERTION_TYPE,
      ),
    ).toBe('malformed');
    expect(presentedClient(undefined, new URLSearchParams(), ASSERTION_TYPE)).toBe('none');
  });

  it('stores client secrets only as salted hashes', () => {
    const stored = hashSecret('synthetic-secret-0123456789');
    expect(stored.hash.toString('utf8').includes('synthetic')).toBe(false);
    expect(secretMatches(stored, 'synthetic-secret-0123456789')).toBe(true);
    expect(secretMatches(stored, 'synthetic-secret-012345678X')).toBe(false);
  });
});
