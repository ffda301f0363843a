/**
 * Where an integration's requests and credentials go stays the owner's to write: the application role
 * (logged in as it, like the worker and ehrctl) cannot UPDATE the base URL, token URL, client id, auth
 * method or Bulk Data file hosts itself; it goes through update_integration_endpoints, which checks what it
 * is given. The read strategy and options are its own columns.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import type { Pool } from '../../lib/store/pool.js';
import { ensureAppLoginRole } from '../../lib/store/roles.js';
import { createTenant } from '../../lib/store/tenants.js';
import { testEnv, uniqueId } from '../harness.js';
import { testActor, testPool } from '../integration/support.js';

let pool: Pool;
let app: pg.Pool;
let integrationId: string;
const appRole = `ehr_app_login_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  pool = testPool();
  const tenantId = uniqueId('t');
  await createTenant(pool, { id: tenantId, name: 'Synthetic Roles Clinic' }, testActor);
  integrationId = uniqueId('i');
  // A pending integration of an unreachable vendor: registration needs no network with --token-url.
  await registerIntegration(
    pool,
    {
      id: integrationId,
      tenantId,
      vendor: 'fhir-server',
      baseUrl: 'https://fhir.example.test/fhir',
      tokenUrl: 'https://fhir.example.test/token',
      resourceTypes: ['Patient'],
      secretsDir: testEnv().secretsDir,
    },
    testActor,
  );
  app = new pg.Pool({
    connectionString: await ensureAppLoginRole(testEnv().ownerDatabaseUrl, { role: appRole }),
    max: 2,
  });
  app.on('error', () => undefined);
});

afterAll(async () => {
  await app?.end();
  await pool?.query(`DROP ROLE IF EXISTS ${appRole}`).catch(() => undefined);
  await pool?.end();
});

describe('the application role and an integration’s endpoints', () => {
  it.each([
    ["base_url = 'https://attacker.example.test/fhir'"],
    ["token_url = 'https://attacker.example.test/token'"],
    ["client_id = 'someone-else'"],
    ["bulk_file_hosts = ARRAY['attacker.example.test']"],
    ["auth_method = 'none'"],
    ["status = 'active'"],
  ])('refuses a plain UPDATE SET %s', async (set) => {
    const attempt = app.query(`UPDATE integrations SET ${set} WHERE id = $1`, [integrationId]);
    // status is the app role's column, but a pending integration cannot become active without a client id.
    await expect(attempt).rejects.toMatchObject({ code: set.startsWith('status') ? '23514' : '42501' });
    expect(await getIntegration(pool, integrationId)).toMatchObject({
      baseUrl: 'https://fhir.example.test/fhir',
      clientId: null,
      status: 'pending-client-id',
      bulkFileHosts: [],
    });
  });

  it('changes them only through update_integration_endpoints, which checks what it is given', async () => {
    const call = (base: string | null, token: string | null, client: string | null, hosts: string[] | null) =>
      app.query('SELECT * FROM update_integration_endpoints($1, $2, $3, $4, $5)', [
        integrationId,
        base,
        token,
        client,
        hosts,
      ]);
    await expect(call('http://10.0.0.9/fhir', null, null, null)).rejects.toMatchObject({ code: '23514' });
    await expect(call('https://user:pw@fhir.example.test/fhir', null, null, null)).rejects.toMatchObject({
      code: '23514',
    });
    await expect(call(null, null, 'has space', null)).rejects.toMatchObject({ code: '23514' });
    await expect(call(null, null, null, ['https://files.example.test/x'])).rejects.toMatchObject({ code: '23514' });
    const before = await getIntegration(pool, integrationId);
    await call('https://fhir2.example.test/fhir', null, 'client-7', ['files.example.test']);
    const after = await getIntegration(pool, integrationId);
    expect(after).toMatchObject({
      baseUrl: 'https://fhir2.example.test/fhir',
      clientId: 'client-7',
      status: 'active',
      bulkFileHosts: ['files.example.test'],
      credentialGeneration: before.credentialGeneration + 1,
    });
  });

  it('lets the application role set the read strategy and options itself', async () => {
    await app.query(
      `UPDATE integrations SET read_strategy = 'bulk', read_options = '{"bulkLevel":"system"}' WHERE id = $1`,
      [integrationId],
    );
    expect(await getIntegration(pool, integrationId)).toMatchObject({
      readStrategy: 'bulk',
      readOptions: { bulkLevel: 'system' },
    });
  });
});
