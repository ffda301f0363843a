/**
 * A gateway in the test's process (workers/gateway.ts startGateway) over real HTTP and the real PostgreSQL, two
 * tenants, and helpers to register consumers, sign their assertions, get tokens and read. The FHIR read side is
 * the fhir helper's: a recording handler stands in for it (`seen`), and break-glass grants come from `grants`.
 * `useTestGateway()` registers its start and stop with the file's beforeAll/afterAll.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, expect } from 'vitest';
import { signClientAssertion } from '../../lib/crypto/client-assertion.js';
import type { BreakGlassGrant, GatewayAccess } from '../../lib/gateway/access.js';
import { loadGatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import type { GatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import { addConsumer } from '../../lib/gateway/consumers.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import type { Pool } from '../../lib/store/pool.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { GatewayHandle } from '../../workers/gateway.js';
import { startGateway } from '../../workers/gateway.js';
import { uniqueId } from '../harness.js';
import { testActor, testConfig, testPool } from './support.js';

export let pool: Pool;
export let gateway: GatewayHandle;
export let signingKey: GatewaySigningKey;
export const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-auth-'));
export const tenantA = uniqueId('gw-a');
export const tenantB = uniqueId('gw-b');
/** Every access the stand-in FHIR handler was given. */
export const seen: GatewayAccess[] = [];
export const grants = new Map<string, BreakGlassGrant[]>();
/** Every token and assertion the tests sent: none may reach the audit trail. */
export const secretsSent: string[] = [];

export interface TestConsumer {
  id: string;
  kid: string;
  alg: 'ES384' | 'RS384';
  privateKey: CryptoKey;
}

export async function consumerKey(alg: 'ES384' | 'RS384'): Promise<{ jwk: JWK; kid: string; privateKey: CryptoKey }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { jwk: { ...jwk, kid, alg, use: 'sig' }, kid, privateKey };
}

export async function newConsumer(
  opts: {
    tenantId?: string;
    scopes?: string;
    alg?: 'ES384' | 'RS384';
    ratePerMinute?: number;
    rateBurst?: number;
  } = {},
): Promise<TestConsumer> {
  const alg = opts.alg ?? 'ES384';
  const key = await consumerKey(alg);
  const id = uniqueId('consumer');
  await addConsumer(
    pool,
    {
      id,
      tenantId: opts.tenantId ?? tenantA,
      purpose: 'clinical-sync',
      scopes: opts.scopes ?? 'system/Patient.rs system/Observation.rs',
      keys: { kind: 'jwks', jwks: { keys: [key.jwk] } },
      ratePerMinute: opts.ratePerMinute,
      rateBurst: opts.rateBurst,
    },
    testActor,
  );
  return { id, kid: key.kid, alg, privateKey: key.privateKey };
}

export async function assertion(
  c: TestConsumer,
  opts: { audience?: string; now?: Date; lifetimeSeconds?: number; key?: CryptoKey } = {},
): Promise<string> {
  const signed = await signClientAssertion({
    clientId: c.id,
    audience: opts.audience ?? gateway.tokenUrl,
    kid: c.kid,
    alg: c.alg,
    privateKey: opts.key ?? c.privateKey,
    lifetimeSeconds: opts.lifetimeSeconds ?? 240,
    ...(opts.now ? { now: opts.now } : {}),
  });
  secretsSent.push(signed);
  return signed;
}

export async function tokenRequest(
  signed: string,
  scope = 'system/Patient.rs',
  extra: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(gateway.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: signed,
      scope,
      ...extra,
    }).toString(),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (typeof body.access_token === 'string') secretsSent.push(body.access_token);
  return { status: res.status, body, headers: res.headers };
}

export async function tokenFor(c: TestConsumer, scope = 'system/Patient.rs'): Promise<string> {
  const res = await tokenRequest(await assertion(c), scope);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.access_token as string;
}

export async function read(token: string | undefined, fhirPath = 'Patient/p-1'): Promise<Response> {
  return fetch(`${gateway.fhirBaseUrl}/${fhirPath}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
}

/** The refusal events written for a consumer (or claimed id), reasons in order. */
export async function refusalReasons(consumerId: string, action = 'gateway.request.refused'): Promise<string[]> {
  const res = await pool.query<{ reason: string }>(
    `SELECT details->>'reason' AS reason FROM audit_events
      WHERE action = $1 AND (details->>'consumerId' = $2 OR details->>'claimedConsumerId' = $2) ORDER BY seq`,
    [action, consumerId],
  );
  return res.rows.map((r) => r.reason);
}

export function useTestGateway(): void {
  beforeAll(startTestGateway);
  afterAll(stopTestGateway);
}

async function startTestGateway(): Promise<void> {
  pool = testPool();
  await createTenant(pool, { id: tenantA, name: 'Synthetic Gateway Clinic A' }, testActor);
  await createTenant(pool, { id: tenantB, name: 'Synthetic Gateway Clinic B' }, testActor);
  const { privateKey } = generateKeyPairSync('ed25519');
  const keyFile = path.join(tmp, 'gateway-access.key');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  signingKey = await loadGatewaySigningKey(`file:${keyFile}`);
  const config = testConfig();
  const kek = await KeyHierarchy.open({
    pool,
    backend: await createKekProvider(config),
    audit: { actor: 'test:gateway', correlationId: randomUUID() },
  });
  gateway = await startGateway(
    { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: 0, GATEWAY_PUBLIC_URL: undefined, GATEWAY_ACCESS_LIFETIME_SECONDS: 300 },
    {
      pool,
      keyring: new TenantKeyring({ pool, kek }),
      signingKey,
      grantsFor: async (consumerId) => grants.get(consumerId) ?? [],
      handleFhir: async (_deps, access, request) => {
        seen.push(access);
        return { status: 200, headers: {}, body: { resourceType: 'Bundle', path: request.path } };
      },
      refusalAuditWindowMs: 0,
      actor: 'test:gateway',
    },
  );
}

async function stopTestGateway(): Promise<void> {
  await gateway?.close();
  await pool?.end();
  fs.rmSync(tmp, { recursive: true, force: true });
}
