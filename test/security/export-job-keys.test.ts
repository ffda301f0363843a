/**
 * Export job keys in the key hierarchy: stored only wrapped by the KEK, bound to their job (a wrapped key
 * copied onto another job does not unwrap), moved by a KEK rotation's rewrap like every other wrapped key
 * (the decryption floor waits for them, and a job written before the rotation stays readable above it), and
 * gone for good once the job is shredded. Real PostgreSQL (one cluster for this file), local KEK files.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DecryptionError, InvalidArgumentError, PolicyViolationError } from '../../lib/errors/index.js';
import { readExportJob } from '../../lib/exports/export-repository.js';
import { unwrapJobKey } from '../../lib/exports/job-key.js';
import { beginExport, endExport } from '../../lib/exports/jobs.js';
import { KeyAdmin } from '../../lib/keys/key-admin.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { LocalKekProvider, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import { useTestCluster } from '../db.js';
import { rejection } from '../helpers.js';

const db = useTestCluster('export-keys-', { tenants: ['tenant-x'] });
let kekDir: string;

const ctx = (op: string) => ({ actor: 'user:export-key-test', correlationId: `corr-${op}-${randomUUID()}` });

async function open() {
  const kek = await KeyHierarchy.open({ pool: db.pool, backend: await LocalKekProvider.load(kekDir), audit: ctx('o') });
  const admin = new KeyAdmin({ pool: db.pool, kek, destroyDelaySeconds: 3600, forget: { tenant: () => undefined } });
  return { kek, admin };
}

async function jobKey(kek: KeyHierarchy, jobId: string): Promise<Buffer> {
  const job = (await readExportJob(db.pool, jobId))!;
  return unwrapJobKey(kek, { tenantId: job.tenantId, jobId, keyId: job.keyId }, job.wrapped);
}

beforeAll(async () => {
  kekDir = path.join(db.tmp, 'kek');
  await ensureLocalKekDir(kekDir);
});

describe('export job keys', () => {
  it('are bound to their job, rewrapped by a KEK rotation before the floor rises, and destroyed by shredding', async () => {
    const { kek, admin } = await open();
    const to = path.join(db.tmp, 'exports');
    await fs.mkdir(to, { recursive: true });
    const begin = (jobId: string) =>
      beginExport(
        { pool: db.pool, kek },
        {
          jobId,
          tenantId: 'tenant-x',
          workflowId: `export/tenant-x/${jobId}`,
          purpose: 'clinical-sync',
          since: null,
          to,
        },
        ctx('begin'),
      );
    await begin('job-a');
    await begin('job-b');
    const before = await jobKey(kek, 'job-a');
    expect(before).toHaveLength(32);
    expect(before.equals(await jobKey(kek, 'job-b'))).toBe(false);
    const stored = await db.pool.query<{ wrapped_key: Buffer }>(
      `SELECT wrapped_key FROM export_jobs WHERE id = 'job-a'`,
    );
    expect(stored.rows[0]!.wrapped_key.includes(before)).toBe(false);

    // Job a's wrapped key on job b's row: the AAD names the job, so it does not unwrap as b's.
    const b = (await readExportJob(db.pool, 'job-b'))!;
    const a = (await readExportJob(db.pool, 'job-a'))!;
    const swapped = await rejection(
      unwrapJobKey(kek, { tenantId: 'tenant-x', jobId: 'job-b', keyId: b.keyId }, a.wrapped),
    );
    expect(swapped).toBeInstanceOf(DecryptionError);

    const { version } = await admin.rotateKek(ctx('rotate'));
    let moved = 0;
    for (;;) {
      const r = await admin.rewrapDataKeys(1, ctx('rewrap'));
      moved += r.exportJobKeys;
      if (r.remaining === 0) break;
    }
    expect(moved).toBe(2);
    await admin.raiseKekFloor(version, ctx('floor'));
    const after = await open();
    expect((await readExportJob(db.pool, 'job-a'))!.wrapped!.kekVersion).toBe(version);
    expect((await jobKey(after.kek, 'job-a')).equals(before)).toBe(true);
    const rewrapped = await db.pool.query(`SELECT 1 FROM audit_events WHERE action = 'key.export_job.rewrapped'`);
    expect(rewrapped.rowCount).toBe(2);

    expect(await endExport(db.pool, 'job-a', 'retention', ctx('shred'))).toMatchObject({ keyDestroyed: true });
    expect(await rejection(jobKey(after.kek, 'job-a'))).toBeInstanceOf(DecryptionError);
    // Shredding again changes nothing and records nothing more.
    expect(await endExport(db.pool, 'job-a', 'retention', ctx('shred-again'))).toMatchObject({ keyDestroyed: false });
    const destroyed = await db.pool.query(`SELECT 1 FROM audit_events WHERE action = 'export.key.destroyed'`);
    expect(destroyed.rowCount).toBe(1);
  });

  it('refuses unknown types and types outside the purpose before any key is made', async () => {
    const { kek } = await open();
    const begin = (jobId: string, types: string[]) =>
      beginExport(
        { pool: db.pool, kek },
        { jobId, tenantId: 'tenant-x', workflowId: jobId, purpose: 'scheduling-sync', types, since: null, to: db.tmp },
        ctx('begin'),
      );
    expect(await rejection(begin('job-unknown', ['Patient', 'Nope']))).toBeInstanceOf(InvalidArgumentError);
    expect(await rejection(begin('job-outside', ['Patient', 'Observation']))).toBeInstanceOf(PolicyViolationError);
    const rows = await db.pool.query(`SELECT 1 FROM export_jobs WHERE id IN ('job-unknown', 'job-outside')`);
    expect(rows.rowCount).toBe(0);
  });
});
