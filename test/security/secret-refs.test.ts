/**
 * The key-encryption key cannot be sent to a token endpoint (DESIGN §4 invariant 11). Found from
 * outside: `--client-secret-ref file:<EHR_KEK_DIR>/kek-v1.key` was accepted and the worker sent the KEK
 * as a client_secret_basic password; `file:/proc/self/environ` sent its environment; and the
 * application's database role could rewrite any integration's reference. Now:
 *   - registration refuses such references (and a symbolic link to the KEK), and audits the refusal;
 *   - the application role cannot UPDATE/INSERT reference columns: PostgreSQL says permission denied;
 *   - the definer functions it must use refuse the same references, by rules it cannot change;
 *   - a bad reference that reached a row anyway (written as the owner) is refused at use, before any
 *     request reaches the vendor, and audited;
 *   - the TypeScript and SQL rules agree (property);
 *   - `ehrctl db migrate` records the roots; `--base-url https://user:pass@…` never echoes the password.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { storedSecretPolicy, storedSecretRefRule } from '../../lib/config/stored-secret-refs.js';
import { SecretRefRefusedError } from '../../lib/errors/index.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import { ensureAppLoginRole } from '../../lib/store/roles.js';
import { readStoredSecretPolicy } from '../../lib/store/secret-roots.js';
import { createTenant } from '../../lib/store/tenants.js';
import { restoreIntegration } from '../../lib/revocation/restore.js';
import { revokeIntegration } from '../../lib/revocation/revoke.js';
import { acceptedWebhookSecrets } from '../../lib/webhooks/secrets.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { adminJson } from '../../sandbox/test-client.js';
import { buildWorkerDeps } from '../../workers/build-deps.js';
import { testEnv, uniqueId } from '../harness.js';
import { runEhrctl } from '../integration/ehrctl-process.js';
import { startTestSandbox, testActor, testConfig, testPool } from '../integration/support.js';

let pool: Pool;
let owner: Pool;
let app: pg.Pool;
let sandbox: SandboxHandle;
let tenantId: string;
let kekFile: string;
let secretsDir: string;
const appRole = `ehr_app_login_${randomBytes(4).toString('hex')}`;

function secretFile(name: string): string {
  const file = path.join(secretsDir, `${uniqueId(name)}.secret`);
  fs.writeFileSync(file, randomBytes(24).toString('base64url'), { mode: 0o600 });
  return file;
}

/** A client_secret_basic integration registered with the sandbox through the product's path. */
async function register(db: Pool | pg.Pool, clientSecretRef: string, id = uniqueId('i')): Promise<string> {
  await registerIntegration(
    db as Pool,
    {
      id,
      tenantId,
      vendor: 'sandbox',
      baseUrl: sandbox.fhirBaseUrl,
      resourceTypes: ['Patient'],
      authMethod: 'client_secret_basic',
      clientSecretRef,
      secretsDir,
      sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
    },
    testActor,
  );
  return id;
}

async function storedClientSecretRef(id: string): Promise<string | null> {
  return (
    await pool.query<{ client_secret_ref: string | null }>('SELECT client_secret_ref FROM integrations WHERE id = $1', [
      id,
    ])
  ).rows[0]!.client_secret_ref;
}

async function refusalEvents(
  integrationId: string,
): Promise<Array<{ outcome: string; details: Record<string, unknown> }>> {
  const { rows } = await pool.query<{ outcome: string; details: Record<string, unknown> }>(
    `SELECT outcome, details FROM audit_events WHERE action = 'secret_ref.refused'
        AND integration_id = $1 ORDER BY seq`,
    [integrationId],
  );
  return rows;
}

beforeAll(async () => {
  pool = testPool();
  owner = createPool(testEnv().ownerDatabaseUrl, 2);
  secretsDir = testEnv().secretsDir;
  const kek = fs.readdirSync(testEnv().kekDir).find((f) => /^kek-v\d+\.key$/.test(f));
  kekFile = path.join(testEnv().kekDir, kek!);
  sandbox = await startTestSandbox({ size: 20 });
  tenantId = uniqueId('t');
  await createTenant(pool, { id: tenantId, name: 'Synthetic Secrets Clinic' }, testActor);
  app = new pg.Pool({
    connectionString: await ensureAppLoginRole(testEnv().ownerDatabaseUrl, { role: appRole }),
    max: 2,
  });
  app.on('error', () => undefined);
});

