/**
 * Client authentication at the token endpoint (lib/vendors/client-auth.ts): what a vendor receives
 * for each method — RFC 6749 §2.3.1 Basic encoding that survives reserved characters, a fresh jti
 * (and so a fresh assertion) on every token request, the profile's scope syntax, and nothing but
 * client_id for tls_client_auth. The sandbox's decoder is the other side of the Basic round trip.
 */
import { decodeJwt, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import { basicAuthorization, revocationRequest, tokenRequest } from '../../lib/vendors/client-auth.js';
import type { IntegrationCredentials } from '../../lib/vendors/vendor-call.js';
import { presentedClient } from '../../sandbox/client-auth.js';
import { ASSERTION_TYPE } from '../../sandbox/smart.js';

async function credentials(overrides: Partial<IntegrationCredentials> = {}): Promise<IntegrationCredentials> {
  const { privateKey } = await generateKeyPair('ES384');
  const base = {
    tenantId: 't-1',
    integrationId: 'i-1',
    vendor: 'sandbox',
    baseUrl: 'https://vendor.example/fhir',
    tokenUrl: 'https://vendor.example/oauth/token',
    clientId: 'client-1',
    scopes: ['system/Patient.rs'],
    resourceTypes: ['Patient', 'Observation'] as const,
  };
  return {
    ...base,
    signAssertion: (audience = base.tokenUrl) =>
      signClientAssertion({ clientId: base.clientId, audience, kid: 'k1', alg: 'ES384', privateKey }),
    ...overrides,
  };
}

function form(body: string): URLSearchParams {
  return new URLSearchParams(body);
}

describe('client authentication at the token endpoint', () => {
  it('form-urlencodes id and secret before base64 (client_secret_basic), so reserved characters survive', () => {
    const clientId = 'client:one';
    const secret = 'p@ss:w%rd +/=&ü';
    const header = basicAuthorization(clientId, secret);
    const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
    expect(decoded).toBe('client%3Aone:p%40ss%3Aw%25rd+%2B%2F%3D%26%C3%BC');
    const seen = presentedClient(header, new URLSearchParams(), ASSERTION_TYPE);
    expect(seen).toEqual({ method: 'client_secret_basic', clientId, secret });
  });

  it('signs a fresh assertion with a new jti for every token request, aud = the token endpoint', async () => {
    const cred = await credentials({ authMethod: 'private_key_jwt' });
    const first = form((await tokenRequest(cred)).body);
    const second = form((await tokenRequest(cred)).body);
    expect(first.get('client_assertion_type')).toBe(ASSERTION_TYPE);
    const a = decodeJwt(first.get('client_assertion')!);
    const b = decodeJwt(second.get('client_assertion')!);
    expect(a.jti).toBeTypeOf('string');
    expect(a.jti).not.toBe(b.jti);
    expect(a.aud).toBe(cred.tokenUrl);
    expect(first.get('grant_type')).toBe('client_credentials');
    expect(first.get('scope')).toBe('system/Patient.rs system/Observation.rs');
  });

  it('asks in the vendor profile scope syntax (Epic: v1 .read)', async () => {
    const cred = await credentials({ vendor: 'epic', authMethod: 'private_key_jwt' });
    expect(form((await tokenRequest(cred)).body).get('scope')).toBe('system/Patient.read system/Observation.read');
  });

  it('client_secret_basic sends the secret only in the Authorization header; client_secret_post only in the form', async () => {
    const secret = 'synthetic-secret-value-0123456789';
    const basic = await tokenRequest(
      await credentials({ authMethod: 'client_secret_basic', clientSecret: async () => secret }),
    );
    expect(basic.headers.authorization).toBe(basicAuthorization('client-1', secret));
    expect(basic.body.includes(secret)).toBe(false);
    const post = await tokenRequest(
      await credentials({ authMethod: 'client_secret_post', clientSecret: async () => secret }),
    );
    expect(post.headers.authorization).toBeUndefined();
    expect(form(post.body).get('client_id')).toBe('client-1');
    expect(form(post.body).get('client_secret')).toBe(secret);
  });

  it('tls_client_auth sends client_id and no secret or assertion (the certificate goes in the handshake)', async () => {
    const req = await tokenRequest(await credentials({ authMethod: 'tls_client_auth' }));
    const f = form(req.body);
    expect(f.get('client_id')).toBe('client-1');
    expect(f.has('client_assertion')).toBe(false);
    expect(f.has('client_secret')).toBe(false);
    expect(req.headers.authorization).toBeUndefined();
  });

  it('authenticates RFC 7009 revocation the same way, with a fresh assertion', async () => {
    const cred = await credentials({ authMethod: 'private_key_jwt' });
    const f = form((await revocationRequest(cred, 'tok')).body);
    expect(f.get('token')).toBe('tok');
    expect(f.get('token_type_hint')).toBe('access_token');
    expect(decodeJwt(f.get('client_assertion')!).aud).toBe(cred.tokenUrl);
  });
});
