/**
 * Encrypted batch exports, as an operator and a recipient use them (`ehrctl export …` as real processes
 * against a real sync of the sandbox): the decrypted output is exactly the stored records minimised for the
 * export's purpose; a flipped byte in a file or in the manifest is named by `export verify`; after the
 * retention period the job key is destroyed and decryption fails; an incident's freeze refuses the export.
 * Nothing of the exported content is printed: the tests compare it in memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import type { ResourceType } from '../../lib/domain.js';
import { minimiseForPurpose } from '../../lib/fhir/minimise.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { createPool } from '../../lib/store/pool.js';
import { exportProgress, newExportJobId, startExport } from '../../client/export-client.js';
import type { ExportResult } from '../../workflows/export-api.js';
import { activityFaults } from '../activity-faults.js';
import { testEnv } from '../harness.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import type { EhrctlResult } from './ehrctl-process.js';
import { syncedSandboxTenant } from './stored-records.js';
import { useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { seed: 7, size: 12 } });
const ehrctl = (args: string[]) => runEhrctl(args, ehrctlEnv({ config: harness.config }));
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ehr-export-${prefix}-`));

/** The job id `export run` printed. */
function jobOf(run: EhrctlResult): string {
  const m = /\(job ([a-z0-9-]+)\)/.exec(run.stdout);
  if (!m) throw new Error(`no job id in the output of export run (exit ${run.code})`);
  return m[1]!;
}

/** The tenant's stored records of a type, decrypted with a fresh keyring and minimised for `purpose`, by id. */
async function expectedRecords(tenantId: string, type: ResourceType, purpose: 'scheduling-sync' | 'clinical-sync') {
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  const { rows } = await harness.pool.query<{ integration_id: string; resource_id: string; ciphertext: Buffer }>(
    'SELECT integration_id, resource_id, ciphertext FROM records WHERE tenant_id = $1 AND resource_type = $2',
    [tenantId, type],
  );
  const stored = new Map<string, Record<string, unknown>>();
  const minimised = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    const at = { tenantId, integrationId: r.integration_id, resourceType: type, resourceId: r.resource_id };
    const plain = await decryptRecord(r.ciphertext, at, keyring.lookup);
    const resource = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
    plain.fill(0);
    stored.set(r.resource_id, resource);
    minimised.set(r.resource_id, minimiseForPurpose(type, resource, purpose).resource);
  }
  return { stored, minimised };
}

function readNdjson(file: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as Record<string, unknown>;
    out.set(String(r.id), r);
  }
  return out;
}

async function auditActions(tenantId: string, prefix: string): Promise<Array<{ action: string; outcome: string }>> {
  const res = await harness.pool.query<{ action: string; outcome: string }>(
    `SELECT action, outcome FROM audit_events WHERE tenant_id = $1 AND action LIKE $2 ORDER BY seq`,
    [tenantId, `${prefix}%`],
  );
  return res.rows;
}

/** An incident holding the tenant with the given flags (as containment leaves one), written as the owner. */
async function holdTenant(
  tenantId: string,
  prefix: string,
  flags: { exportsFrozen: boolean; legalHold: boolean },
  scope = `tenant:${tenantId}`,
) {
  const incidentId = `${prefix}-${tenantId}`.slice(0, 63);
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    await owner.query(
      `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
       VALUES ($1, $2, 'high', 'synthetic', 'user:test', now(), '[]'::jsonb, 'contained')`,
      [incidentId, scope],
    );
    await owner.query(
      `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold)
       VALUES ($1, $2, $3, false, false, $4)`,
      [incidentId, scope, flags.exportsFrozen, flags.legalHold],
    );
  } finally {
    await owner.end();
  }
  return {
    incidentId,
    async releaseLegalHold() {
      const o = createPool(testEnv().ownerDatabaseUrl, 1);
      try {
        await o.query('UPDATE incident_holds SET legal_hold = false WHERE incident_id = $1', [incidentId]);
      } finally {
        await o.end();
      }
    },
  };
}

/** Flips the lowest bit of the byte at `at` (a copy of the export is tampered with, never the original). */
function flipByte(file: string, at: number): void {
  const buf = fs.readFileSync(file);
  buf[at] = buf[at]! ^ 1;
  fs.writeFileSync(file, buf);
}