afterAll(async () => {
  await app?.end();
  await owner?.end();
  await pool?.query(`DROP ROLE IF EXISTS ${appRole}`).catch(() => undefined);
  await pool?.end();
  await sandbox?.close();
});

describe('registration refuses a reference to the KEK, /proc or the process environment, and audits it', () => {
  it.each([
    ['the KEK file', () => `file:${kekFile}`, 'excluded-path'],
    ['/proc/self/environ', () => 'file:/proc/self/environ', 'system-path'],
    ['env:DATABASE_URL', () => 'env:DATABASE_URL', 'env-prefix'],
  ])('%s', async (_name, ref, rule) => {
    const id = uniqueId('i');
    const err = await register(pool, ref(), id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretRefRefusedError);
    expect((err as SecretRefRefusedError).rule).toBe(rule);
    expect((err as Error).message).not.toContain(ref().slice(ref().indexOf(':') + 1));
    expect((await pool.query('SELECT 1 FROM integrations WHERE id = $1', [id])).rowCount).toBe(0);
    expect(await refusalEvents(id)).toEqual([
      { outcome: 'failure', details: { field: '--client-secret-ref', rule, stage: 'registration' } },
    ]);
  });

  it('a symbolic link under the secrets root that points at the KEK', async () => {
    const link = path.join(secretsDir, `${uniqueId('kek-link')}.secret`);
    fs.symlinkSync(kekFile, link);
    const id = uniqueId('i');
    const err = await register(pool, `file:${link}`, id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretRefRefusedError);
    expect((err as SecretRefRefusedError).rule).toBe('symlink-escape');
    expect(await refusalEvents(id)).toEqual([
      { outcome: 'failure', details: { field: '--client-secret-ref', rule: 'symlink-escape', stage: 'registration' } },
    ]);
  });
});

describe('restore refuses the same references (the incident commander hands them in there too)', () => {
  it('a revoked client_secret integration is not restored with the KEK as its rotated secret; audited', async () => {
    const id = await register(pool, `file:${secretFile('before-revoke')}`);
    await revokeIntegration(pool, id, testActor, { awaitWorkersMs: 0 });
    const opts = { secretsDir, sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken } };
    const err = await restoreIntegration(pool, id, testActor, { ...opts, clientSecretRef: `file:${kekFile}` }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SecretRefRefusedError);
    expect(
      (await pool.query<{ status: string }>('SELECT status FROM integrations WHERE id = $1', [id])).rows[0]!.status,
    ).toBe('revoked');
    expect(await refusalEvents(id)).toEqual([
      { outcome: 'failure', details: { field: '--client-secret-ref', rule: 'excluded-path', stage: 'restore' } },
    ]);
    const restored = await restoreIntegration(pool, id, testActor, {
      ...opts,
      clientSecretRef: `file:${secretFile('after-revoke')}`,
    });
    expect(restored.status).toBe('active');
  });
});

