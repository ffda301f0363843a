/** What a consumer registration accepts as keys (lib/gateway/consumers.ts): public signing keys and safe JWKS URLs. */
import { describe, expect, it } from 'vitest';
import { checkJwksUrl, publicJwks } from '../../lib/gateway/consumers.js';

const ec = { kty: 'EC', crv: 'P-384', x: 'x-coordinate', y: 'y-coordinate', kid: 'k1', alg: 'ES384', use: 'sig' };

describe('consumer keys', () => {
  it('keeps only the public members of each key', () => {
    expect(publicJwks({ keys: [{ ...ec, extra: 'dropped', x5c: ['dropped'] }] })).toEqual({ keys: [ec] });
    const rsa = { kty: 'RSA', n: 'modulus', e: 'AQAB', kid: 'r1' };
    expect(publicJwks({ keys: [rsa] })).toEqual({ keys: [rsa] });
  });

  it.each([
    [{ keys: [{ ...ec, d: 'private-scalar' }] }, /private key material/],
    [{ keys: [{ ...ec, kid: undefined }] }, /has no kid/],
    [{ keys: [{ ...ec, alg: 'RS256' }] }, /RS256; the gateway takes ES384 or RS384/],
    [{ keys: [{ kty: 'oct', k: 'secret', kid: 's' }] }, /private key material/],
    [{ keys: [] }, /1 to 10 keys/],
    [[ec], /1 to 10 keys/],
  ])('refuses %j', (jwks, message) => {
    expect(() => publicJwks(jwks)).toThrow(message);
  });

  it('takes https JWKS URLs (plain http only to loopback), without credentials, query or fragment', () => {
    expect(checkJwksUrl('https://app.example.org/.well-known/jwks.json')).toBe(
      'https://app.example.org/.well-known/jwks.json',
    );
    expect(checkJwksUrl('http://127.0.0.1:9000/jwks.json')).toBe('http://127.0.0.1:9000/jwks.json');
    expect(() => checkJwksUrl('http://app.example.org/jwks.json')).toThrow(/must be https/);
    expect(() => checkJwksUrl('https://user:pw@app.example.org/jwks.json')).toThrow(/user name or password/);
    expect(() => checkJwksUrl('https://app.example.org/jwks.json?tenant=a')).toThrow(/query or a fragment/);
    expect(() => checkJwksUrl('not a url')).toThrow(/not a URL/);
  });
});