describe('ehrctl export', () => {
  it('round trip: the decrypted files are the stored records minimised for the purpose; tampering is named', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient', 'Observation', 'Encounter']);
    const to = tmp('out');
    // The first type's file is written, then its reply is lost: the retry writes it again, whole.
    activityFaults.loseReplyOnce.add('writeExportFile');
    const run = await ehrctl([
      'export',
      'run',
      '--tenant',
      tenantId,
      '--purpose',
      'scheduling-sync',
      '--to',
      to,
      '--retain-days',
      '7',
      '--wait',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(activityFaults.loseReplyOnce.has('writeExportFile')).toBe(false);
    const job = jobOf(run);
    const dir = path.join(to, job);
    expect(run.stdout).toMatch(new RegExp(`^started export/${tenantId}/${job} `));
    // Scheduling allows Patient and Encounter of the stored types; Observation is outside the purpose.
    expect(fs.readdirSync(dir).sort()).toEqual(['Encounter.ndjson.enc', 'Patient.ndjson.enc', 'manifest.json']);
    expect(fs.readFileSync(path.join(dir, 'Patient.ndjson.enc')).includes('"resourceType"')).toBe(false);

    const verify = await ehrctl(['export', 'verify', dir]);
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^ok: export ${job} \\(scheduling-sync\\), 2 files verified`, 'm'));

    const out = path.join(tmp('plain'), 'out');
    const decrypt = await ehrctl(['export', 'decrypt', dir, '--to', out]);
    expect(decrypt.code, decrypt.stderr).toBe(0);
    for (const type of ['Patient', 'Encounter'] as const) {
      const { stored, minimised } = await expectedRecords(tenantId, type, 'scheduling-sync');
      const got = readNdjson(path.join(out, `${type}.ndjson`));
      expect(got.size).toBeGreaterThan(0);
      expect([...got.keys()].sort()).toEqual([...minimised.keys()].sort());
      for (const [id, resource] of got) expect(resource, `${type} ${id}`).toStrictEqual(minimised.get(id));
      expect(run.stdout).toContain(`${type}: ${got.size} records`);
      if (type === 'Patient') {
        // Minimisation did something: what scheduling may not see (e.g. a Patient's extension) is gone.
        const dropped = [...stored.values()].filter((r) => 'extension' in r || 'maritalStatus' in r);
        expect(dropped.length).toBeGreaterThan(0);
        for (const r of got.values()) expect(Object.keys(r)).not.toContain('extension');
      }
    }
    // The operator's output names ids, counts and paths; none of the content.
    const names = [...readNdjson(path.join(out, 'Patient.ndjson')).values()].flatMap((p) =>
      ((p.name as Array<{ family?: string }> | undefined) ?? []).flatMap((n) => (n.family ? [n.family] : [])),
    );
    expect(names.length).toBeGreaterThan(0);
    for (const output of [run, verify, decrypt])
      for (const family of names) expect(output.stdout + output.stderr).not.toContain(family);

    const actions = (await auditActions(tenantId, 'export.')).map((a) => `${a.action}:${a.outcome}`);
    expect(actions).toEqual([
      'export.started:success',
      'export.file_written:success', // the first attempt, whose reply was lost
      'export.file_written:success',
      'export.file_written:success',
      'export.completed:success',
      'export.decrypted:success',
    ]);

    // A flipped byte in a file: verify names the file, decrypt refuses the export.
    const badFile = tmp('badfile');
    fs.cpSync(dir, badFile, { recursive: true });
    flipByte(path.join(badFile, 'Encounter.ndjson.enc'), 40);
    const v1 = await ehrctl(['export', 'verify', badFile]);
    expect(v1.code).toBe(1);
    expect(v1.stdout.trim()).toBe('FAIL Encounter.ndjson.enc: SHA-256 does not match the manifest');
    const d1 = await ehrctl(['export', 'decrypt', badFile, '--to', path.join(tmp('plain'), 'x')]);
    expect(d1.code).toBe(2);
    expect(d1.stderr).toMatch(/export does not verify: Encounter\.ndjson\.enc/);

    // A flipped byte in the manifest (a digit of a count): verify names the manifest.
    const badManifest = tmp('badmanifest');
    fs.cpSync(dir, badManifest, { recursive: true });
    const manifestFile = path.join(badManifest, 'manifest.json');
    flipByte(manifestFile, fs.readFileSync(manifestFile, 'utf8').search(/"count": \d/) + '"count": '.length);
    const v2 = await ehrctl(['export', 'verify', badManifest]);
    expect(v2.code).toBe(1);
    expect(v2.stdout.trim()).toBe('FAIL manifest.json: the manifest differs from what was signed (bad manifest)');
  });

  it('after the retention period the job key is destroyed, the files removed, and decryption fails', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient']);
    const to = tmp('retained');
    const run = await ehrctl([
      'export',
      'run',
      '--tenant',
      tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--retain-seconds',
      '6',
      '--types',
      'Patient,Encounter',
      '--wait',
    ]);
    expect(run.code, run.stderr).toBe(0);
    // A named type is exported even when the tenant stores none of it.
    expect(run.stdout).toMatch(/^ {2}Patient: [1-9]\d* records/m);
    expect(run.stdout).toMatch(/^ {2}Encounter: 0 records/m);
    const job = jobOf(run);
    const copy = tmp('copy');
    fs.cpSync(path.join(to, job), copy, { recursive: true });
    expect(fs.readdirSync(copy).sort()).toEqual(['Encounter.ndjson.enc', 'Patient.ndjson.enc', 'manifest.json']);
    expect((await ehrctl(['export', 'verify', copy])).code).toBe(0);

    const status = async () =>
      (
        await harness.pool.query<{ status: string; shredded: boolean }>(
          'SELECT status, wrapped_key IS NULL AS shredded FROM export_jobs WHERE id = $1',
          [job],
        )
      ).rows[0];
    expect(await status()).toEqual({ status: 'written', shredded: false });
    const deadline = Date.now() + 60_000;
    // The key goes first (its transaction), the files right after it.
    while (((await status())?.status !== 'shredded' || fs.existsSync(path.join(to, job))) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 500));
    expect(await status()).toEqual({ status: 'shredded', shredded: true });
    expect(fs.existsSync(path.join(to, job))).toBe(false);

    const list = await ehrctl(['export', 'list', '--tenant', tenantId]);
    expect(list.stdout).toMatch(new RegExp(`${job}\\s+${tenantId}\\s+clinical-sync\\s+shredded`));
    // The copy still verifies (it is what was signed), but its key is gone for good.
    const decrypt = await ehrctl(['export', 'decrypt', copy, '--to', path.join(tmp('plain'), 'never')]);
    expect(decrypt.code).toBe(1);
    expect(decrypt.stderr).toMatch(new RegExp(`export job key export-${job} has been destroyed`));
    expect(fs.existsSync(path.join(copy, '..', 'never'))).toBe(false);
    const actions = (await auditActions(tenantId, 'export.')).map((a) => `${a.action}:${a.outcome}`);
    expect(actions.slice(-3)).toEqual([
      'export.key.destroyed:success',
      'export.files_removed:success',
      'export.decrypted:failure',
    ]);
  });

  it('is refused while an incident freezes the tenant, naming the incident', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient']);
    const { incidentId } = await holdTenant(tenantId, 'freeze', { exportsFrozen: true, legalHold: false });
    const to = tmp('frozen');
    const run = await ehrctl([
      'export',
      'run',
      '--tenant',
      tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--wait',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`SCOPE_UNDER_INCIDENT.*held by incident ${incidentId}`));
    expect(fs.readdirSync(to)).toEqual([]);
    const jobs = await harness.pool.query('SELECT 1 FROM export_jobs WHERE tenant_id = $1', [tenantId]);
    expect(jobs.rowCount).toBe(0);
    expect(await auditActions(tenantId, 'export.')).toEqual([{ action: 'export.refused', outcome: 'failure' }]);

    // An incident on one of the tenant's integrations freezes the export too: it would read that integration's records.
    const other = await syncedSandboxTenant(harness, ['Patient']);
    const scope = `integration:${other.integrationIds[0]!}`;
    const held = await holdTenant(other.tenantId, 'freeze-i', { exportsFrozen: true, legalHold: false }, scope);
    const refused = await ehrctl([
      'export',
      'run',
      '--tenant',
      other.tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--retain-seconds',
      '1',
    ]);
    expect(refused.code, refused.stderr).toBe(0); // started; the workflow refuses
    const jobId = /\(job ([a-z0-9-]+)\)/.exec(refused.stdout)![1]!;
    const handle = harness.temporal.client.workflow.getHandle(`export/${other.tenantId}/${jobId}`);
    const failure = await handle.result().then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(String((failure?.cause as Error | undefined)?.cause)).toMatch(
      new RegExp(`scope ${scope} is held by incident ${held.incidentId}`),
    );
  });

  it('waits for a legal hold on the tenant before shredding, and shreds once it is released', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient']);
    const hold = await holdTenant(tenantId, 'legal', { exportsFrozen: false, legalHold: true });
    const to = tmp('held');
    const jobId = newExportJobId();
    const handle = await startExport(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      purpose: 'clinical-sync',
      to,
      retainSeconds: 1,
      requestedBy: 'test:export',
      jobId,
      holdRecheckSeconds: 1,
    });
    const deadline = Date.now() + 60_000;
    let progress = await exportProgress(handle);
    while (progress.phase !== 'shred-deferred' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      progress = await exportProgress(handle);
    }
    expect(progress).toMatchObject({ jobId, phase: 'shred-deferred', deferredBy: hold.incidentId });
    // Past its retention, but held: key and files are still there, and stay there while the hold stands.
    await new Promise((r) => setTimeout(r, 2_500));
    const row = async () =>
      (await harness.pool.query<{ status: string }>('SELECT status FROM export_jobs WHERE id = $1', [jobId])).rows[0];
    expect(await row()).toEqual({ status: 'written' });
    expect(fs.readdirSync(path.join(to, jobId)).sort()).toEqual(['Patient.ndjson.enc', 'manifest.json']);

    await hold.releaseLegalHold();
    const result = (await handle.result()) as ExportResult;
    expect(result).toMatchObject({ jobId, filesRemoved: 2 });
    expect(await row()).toEqual({ status: 'shredded' });
    expect(fs.existsSync(path.join(to, jobId))).toBe(false);
  });

  it('status shows a job and its progress; shred ends the retention early; schedule makes a Temporal Schedule', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient']);
    const to = tmp('status');
    // Without --retain-days, the tenant's exports rule says how long the job lives.
    const rule = await ehrctl(['retention', 'set', '--tenant', tenantId, '--class', 'exports', '--days', '12']);
    expect(rule.code, rule.stderr).toBe(0);
    // Nothing was updated since a far-future instant: the stored type is exported, with no records.
    const since = '2999-01-01T00:00:00Z';
    const run = await ehrctl([
      'export',
      'run',
      '--tenant',
      tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--since',
      since,
      '--wait',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^ {2}Patient: 0 records/m);
    const job = jobOf(run);
    const status = await ehrctl(['export', 'status', job]);
    expect(status.code, status.stderr).toBe(0);
    const shown = JSON.parse(status.stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({
      id: job,
      tenantId,
      status: 'written',
      keyDestroyed: false,
      since: '2999-01-01T00:00:00.000Z',
    });
    expect(shown.progress).toMatchObject({ jobId: job, phase: 'retained', types: [{ resourceType: 'Patient' }] });
    const retained = Date.parse(String(shown.retainUntil)) - Date.now();
    expect(retained).toBeGreaterThan(11 * 86_400_000);
    expect(retained).toBeLessThanOrEqual(12 * 86_400_000);

    const shred = await ehrctl(['export', 'shred', job]);
    expect(shred.code, shred.stderr).toBe(0);
    const deadline = Date.now() + 30_000;
    const statusOf = async () =>
      (await harness.pool.query<{ status: string }>('SELECT status FROM export_jobs WHERE id = $1', [job])).rows[0]
        ?.status;
    // The key goes first (its transaction), the files right after it.
    const shredded = async () => (await statusOf()) === 'shredded' && !fs.existsSync(path.join(to, job));
    while (!(await shredded()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
    expect(await statusOf()).toBe('shredded');
    expect(fs.existsSync(path.join(to, job))).toBe(false);

    const badAt = await ehrctl([
      'export',
      'schedule',
      '--tenant',
      tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--at',
      '25:00',
      '--timezone',
      'UTC',
    ]);
    expect(badAt.code).toBe(2);
    const scheduled = await ehrctl([
      'export',
      'schedule',
      '--tenant',
      tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--at',
      '02:30',
      '--timezone',
      'America/Chicago',
      '--retain-days',
      '3',
    ]);
    expect(scheduled.code, scheduled.stderr).toBe(0);
    const handle = harness.temporal.client.schedule.getHandle(`export/${tenantId}/clinical-sync`);
    try {
      const d = await handle.describe();
      expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'batchExport' });
      expect(d.policies.overlap).toBe('ALLOW_ALL');
      expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 30 }] });
      const [input] = (d.action as { args?: unknown[] }).args ?? [];
      expect(input).toMatchObject({ tenantId, purpose: 'clinical-sync', retainSeconds: 3 * 86_400 });
    } finally {
      await handle.delete();
    }
  });

  it('a type that cannot be written fails the export: its key is destroyed and its files removed at once', async () => {
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient', 'Observation']);
    const to = tmp('failed');
    // The first type is written; the second fails for good (as a database that stays down would).
    activityFaults.failAfter.set('writeExportFile', 1);
    const run = await ehrctl([
      'export',
      'run',
      '--tenant',
      tenantId,
      '--purpose',
      'clinical-sync',
      '--to',
      to,
      '--wait',
    ]);
    expect(activityFaults.failAfter.has('writeExportFile')).toBe(false);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/failed — TEST_INJECTED_FAULT/);
    const job = jobOf(run);
    const row = await harness.pool.query<{ status: string; destroyed: boolean }>(
      'SELECT status, wrapped_key IS NULL AS destroyed FROM export_jobs WHERE id = $1',
      [job],
    );
    expect(row.rows).toEqual([{ status: 'failed', destroyed: true }]);
    expect(fs.existsSync(path.join(to, job))).toBe(false);
    const actions = (await auditActions(tenantId, 'export.')).map((a) => `${a.action}:${a.outcome}`);
    expect(actions).toEqual([
      'export.started:success',
      'export.file_written:success',
      'export.failed:failure',
      'export.key.destroyed:success',
      'export.files_removed:success',
    ]);
  });
});