describe('the application role cannot write secret references itself', () => {
  it('registers through the definer function, but UPDATE/INSERT of reference columns is permission denied', async () => {
    const id = await register(app, `file:${secretFile('app-registered')}`);
    // private_key_jwt too: its key pair is generated under the secrets root and stored by the same function.
    const keyed = uniqueId('i');
    await registerIntegration(
      app as unknown as Pool,
      {
        id: keyed,
        tenantId,
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient'],
        secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      testActor,
    );
    expect(
      (await app.query(`SELECT state FROM integration_signing_keys WHERE integration_id = $1`, [keyed])).rows,
    ).toEqual([{ state: 'current' }]);
    const denied = { code: '42501' };
    await expect(
      app.query(`UPDATE integrations SET client_secret_ref = $2 WHERE id = $1`, [id, `file:${kekFile}`]),
    ).rejects.toMatchObject(denied);
    const procKey = { clientKeyRef: 'file:/proc/self/environ' };
    await expect(app.query(`UPDATE integrations SET tls_refs = $2 WHERE id = $1`, [id, procKey])).rejects.toMatchObject(
      denied,
    );
    await expect(
      app.query(`UPDATE integrations SET token_url = 'https://attacker.example/token' WHERE id = $1`, [id]),
    ).rejects.toMatchObject(denied);
    await expect(
      app.query(`UPDATE integration_signing_keys SET private_key_ref = $1`, [`file:${kekFile}`]),
    ).rejects.toMatchObject(denied);
    const insertSecret = `INSERT INTO webhook_secrets (integration_id, version, secret_ref, state)
        VALUES ($1, 99, $2, 'current')`;
    await expect(app.query(insertSecret, [id, `file:${kekFile}`])).rejects.toMatchObject(denied);
    await expect(app.query(`DELETE FROM secret_roots`)).rejects.toMatchObject(denied);
    await expect(app.query(`INSERT INTO secret_roots (path, kind) VALUES ('/etc', 'root')`)).rejects.toMatchObject(
      denied,
    );
    // What it has a reason to change, it still can (revocation).
    expect((await app.query(`UPDATE integrations SET revoked_at = NULL WHERE id = $1`, [id])).rowCount).toBe(1);
    expect(await storedClientSecretRef(id)).not.toContain(kekFile);
  });

  it('the definer functions refuse the KEK, /proc, traversal and foreign variables', async () => {
    const id = await register(pool, `file:${secretFile('definer')}`);
    const cases: Array<[string, string]> = [
      [`file:${kekFile}`, 'excluded-path'],
      ['file:/proc/self/environ', 'system-path'],
      [`file:${secretsDir}/../${path.basename(path.dirname(kekFile))}/${path.basename(kekFile)}`, 'not-normalised'],
      ['env:AWS_SECRET_ACCESS_KEY', 'env-prefix'],
      ['file:/etc/shadow', 'outside-secret-roots'],
    ];
    for (const [ref, rule] of cases) {
      const refused = { code: '23514', constraint: 'stored_secret_reference', detail: rule };
      await expect(app.query('SELECT set_integration_secret_refs($1, $2, NULL)', [id, ref])).rejects.toMatchObject(
        refused,
      );
      await expect(app.query(`SELECT add_webhook_secret($1, 7, $2)`, [id, ref])).rejects.toMatchObject({
        code: '23514',
        detail: rule,
      });
    }
    const kekKey = { clientKeyRef: `file:${kekFile}` };
    await expect(app.query(`SELECT set_integration_secret_refs($1, NULL, $2)`, [id, kekKey])).rejects.toMatchObject({
      column: 'tls_refs.clientKeyRef',
    });
    const addKey = `SELECT add_integration_signing_key($1, 'kid-x', 'ES384', '{}', $2, 'successor')`;
    await expect(app.query(addKey, [id, 'file:/proc/self/environ'])).rejects.toMatchObject({
      column: 'private_key_ref',
      detail: 'system-path',
    });
    const good = `file:${secretFile('rotated')}`;
    await app.query('SELECT set_integration_secret_refs($1, $2, NULL)', [id, good]);
    expect(await storedClientSecretRef(id)).toBe(good);
  });

  it('the TypeScript and the SQL rules give the same verdict (property)', async () => {
    const policy = await readStoredSecretPolicy(pool);
    const name = fc.oneof(
      fc.constantFrom('..', '.', '', 'proc', 'environ', 'x', '...'),
      fc.stringMatching(/^[A-Za-z0-9._-]{1,6}$/),
    );
    const file = fc
      .tuple(
        fc.constantFrom(secretsDir, path.dirname(kekFile), '/proc/self', '', 'rel', path.dirname(secretsDir)),
        fc.array(name, { maxLength: 5 }),
      )
      .map(([base, parts]) => `file:${[base, ...parts].join('/')}`);
    const env = fc
      .stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,30}$/)
      .chain((n) => fc.constantFrom(`env:${n}`, `env:EHR_VENDOR_SECRET_${n.toUpperCase()}`));
    const refs = fc.sample(
      fc.oneof(
        file,
        env,
        fc.constantFrom('vault:kv/x', 'file://host/x', 'plain', 'file:', 'Env:X', `file:${secretsDir}/a\tb`),
      ),
      400,
    );
    const sql = 'SELECT ref, stored_secret_ref_problem(ref) AS rule FROM unnest($1::text[]) AS ref';
    const { rows } = await pool.query<{ ref: string; rule: string | null }>(sql, [refs]);
    for (const { ref, rule } of rows)
      expect({ ref, rule: storedSecretRefRule(ref, storedSecretPolicy(policy)) ?? null }).toEqual({ ref, rule });
  });
});

