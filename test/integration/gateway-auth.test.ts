/**
 * The gateway as SMART Backend Services authorization server, over real HTTP against the real PostgreSQL: tokens
 * for good assertions; forged, expired, replayed, wrong-audience and over-scoped ones refused; bearer tokens
 * checked on every FHIR request; revocation on the next request; tokens bound to their consumer's tenant; every
 * refusal audited without the token; the chain verifies afterwards (test/integration/gateway-auth-support.ts).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { AccessTokens } from '../../lib/gateway/auth/access-tokens.js';
import type { GatewaySigningKey } from '../../lib/gateway/auth/access-tokens.js';
import { restoreConsumer, revokeConsumer } from '../../lib/gateway/consumers.js';
import { uniqueId } from '../harness.js';
import type { TestConsumer } from './gateway-auth-support.js';
import {
  assertion,
  consumerKey,
  gateway,
  newConsumer,
  pool,
  read,
  refusalReasons,
  secretsSent,
  seen,
  signingKey,
  tenantA,
  tenantB,
  tokenFor,
  tokenRequest,
  useTestGateway,
} from './gateway-auth-support.js';
import { testActor } from './support.js';

useTestGateway();

describe('discovery', () => {
  it('publishes the token endpoint, private_key_jwt with RS384/ES384, client_credentials and v2 scopes', async () => {
    for (const where of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']) {
      const res = await fetch(`${gateway.url}${where}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        token_endpoint: gateway.tokenUrl,
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        grant_types_supported: ['client_credentials'],
        capabilities: expect.arrayContaining(['client-confidential-asymmetric', 'permission-v2']),
      });
    }
  });

  it('serves the CapabilityStatement without a token, naming the token endpoint', async () => {
    const res = await fetch(`${gateway.url}/fhir/metadata`);
    expect(res.status).toBe(200);
    const statement = (await res.json()) as { resourceType: string; rest: Array<Record<string, unknown>> };
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(JSON.stringify(statement.rest[0]!.security)).toContain(gateway.tokenUrl);
  });
});

describe('the token endpoint', () => {
  it('issues a short-lived token for a good assertion (ES384 and RS384), audited, and it opens /fhir/', async () => {
    for (const alg of ['ES384', 'RS384'] as const) {
      const c = await newConsumer({ alg });
      const res = await tokenRequest(await assertion(c), 'system/Patient.rs system/Observation.r');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toMatchObject({
        token_type: 'bearer',
        expires_in: 300,
        scope: 'system/Patient.rs system/Observation.r',
      });
      const issued = await pool.query<{ details: Record<string, unknown>; tenant_id: string }>(
        `SELECT details, tenant_id FROM audit_events WHERE action = 'gateway.token.issued' AND details->>'consumerId' = $1`,
        [c.id],
      );
      expect(issued.rows).toHaveLength(1);
      expect(issued.rows[0]!.tenant_id).toBe(tenantA);
      expect(issued.rows[0]!.details).toMatchObject({ scopes: ['system/Patient.rs', 'system/Observation.r'] });

      const ok = await read(res.body.access_token as string, 'Observation?patient=p-1');
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen.at(-1)).toMatchObject({
        tenantId: tenantA,
        consumerId: c.id,
        purpose: 'clinical-sync',
        breakGlass: [],
        correlationId: ok.headers.get('x-correlation-id'),
      });
      expect(seen.at(-1)!.scopes).toEqual([
        { context: 'system', resourceType: 'Patient', read: true, search: true },
        { context: 'system', resourceType: 'Observation', read: true, search: false },
      ]);
    }
  });

  it('refuses forged, expired, replayed and wrong-audience assertions with a bare invalid_client, each audited', async () => {
    const c = await newConsumer();
    const other = await consumerKey('ES384');
    const forged = await tokenRequest(await assertion(c, { key: other.privateKey }));
    const expired = await tokenRequest(
      await assertion(c, { now: new Date(Date.now() - 10 * 60_000), lifetimeSeconds: 60 }),
    );
    const audience = await tokenRequest(await assertion(c, { audience: `${gateway.url}/elsewhere/token` }));
    const once = await assertion(c);
    const first = await tokenRequest(once);
    const replayed = await tokenRequest(once);
    expect(first.status).toBe(200);
    for (const refused of [forged, expired, audience, replayed]) {
      expect(refused.status).toBe(401);
      // RFC 6749 with a fixed description: nothing says which check failed.
      expect(refused.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    }
    expect(await refusalReasons(c.id, 'gateway.token.refused')).toEqual([
      'assertion-signature',
      'assertion-expired',
      'assertion-audience',
      'jti-replayed',
    ]);
  });

  it('refuses scopes beyond the registered ones, and words that are not scopes, with invalid_scope', async () => {
    const c = await newConsumer({ scopes: 'system/Patient.r system/Observation.rs' });
    const over = await tokenRequest(await assertion(c), 'system/Patient.rs');
    const otherType = await tokenRequest(await assertion(c), 'system/Encounter.r');
    const wildcard = await tokenRequest(await assertion(c), 'system/*.r');
    const write = await tokenRequest(await assertion(c), 'system/Observation.cruds');
    const word = await tokenRequest(await assertion(c), 'launch');
    const none = await tokenRequest(await assertion(c), '');
    for (const refused of [over, otherType, wildcard, write, word, none]) {
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_scope');
    }
    expect(await refusalReasons(c.id, 'gateway.token.refused')).toEqual([
      'scope-not-registered',
      'scope-not-registered',
      'scope-not-registered',
      // A write scope is a scope (issue 13); this consumer holds none.
      'scope-not-registered',
      'scope-unknown',
      'scope-missing',
    ]);
    // Within the registration, a narrower request is granted as asked.
    expect((await tokenRequest(await assertion(c), 'system/Observation.s')).body.scope).toBe('system/Observation.s');
  });

  it('refuses an unknown client, another grant type and a mismatched client_id, audited under the claimed id', async () => {
    const c = await newConsumer();
    const ghost: TestConsumer = { ...c, id: uniqueId('ghost') };
    expect((await tokenRequest(await assertion(ghost))).status).toBe(401);
    expect(await refusalReasons(ghost.id, 'gateway.token.refused')).toEqual(['unknown-consumer']);
    const grant = await tokenRequest(await assertion(c), 'system/Patient.rs', { grant_type: 'password' });
    expect(grant).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
    const mismatch = await tokenRequest(await assertion(c), 'system/Patient.rs', { client_id: tenantB });
    expect(mismatch.status).toBe(401);
    expect(await refusalReasons(c.id, 'gateway.token.refused')).toEqual(['grant-type', 'client-id-mismatch']);
  });
});

describe('every FHIR request', () => {
  it('needs a valid gateway token: missing, garbage, foreign-signed, expired or wrong-audience ones get 401', async () => {
    const c = await newConsumer();
    const sign = (tokens: AccessTokens) =>
      tokens.issue({ consumerId: c.id, tenantId: tenantA, scope: 'system/Patient.rs', consumerGeneration: 0 });
    const handMade = (key: GatewaySigningKey['privateKey'], audience: string) =>
      new SignJWT({ tenant: tenantA, scope: 'system/Patient.rs', cgen: 0 })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
        .setIssuer(gateway.url)
        .setAudience(audience)
        .setSubject(c.id)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(randomUUID())
        .sign(key);
    const foreign = await handMade(generateKeyPairSync('ed25519').privateKey, gateway.fhirBaseUrl);
    const audience = await handMade(signingKey.privateKey, 'https://other-gateway.example.org/fhir');
    const expired = (await sign(new AccessTokens(signingKey, gateway.url, 60, () => Date.now() - 3_600_000))).token;
    secretsSent.push(foreign, expired, audience);
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'token-missing'],
      ['not.a.token', 'token-invalid'],
      [foreign, 'token-signature'],
      [expired, 'token-expired'],
      [audience, 'token-audience'],
    ];
    for (const [token] of cases) {
      const res = await read(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(await res.json()).toEqual({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'login', diagnostics: 'authentication required' }],
      });
    }
    // The consumer is known only for tokens whose signature verified; the others are audited without one.
    const rows = await pool.query<{ reason: string }>(
      `SELECT details->>'reason' AS reason FROM audit_events
        WHERE action = 'gateway.request.refused' AND actor = 'test:gateway' AND details->>'reason' = ANY($1)`,
      [cases.map(([, reason]) => reason)],
    );
    expect(new Set(rows.rows.map((r) => r.reason))).toEqual(new Set(cases.map(([, reason]) => reason)));
  });

  it('refuses a revoked consumer on its next request, and tokens issued before a restoration', async () => {
    const c = await newConsumer();
    const token = await tokenFor(c);
    expect((await read(token)).status).toBe(200);
    await revokeConsumer(pool, c.id, testActor, 'synthetic test');
    expect((await read(token)).status).toBe(401);
    expect((await tokenRequest(await assertion(c))).status).toBe(401);
    await restoreConsumer(pool, c.id, testActor);
    expect((await read(token)).status).toBe(401);
    const fresh = await tokenFor(c);
    expect((await read(fresh)).status).toBe(200);
    expect(await refusalReasons(c.id)).toEqual(['consumer-revoked', 'token-before-status-change']);
    expect(await refusalReasons(c.id, 'gateway.token.refused')).toEqual(['consumer-revoked']);
    const audited = await pool.query<{ action: string }>(
      `SELECT action FROM audit_events WHERE action LIKE 'gateway.consumer.%' AND details->>'consumerId' = $1 ORDER BY seq`,
      [c.id],
    );
    expect(audited.rows.map((r) => r.action)).toEqual([
      'gateway.consumer.added',
      'gateway.consumer.revoked',
      'gateway.consumer.restored',
    ]);
  });

  it("binds a token to its consumer's tenant: the access names it, and a token claiming another is refused", async () => {
    const a = await newConsumer();
    const b = await newConsumer({ tenantId: tenantB });
    await read(await tokenFor(a));
    expect(seen.at(-1)).toMatchObject({ consumerId: a.id, tenantId: tenantA });
    await read(await tokenFor(b));
    expect(seen.at(-1)).toMatchObject({ consumerId: b.id, tenantId: tenantB });
    // A token signed by the gateway's own key but naming consumer a with tenant B (as a confused issuer might).
    const row = await pool.query<{ status_changed_at: Date }>(
      'SELECT status_changed_at FROM gateway_consumers WHERE id = $1',
      [a.id],
    );
    const crossed = await new AccessTokens(signingKey, gateway.url, 60).issue({
      consumerId: a.id,
      tenantId: tenantB,
      scope: 'system/Patient.rs',
      consumerGeneration: row.rows[0]!.status_changed_at.getTime(),
    });
    secretsSent.push(crossed.token);
    const before = seen.length;
    expect((await read(crossed.token)).status).toBe(401);
    expect(seen.length).toBe(before);
    expect(await refusalReasons(a.id)).toEqual(['token-tenant']);
  });
});

describe('afterwards', () => {
  it('keeps tokens and assertions out of the audit trail, and the chain verifies', async () => {
    expect(secretsSent.length).toBeGreaterThan(20);
    const signatures = secretsSent.map((t) => t.split('.')[2]!).filter((s) => s.length > 20);
    const leaked = await pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM audit_events e, unnest($1::text[]) s WHERE e.details::text LIKE '%' || s || '%'`,
      [signatures],
    );
    expect(leaked.rows[0]!.n).toBe('0');
    expect((await verifyAuditChain(pool)).ok).toBe(true);
  });
});
