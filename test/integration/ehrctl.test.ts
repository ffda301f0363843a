/**
 * ehrctl as an operator meets it: real processes, real exit codes, messages that name the problem.
 * Bad input is refused clearly; unreachable dependencies say which one and how to fix it; a
 * tampered audit trail is reported with the first broken sequence number.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { appendAuditEvents } from '../../lib/audit/chain.js';
import type { Config } from '../../lib/config/schema.js';
import { migrateUp } from '../../lib/store/migrate.js';
import { createPool, withTransaction } from '../../lib/store/pool.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { onDatabase, testEnv, uniqueId } from '../harness.js';
import type { RunningWorker } from './support.js';
import { startInProcessWorker, startTestSandbox, testConfig } from './support.js';
import { ehrctlEnv, runEhrctl, type EhrctlResult } from './ehrctl-process.js';

let sandbox: SandboxHandle;
let config: Config;
let worker: RunningWorker;

function baseEnv(): Record<string, string> {
  return ehrctlEnv({ config, sandbox });
}

function ehrctl(args: string[], env: Record<string, string | undefined> = {}): Promise<EhrctlResult> {
  return runEhrctl(args, { ...baseEnv(), ...env });
}

beforeAll(async () => {
  sandbox = await startTestSandbox({ size: 300 });
  config = testConfig();
  worker = await startInProcessWorker(config);
});

afterAll(async () => {
  await worker?.stop();
  await sandbox?.close();
});

describe('ehrctl happy path', () => {
  it('registers a tenant and integration, syncs with --wait, counts records', async () => {
    const tenant = uniqueId('cli');
    expect((await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'CLI Test Clinic'])).code).toBe(0);
    const add = await ehrctl([
      'integrations',
      'add',
      '--id',
      `${tenant}-a`,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
      '--types',
      'Patient,Condition',
    ]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const list = await ehrctl(['integrations', 'list', '--tenant', tenant, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({
        id: `${tenant}-a`,
        tenant,
        vendor: 'sandbox',
        status: 'active',
        types: 'Patient,Condition',
      }),
    ]);
    const run = await ehrctl(['sync', 'run', '--integration', `${tenant}-a`, '--wait']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`started sync/${tenant}/${tenant}-a/`));
    expect(run.stdout).toMatch(/: completed/);
    const count = await ehrctl(['records', 'count', '--integration', `${tenant}-a`, '--json']);
    const rows = JSON.parse(count.stdout) as Array<{ resourceType: string; count: number }>;
    expect(rows.map((r) => r.resourceType)).toEqual(['Condition', 'Patient']);
    expect(rows.every((r) => r.count > 0)).toBe(true);
  });

  it('revokes, restores and revokes a tenant, with clear messages and exit codes', async () => {
    const tenant = uniqueId('rev');
    await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Revocation Clinic']);
    await ehrctl([
      'integrations',
      'add',
      '--id',
      `${tenant}-r`,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
      '--types',
      'Patient',
    ]);
    const revoked = await ehrctl(['integrations', 'revoke', `${tenant}-r`, '--reason', 'cli test']);
    expect(revoked.stderr).toBe('');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(
      new RegExp(`integration ${tenant}-r revoked: credential generation 2; (\\d+)/\\1 listening workers confirmed`),
    );
    const list = await ehrctl(['integrations', 'list', '--tenant', tenant, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: `${tenant}-r`, status: 'revoked' })]);
    expect((await ehrctl(['integrations', 'revoke', `${tenant}-r`])).stdout).toContain('was already revoked');
    const restored = await ehrctl(['integrations', 'restore', `${tenant}-r`]);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(
      new RegExp(`integration ${tenant}-r restored: new key \\S+, credential generation 3`),
    );
    expect((await ehrctl(['integrations', 'restore', `${tenant}-r`])).code).toBe(3); // already active
    const tenantRevoked = await ehrctl(['tenants', 'revoke', tenant]);
    expect(tenantRevoked.code).toBe(0);
    expect(tenantRevoked.stdout).toContain(`tenant ${tenant} revoked; integrations revoked: ${tenant}-r`);
    const refused = await ehrctl(['integrations', 'restore', `${tenant}-r`]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`tenant "${tenant}" is revoked`);
    const [noIntegration, noTenant] = await Promise.all([
      ehrctl(['integrations', 'revoke', 'no-such-integration']),
      ehrctl(['tenants', 'revoke', 'no-such-tenant']),
    ]);
    expect(noIntegration.code).toBe(3);
    expect(noTenant.code).toBe(3);
  });

  it('creates, lists, pauses and deletes a nightly schedule', async () => {
    const tenant = uniqueId('cli');
    await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Schedule Clinic']);
    await ehrctl([
      'integrations',
      'add',
      '--id',
      `${tenant}-s`,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
      '--types',
      'Patient',
    ]);
    const created = await ehrctl([
      'schedule',
      'nightly',
      '--integration',
      `${tenant}-s`,
      '--at',
      '02:00',
      '--timezone',
      'America/Chicago',
    ]);
    expect(created.code).toBe(0);
    expect((await ehrctl(['schedule', 'pause', '--integration', `${tenant}-s`])).code).toBe(0);
    const listed = await ehrctl(['schedule', 'list']);
    expect(listed.stdout).toMatch(new RegExp(`nightly/${tenant}/${tenant}-s\\s+true`));
    expect((await ehrctl(['schedule', 'delete', '--integration', `${tenant}-s`])).code).toBe(0);
  });
});

describe('ehrctl refuses bad input clearly', () => {
  it('duplicate tenant and duplicate integration: exit 3, "already exists"', async () => {
    const tenant = uniqueId('dup');
    expect((await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Dup Clinic'])).code).toBe(0);
    const again = await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Dup Clinic']);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/tenant "[a-z0-9-]+" already exists/);
    expect(
      (
        await ehrctl([
          'integrations',
          'add',
          '--id',
          `${tenant}-x`,
          '--tenant',
          tenant,
          '--vendor',
          'sandbox',
          '--types',
          'Patient',
        ])
      ).code,
    ).toBe(0);
    const dupIntegration = await ehrctl([
      'integrations',
      'add',
      '--id',
      `${tenant}-x`,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
    ]);
    expect(dupIntegration.code).toBe(3);
    expect(dupIntegration.stderr).toMatch(/integration "[a-z0-9-]+" already exists/);
  });

  // Invocations that share no state run side by side: each is still its own process, checked on its own.
  it('unknown ids: exit 3 naming the id', async () => {
    const [sync, integ] = await Promise.all([
      ehrctl(['sync', 'run', '--integration', 'no-such-integration']),
      ehrctl(['integrations', 'add', '--id', 'orphan', '--tenant', 'no-such-tenant', '--vendor', 'sandbox']),
    ]);
    expect(sync.code).toBe(3);
    expect(sync.stderr).toContain('integration "no-such-integration" does not exist');
    expect(integ.code).toBe(3);
    expect(integ.stderr).toContain('tenant "no-such-tenant" does not exist');
  });

  it('unknown workflow ids: exit 3 naming the workflow, for every command that takes one', async () => {
    const id = `sync/no-such-tenant/no-such-integration/${uniqueId('wf')}`;
    const commands = [
      ['sync', 'status'],
      ['sync', 'pause'],
      ['sync', 'resume'],
      ['sync', 'cancel'],
      ['sync', 'wait'],
      ['audit', 'history'],
    ];
    const incident = uniqueId('no-such-incident');
    const names = ['status', 'timeline'];
    const [workflows, incidents] = await Promise.all([
      Promise.all(commands.map((c) => [...c, id]).map(async (args) => ({ args, res: await ehrctl(args) }))),
      Promise.all(names.map(async (name) => ({ name, res: await ehrctl(['incident', name, incident]) }))),
    ]);
    expect(workflows).toHaveLength(commands.length);
    for (const { args, res } of workflows) {
      expect({ args, code: res.code }).toEqual({ args, code: 3 });
      expect(res.stderr).toContain(`workflow "${id}" does not exist`);
    }
    expect(incidents).toHaveLength(names.length);
    for (const { name, res } of incidents) {
      expect({ name, code: res.code }).toEqual({ name, code: 3 });
      expect(res.stderr).toContain(`incident "${incident}" does not exist`);
    }
  });

  it('malformed and over-long arguments: exit 2 with the argument named', async () => {
    const [badId, longName, longId, badTypes, badTime, badZone, usage] = await Promise.all([
      ehrctl(['tenants', 'add', '--id', 'Bad_ID!', '--name', 'x']),
      ehrctl(['tenants', 'add', '--id', uniqueId('long'), '--name', 'n'.repeat(201)]),
      ehrctl(['tenants', 'add', '--id', 'a'.repeat(64), '--name', 'x']),
      ehrctl([
        'integrations',
        'add',
        '--id',
        'x1',
        '--tenant',
        'whoever',
        '--vendor',
        'sandbox',
        '--types',
        'Patient,Spaceship',
      ]),
      ehrctl(['schedule', 'nightly', '--integration', 'x', '--at', '25:00', '--timezone', 'America/Chicago']),
      ehrctl(['schedule', 'nightly', '--integration', 'x', '--at', '02:00', '--timezone', 'Mars/Olympus_Mons']),
      ehrctl(['sync', 'run']),
    ]);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('tenant id');
    expect(longName.code).toBe(2);
    expect(longName.stderr).toContain('tenant name');
    expect(longId.code).toBe(2);
    expect(badTypes.code).toBe(2);
    expect(badTypes.stderr).toContain('Spaceship');
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('--at');
    expect(badZone.code).toBe(2);
    expect(badZone.stderr).toContain('--timezone');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--integration');
  });

  it('invalid configuration names the field: exit 78', async () => {
    const [missing, badAddress] = await Promise.all([
      ehrctl(['tenants', 'list'], { DATABASE_URL: undefined }),
      ehrctl(['tenants', 'list'], { TEMPORAL_ADDRESS: 'not an address' }),
    ]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('DATABASE_URL');
    expect(badAddress.code).toBe(78);
    expect(badAddress.stderr).toContain('TEMPORAL_ADDRESS');
  });

  it('unreachable PostgreSQL or Temporal says which and how to fix it: exit 69', async () => {
    const unreachableDb = ehrctl(['tenants', 'list'], { DATABASE_URL: 'postgresql://postgres:x@127.0.0.1:1/none' });
    const tenant = uniqueId('unreach');
    await ehrctl(['tenants', 'add', '--id', tenant, '--name', 'Unreachable Clinic']);
    await ehrctl([
      'integrations',
      'add',
      '--id',
      `${tenant}-u`,
      '--tenant',
      tenant,
      '--vendor',
      'sandbox',
      '--types',
      'Patient',
    ]);
    const db = await unreachableDb;
    expect(db.code).toBe(69);
    expect(db.stderr).toMatch(/postgres is not reachable at 127\.0\.0\.1:1.*ehrctl dev up.*DATABASE_URL/s);
    expect(db.stderr).not.toContain('postgres:x@');
    const temporal = await ehrctl(['sync', 'run', '--integration', `${tenant}-u`], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(temporal.code).toBe(69);
    expect(temporal.stderr).toMatch(/temporal is not reachable at 127\.0\.0\.1:1.*ehrctl dev up.*TEMPORAL_ADDRESS/s);
  });
});

describe('ehrctl audit verify', () => {
  const admin = () => new pg.Client({ connectionString: testEnv().ownerDatabaseUrl });

  /**
   * A database of its own, so tampering never touches the shared test chain: created and migrated by
   * the owner, written and verified by the application role (whose URL it returns).
   */
  async function chainDatabase(events: number): Promise<string> {
    const name = `audit_${uniqueId('db').replace(/-/g, '_')}`;
    const client = admin();
    await client.connect();
    await client.query(`CREATE DATABASE ${name}`);
    await client.end();
    await migrateUp(onDatabase(testEnv().ownerDatabaseUrl, name));
    const url = onDatabase(testEnv().databaseUrl, name);
    const pool = createPool(url, 2);
    await withTransaction(pool, (c) =>
      appendAuditEvents(
        c,
        Array.from({ length: events }, (_, i) => ({
          actor: 'test',
          action: 'test.event',
          outcome: 'success' as const,
          correlationId: `c${i}`,
          details: { i },
        })),
      ),
    );
    await pool.end();
    return url;
  }

  /** The attacker has the owner's rights: triggers off, then anything. */
  async function tamper(url: string, sql: string): Promise<void> {
    const client = new pg.Client({
      connectionString: onDatabase(testEnv().ownerDatabaseUrl, new URL(url).pathname.slice(1)),
    });
    await client.connect();
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await client.query(sql);
    await client.end();
  }

  it('signs a checkpoint on demand, and verify then checks it against the anchor', async () => {
    const url = await chainDatabase(20);
    const anchor = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ehrctl-anchor-')), 'anchor.jsonl');
    const cp = await ehrctl(['audit', 'checkpoint'], { DATABASE_URL: url, EHR_AUDIT_ANCHOR_PATH: anchor });
    expect(cp.code).toBe(0);
    expect(cp.stdout).toMatch(/checkpoint #1 signed over seq 1\.\.2\d /);
    expect(fs.readFileSync(anchor, 'utf8').trim().split('\n')).toHaveLength(1);
    const res = await ehrctl(['audit', 'verify'], { DATABASE_URL: url, EHR_AUDIT_ANCHOR_PATH: anchor });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('checkpoints intact: 1 signed checkpoints match the anchor');
  });

  it('reports an intact chain with exit 0', async () => {
    const url = await chainDatabase(20);
    const res = await ehrctl(['audit', 'verify'], { DATABASE_URL: url });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('audit chain intact: 20 events verified');
  });

  it.each([
    ['an edited row', `UPDATE audit_events SET details = '{"i": 99}' WHERE seq = 7`, 7],
    ['a deleted row', 'DELETE FROM audit_events WHERE seq = 12', 12],
    ['reordered rows', `UPDATE audit_events SET seq = CASE seq WHEN 4 THEN 5 ELSE 4 END WHERE seq IN (4, 5)`, 4],
  ])('detects %s and prints its sequence number, exit 4', async (_label, sql, seq) => {
    const url = await chainDatabase(20);
    await tamper(
      url,
      sql.includes('CASE')
        ? `UPDATE audit_events SET seq = -seq WHERE seq IN (4, 5); UPDATE audit_events
            SET seq = CASE seq WHEN -4 THEN 5 ELSE 4 END WHERE seq IN (-4, -5)`
        : sql,
    );
    const res = await ehrctl(['audit', 'verify'], { DATABASE_URL: url });
    expect(res.code).toBe(4);
    expect(res.stdout).toContain(`audit chain BROKEN at seq ${seq}`);
  });
});
