/**
 * Helpers for tests and the demo: register a SMART client with a fresh key pair and obtain tokens from a
 * running sandbox. Real keys, real JWTs, real HTTP (global fetch).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { ADMIN_HEADER } from './admin-routes.js';
import type { SandboxHandle } from './index.js';
import { ASSERTION_TYPE } from './smart.js';
import { tlsFetch, type ClientTls } from './tls-client.js';

/** `tls`: how to reach a TLS sandbox (its CA, and a client certificate when it requires one). */
export type SandboxRef = Pick<SandboxHandle, 'url' | 'tokenUrl' | 'adminToken'> & { tls?: ClientTls };

function request(
  sb: SandboxRef,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
): Promise<Response> {
  return sb.tls ? tlsFetch(url, sb.tls, init) : fetch(url, init);
}

export interface AssertionOverrides {
  alg?: string;
  kid?: string;
  /** Claims replacing the defaults; `undefined` removes a claim. */
  claims?: Partial<Record<'iss' | 'sub' | 'aud' | 'exp' | 'jti' | 'iat', unknown>>;
  /** Sign with this key instead of the client's own. */
  key?: CryptoKey | Uint8Array;
}

export interface SandboxTestClient {
  clientId: string;
  kid: string;
  alg: 'RS384' | 'ES384';
  privateKey: CryptoKey;
  assertion(overrides?: AssertionOverrides): Promise<string>;
  /** POSTs to the token endpoint; returns status and parsed JSON. */
  requestToken(
    scope: string,
    overrides?: AssertionOverrides,
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  /** A fresh access token (throws if refused). */
  token(scope?: string): Promise<string>;
}

export async function adminFetch(
  sb: SandboxRef,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<Response> {
  const headers: Record<string, string> = { [ADMIN_HEADER]: sb.adminToken };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return request(sb, `${sb.url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

export async function adminJson<T = Record<string, unknown>>(
  sb: SandboxRef,
  path: string,
  body?: unknown,
  method?: string,
): Promise<T> {
  const res = await adminFetch(sb, path, { ...(body !== undefined ? { body } : {}), ...(method ? { method } : {}) });
  if (!res.ok) throw new Error(`sandbox admin ${path} answered ${res.status}`);
  return (await res.json()) as T;
}

export async function createTestClient(
  sb: SandboxRef,
  opts: { scopes: string[]; alg?: 'RS384' | 'ES384'; clientId?: string },
): Promise<SandboxTestClient> {
  const alg = opts.alg ?? 'ES384';
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `kid-${randomUUID()}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const { client_id: clientId } = await adminJson<{ client_id: string }>(sb, '/admin/clients', {
    ...(opts.clientId ? { client_id: opts.clientId } : {}),
    jwks: { keys: [jwk] },
    scopes: opts.scopes,
  });

  const assertion = async (o: AssertionOverrides = {}): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: clientId,
      sub: clientId,
      aud: sb.tokenUrl,
      exp: now + 240,
      iat: now,
      jti: randomUUID(),
    };
    for (const [name, value] of Object.entries(o.claims ?? {})) {
      if (value === undefined) delete claims[name];
      else claims[name] = value;
    }
    return new SignJWT(claims as JWTPayload)
      .setProtectedHeader({ alg: o.alg ?? alg, kid: o.kid ?? kid, typ: 'JWT' })
      .sign(o.key ?? privateKey);
  };

  const requestToken: SandboxTestClient['requestToken'] = async (scope, overrides) => {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(overrides),
      scope,
    });
    const res = await request(sb, sb.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };

  return {
    clientId,
    kid,
    alg,
    privateKey,
    assertion,
    requestToken,
    async token(scope = opts.scopes.join(' ')) {
      const res = await requestToken(scope);
      if (res.status !== 200 || typeof res.body.access_token !== 'string') {
        throw new Error(`sandbox token request failed: ${res.status} ${String(res.body.error)}`);
      }
      return res.body.access_token;
    },
  };
}
