/**
 * What the gateway checks on every FHIR request beyond the token (test/integration/gateway-auth-support.ts): the
 * consumer's rate limit (429), an incident freezing its tenant (503 with a reason code), its break-glass grants
 * in the access; and registration: a --dev-key consumer's private key stays out of the database, and scopes
 * outside the purpose are refused.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { RefusalAuditLimiter } from '../../lib/audit/refusal-limiter.js';
import { GatewayRefusalError } from '../../lib/errors/index.js';
import { auditGatewayRefusal } from '../../lib/gateway/auth/refusals.js';
import type { BreakGlassGrant } from '../../lib/gateway/access.js';
import { addConsumer, devKeyPath } from '../../lib/gateway/consumers.js';
import { createTenant } from '../../lib/store/tenants.js';
import { testEnv, uniqueId } from '../harness.js';
import {
  assertion,
  consumerKey,
  grants,
  newConsumer,
  pool,
  read,
  refusalReasons,
  seen,
  tenantA,
  tmp,
  tokenFor,
  tokenRequest,
  useTestGateway,
} from './gateway-auth-support.js';
import { testActor } from './support.js';

useTestGateway();

describe('every FHIR request', () => {
  it('answers 429 with Retry-After past the consumer rate limit, audited', async () => {
    const c = await newConsumer({ ratePerMinute: 6, rateBurst: 2 });
    const token = await tokenFor(c);
    expect((await read(token)).status).toBe(200);
    expect((await read(token)).status).toBe(200);
    const limited = await read(token);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'throttled' }] });
    expect(await refusalReasons(c.id)).toEqual(['rate-limited']);
  });

  it("answers 503 with a reason code while an incident freezes the consumer's tenant, audited", async () => {
    const frozenTenant = uniqueId('gw-frozen');
    await createTenant(pool, { id: frozenTenant, name: 'Synthetic Frozen Clinic' }, testActor);
    const c = await newConsumer({ tenantId: frozenTenant });
    const token = await tokenFor(c);
    const incidentId = `gw-${frozenTenant}`.slice(0, 63);
    const owner = new pg.Client({ connectionString: testEnv().ownerDatabaseUrl });
    await owner.connect();
    try {
      await owner.query(
        `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
         VALUES ($1, $2, 'high', 'synthetic', 'user:test', now(), '[]'::jsonb, 'contained')`,
        [incidentId, `tenant:${frozenTenant}`],
      );
      await owner.query('INSERT INTO incident_holds (incident_id, scope) VALUES ($1, $2)', [
        incidentId,
        `tenant:${frozenTenant}`,
      ]);
      const frozen = await read(token);
      expect(frozen.status).toBe(503);
      expect(frozen.headers.get('retry-after')).toBe('300');
      expect(await frozen.json()).toMatchObject({
        issue: [{ code: 'transient', details: { coding: [{ code: 'incident-freeze' }] } }],
      });
      expect(await refusalReasons(c.id)).toEqual(['incident-freeze']);
      // Another tenant's consumer reads on.
      expect((await read(await tokenFor(await newConsumer()))).status).toBe(200);
      await owner.query('UPDATE incident_holds SET exports_frozen = false WHERE incident_id = $1', [incidentId]);
      expect((await read(token)).status).toBe(200);
    } finally {
      await owner.end();
    }
  });

  it("puts the consumer's active break-glass grants, and only those, in the access", async () => {
    const c = await newConsumer();
    const active: BreakGlassGrant = {
      id: uniqueId('bg'),
      consumerId: c.id,
      scopes: [{ context: 'system', resourceType: 'Condition', read: true, search: true }],
      reasonCode: 'EMERGENCY',
      expiresAt: new Date(Date.now() + 600_000),
    };
    const expired: BreakGlassGrant = { ...active, id: uniqueId('bg'), expiresAt: new Date(Date.now() - 1_000) };
    grants.set(c.id, [active, expired]);
    await read(await tokenFor(c), 'Condition?patient=p-1');
    expect(seen.at(-1)!.breakGlass).toEqual([active]);
  });
});

describe('refusals under a flood', () => {
  it('audits the same refusal once per window with the count left out; claimed ids do not open windows', async () => {
    const limiter = new RefusalAuditLimiter(300);
    const correlationId = uniqueId('flood');
    const ctx = { actor: 'test:gateway-flood', correlationId };
    const unknown = new GatewayRefusalError(401, 'invalid_client', 'unknown-consumer');
    const written = [];
    for (const claimed of ['ghost-a', 'ghost-b', 'ghost-c'])
      written.push(await auditGatewayRefusal(pool, limiter, 'token', unknown, ctx, claimed));
    expect(written).toEqual([true, false, false]);
    await new Promise((r) => setTimeout(r, 350));
    expect(await auditGatewayRefusal(pool, limiter, 'token', unknown, ctx, 'ghost-d')).toBe(true);
    const rows = await pool.query<{ details: Record<string, unknown> }>(
      'SELECT details FROM audit_events WHERE correlation_id = $1 ORDER BY seq',
      [correlationId],
    );
    expect(rows.rows.map((r) => r.details)).toEqual([
      { status: 401, reason: 'unknown-consumer', claimedConsumerId: 'ghost-a' },
      { status: 401, reason: 'unknown-consumer', claimedConsumerId: 'ghost-d', suppressedBefore: 2 },
    ]);
  });
});

describe('consumer registration', () => {
  it('--dev-key keeps the private key in a 0600 file under the secrets directory, never in the database', async () => {
    const id = uniqueId('dev-consumer');
    const { consumer, devKeyFile } = await addConsumer(
      pool,
      {
        id,
        tenantId: tenantA,
        purpose: 'clinical-sync',
        scopes: 'system/Patient.rs',
        keys: { kind: 'dev-key', alg: 'ES384', secretsDir: tmp },
      },
      testActor,
    );
    const kid = consumer.jwks!.keys[0]!.kid!;
    expect(devKeyFile).toBe(devKeyPath(tmp, id, kid));
    expect(fs.statSync(devKeyFile!).mode & 0o777).toBe(0o600);
    expect(consumer.jwks!.keys[0]).not.toHaveProperty('d');
    expect(JSON.stringify(consumer)).not.toContain('PRIVATE');
  });

  it("verifies assertions against a consumer's JWKS URL, fetched once and cached", async () => {
    const key = await consumerKey('RS384');
    let fetched = 0;
    const jwksServer = http.createServer((_req, res) => {
      fetched += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    try {
      const id = uniqueId('url-consumer');
      const url = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
      const scopes = 'system/Patient.rs';
      await addConsumer(
        pool,
        { id, tenantId: tenantA, purpose: 'clinical-sync', scopes, keys: { kind: 'jwks-url', url } },
        testActor,
      );
      const c = { id, kid: key.kid, alg: 'RS384' as const, privateKey: key.privateKey };
      expect((await tokenRequest(await assertion(c))).status).toBe(200);
      expect((await tokenRequest(await assertion(c))).status).toBe(200);
      expect(fetched).toBe(1);
      const stranger = await consumerKey('RS384');
      const forged = await tokenRequest(await assertion({ ...c, privateKey: stranger.privateKey }));
      expect(forged.status).toBe(401);
      expect(await refusalReasons(id, 'gateway.token.refused')).toEqual(['assertion-signature']);
    } finally {
      await new Promise((resolve) => jwksServer.close(resolve));
    }
  });

  it('refuses scopes outside the purpose at registration, naming the types', async () => {
    await expect(
      addConsumer(
        pool,
        {
          id: uniqueId('sched'),
          tenantId: tenantA,
          purpose: 'scheduling-sync',
          scopes: 'system/Patient.rs system/Observation.rs',
          keys: { kind: 'jwks-url', url: 'https://consumer.example.org/jwks.json' },
        },
        testActor,
      ),
    ).rejects.toThrow(/purpose scheduling-sync does not allow resource type\(s\) Observation/);
  });
});