describe('a bad reference that reached the row anyway is refused at use', () => {
  it('no request reaches the vendor, and the refusal is audited', async () => {
    const id = await register(pool, `file:${secretFile('legit')}`);
    // A compromised operator path (the owner role) writes what the definer function would refuse.
    await owner.query('UPDATE integrations SET client_secret_ref = $2 WHERE id = $1', [id, `file:${kekFile}`]);
    const since = Date.now();
    const statsBefore = await adminJson<{ tokenRequests: number }>(sandbox, '/admin/stats');
    const deps = await buildWorkerDeps(testConfig());
    try {
      const call = deps.vendors.get(id, `${sandbox.fhirBaseUrl}/Patient`, {
        correlationId: uniqueId('c'),
        purpose: 'test.secret-ref',
      });
      await expect(call).rejects.toBeInstanceOf(SecretRefRefusedError);
    } finally {
      await deps.close();
    }
    expect(sandbox.ledger(since)).toEqual([]);
    expect((await adminJson<{ tokenRequests: number }>(sandbox, '/admin/stats')).tokenRequests).toBe(
      statsBefore.tokenRequests,
    );
    expect(await refusalEvents(id)).toEqual([
      { outcome: 'failure', details: { field: 'clientSecretRef', rule: 'excluded-path', stage: 'use' } },
    ]);
  });

  it('a webhook secret reference under /proc is refused when deliveries are verified, and audited', async () => {
    const id = await register(pool, `file:${secretFile('webhook')}`);
    await owner.query(
      `INSERT INTO webhook_secrets (integration_id, version, secret_ref, state)
          VALUES ($1, 1, 'file:/proc/self/environ', 'current')`,
      [id],
    );
    await expect(acceptedWebhookSecrets(pool, id)).rejects.toBeInstanceOf(SecretRefRefusedError);
    expect(await refusalEvents(id)).toEqual([
      { outcome: 'failure', details: { field: 'webhook secret v1', rule: 'system-path', stage: 'use' } },
    ]);
  });
});

describe('ehrctl', () => {
  it('db migrate records the secret roots from configuration, as the owner', async () => {
    const name = `roots_${uniqueId('db').replace(/-/g, '_')}`;
    await owner.query(`CREATE DATABASE ${name}`);
    const url = new URL(testEnv().ownerDatabaseUrl);
    url.pathname = `/${name}`;
    const check = new pg.Client({ connectionString: url.toString() });
    check.on('error', () => undefined); // the database is dropped under it at the end
    try {
      const env = {
        DATABASE_URL: url.toString(),
        EHR_KEK_DIR: '/var/lib/ehr/keys',
        EHR_SECRETS_DIR: '/var/lib/ehr/secrets',
        EHR_SECRET_ROOTS: '/run/secrets',
        PGPASSFILE: '/run/secrets/pgpass',
      };
      const first = await runEhrctl(['db', 'migrate'], env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/secret roots recorded: \/var\/lib\/ehr\/secrets, \/run\/secrets/);
      await check.connect();
      const { rows } = await check.query<{ path: string; kind: string }>(
        `SELECT path, kind FROM secret_roots WHERE path NOT LIKE '%.pgpass' ORDER BY path`,
      );
      expect(rows).toEqual([
        { path: '/run/secrets', kind: 'root' },
        { path: '/run/secrets/pgpass', kind: 'excluded' },
        { path: '/var/lib/ehr/keys', kind: 'excluded' },
        { path: '/var/lib/ehr/secrets', kind: 'root' },
      ]);
      const audited = async () =>
        (await check.query(`SELECT 1 FROM audit_events WHERE action = 'secret_roots.configured'`)).rowCount;
      expect(await audited()).toBe(1);
      expect((await runEhrctl(['db', 'migrate'], env)).stdout).toMatch(/migrations applied: 0\nsecret roots unchanged/);
      expect(await audited()).toBe(1);
    } finally {
      await check.end().catch(() => undefined);
      await owner.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });

  it('integrations add --base-url https://user:pass@… is refused without echoing the password anywhere', async () => {
    const password = `Pw-${randomBytes(9).toString('hex')}`;
    const before = (await pool.query<{ seq: string }>('SELECT max(seq)::text AS seq FROM audit_events')).rows[0]!.seq;
    const result = await runEhrctl(
      [
        'integrations',
        'add',
        '--id',
        uniqueId('i'),
        '--tenant',
        tenantId,
        '--vendor',
        'epic',
        '--client-id',
        'c',
      ].concat(['--base-url', `https://fhir-user:${password}@vendor.example/fhir`]),
      testEnv().configEnv,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--base-url: must not carry a user name or password/);
    expect(`${result.stdout}${result.stderr}`).not.toContain(password);
    const leaked = await pool.query('SELECT 1 FROM audit_events WHERE seq > $1 AND details::text LIKE $2', [
      before,
      `%${password}%`,
    ]);
    expect(leaked.rowCount).toBe(0);
  });
});
