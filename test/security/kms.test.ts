/**
 * The aws-kms KEK provider against a real KMS-compatible server: moto's server (test/security/moto.ts
 * installs moto[server] into a cached venv on first use), started on a free loopback port for this
 * file. When python3 cannot provide it, the suite is listed as not run at the end of `npm test`, and
 * fails under CI=true (test/suites-not-run.ts); any other failure fails the file.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { CreateKeyCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConfigError, DecryptionError } from '../../lib/errors/index.js';
import { AwsKmsKekProvider, kmsEncryptionContext } from '../../lib/keys/aws-kms-kek.js';
import { decryptRecord, encryptRecord } from '../../lib/crypto/envelope.js';
import type { RecordContext } from '../../lib/crypto/envelope.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import type { KekConfig } from '../../lib/keys/kek-factory.js';
import { KeyAdmin } from '../../lib/keys/key-admin.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { createPurposeKeys } from '../../lib/keys/purpose-key-store.js';
import { freePort, startTestCluster } from '../db.js';
import type { TestCluster } from '../db.js';
import { rejection } from '../helpers.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { ensureMoto, motoRequirement, motoVenvDir } from './moto.js';

const REGION = 'us-east-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

let moto: ChildProcess | undefined;
let endpoint: string;
let kms: KMSClient;
let keyId: string;
let db: TestCluster;

async function startMoto(bin: string): Promise<void> {
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  let output = '';
  moto = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  moto.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  moto.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  let exited: number | null = null;
  moto.once('exit', (code) => (exited = code ?? -1));
  for (;;) {
    if (exited !== null) throw new Error(`moto_server exited with ${exited}: ${output}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - t0 > 60_000) throw new Error(`moto_server did not answer within 60 s: ${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`[kms.test] moto_server ready at ${endpoint} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function kmsConfig(overrides: Partial<KekConfig> = {}): KekConfig {
  return {
    EHR_KEK_PROVIDER: 'aws-kms',
    EHR_KEK_DIR: '/nonexistent',
    EHR_AWS_KMS_KEY_ID: keyId,
    EHR_AWS_REGION: REGION,
    EHR_AWS_KMS_ENDPOINT: endpoint,
    ...overrides,
  };
}

const ctx = (op: string) => ({ actor: 'user:kms-test', correlationId: `corr-${op}-${randomUUID()}` });

describeWhenAvailable(__filename, 'aws-kms KEK provider against moto', [motoRequirement(motoVenvDir())], () => {
  beforeAll(async () => {
    const [bin, started] = await Promise.all([
      ensureMoto((line) => console.log(`[kms.test] ${line}`)),
      startTestCluster('kms-', { tenants: ['tenant-k1', 'tenant-k2'] }),
    ]);
    db = started;
    await startMoto(bin);
    kms = new KMSClient({ region: REGION, endpoint, credentials });
    const created = await kms.send(new CreateKeyCommand({ Description: 'ehr-connectors kms.test KEK v1' }));
    keyId = created.KeyMetadata!.KeyId!;
  }, 900_000);

  afterAll(async () => {
    kms?.destroy();
    if (moto && moto.exitCode === null) {
      const exited = new Promise((r) => moto!.once('exit', r));
      moto.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    await db?.stop();
  }, 60_000);

  it('createKekProvider names the missing field', async () => {
    for (const field of ['EHR_AWS_KMS_KEY_ID', 'EHR_AWS_REGION'] as const) {
      const err = await rejection(createKekProvider(kmsConfig({ [field]: undefined })));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
    }
  });

  it('wraps with KMS Encrypt and unwraps with Decrypt under the same encryption context only', async () => {
    const kek = await createKekProvider(kmsConfig(), { credentials });
    expect(kek).toBeInstanceOf(AwsKmsKekProvider);
    const dek = randomBytes(32);
    const aad = Buffer.from(JSON.stringify({ purpose: 'ehr-connectors/dek/v1', tenantId: 'tenant-k1', keyVersion: 1 }));
    const w = await kek.wrap(dek, aad);
    expect(w).toMatchObject({ kekId: 'aws-kms', kekVersion: 1 });
    expect(w.wrapped.includes(dek)).toBe(false);
    expect((await kek.unwrap(w, aad)).equals(dek)).toBe(true);
    expect(kmsEncryptionContext(1, aad)).toMatchObject({
      'ehr:tenantId': 'tenant-k1',
      'ehr:keyVersion': '1',
      'ehr:kek-version': '1',
    });

    const otherTenant = Buffer.from(
      JSON.stringify({ purpose: 'ehr-connectors/dek/v1', tenantId: 'tenant-k2', keyVersion: 1 }),
    );
    const otherVersion = Buffer.from(
      JSON.stringify({ purpose: 'ehr-connectors/dek/v1', tenantId: 'tenant-k1', keyVersion: 2 }),
    );
    for (const bad of [otherTenant, otherVersion, Buffer.from('not json')]) {
      expect(await rejection(kek.unwrap(w, bad))).toBeInstanceOf(DecryptionError);
    }
    const tampered = Buffer.from(w.wrapped);
    tampered[tampered.length - 1]! ^= 0x01;
    expect(await rejection(kek.unwrap({ ...w, wrapped: tampered }, aad))).toBeInstanceOf(DecryptionError);
    // Another KMS key (a different KEK version's key) cannot decrypt it.
    const other = await kms.send(new CreateKeyCommand({ Description: 'ehr-connectors kms.test other' }));
    const stranger = new AwsKmsKekProvider({ keyId: other.KeyMetadata!.KeyId!, region: REGION, endpoint, credentials });
    expect(await rejection(stranger.unwrap(w, aad))).toBeInstanceOf(DecryptionError);
  });

  it('full round trip through PostgreSQL: keyring + payload keys, KEK rotation with ReEncrypt, floor, destroy', async () => {
    const pool = db.pool;
    const open = async () => {
      const kek = await KeyHierarchy.open({
        pool,
        backend: await createKekProvider(kmsConfig(), { credentials }),
        audit: ctx('open'),
      });
      return {
        kek,
        keyring: new TenantKeyring({ pool, kek }),
        purpose: createPurposeKeys({ pool, kek, audit: ctx('purpose') }),
        admin: new KeyAdmin({ pool, kek, destroyDelaySeconds: 0 }),
      };
    };
    const p1 = await open();
    expect(await p1.kek.versions()).toMatchObject([{ version: 1, state: 'primary', providerRef: keyId }]);
    const stored: Array<{ ctx: RecordContext; ct: Buffer; text: string }> = [];
    for (const tenantId of ['tenant-k1', 'tenant-k2']) {
      const dek = await p1.keyring.primaryDataKey(tenantId, ctx('store'));
      for (let i = 0; i < 5; i++) {
        const rc = { tenantId, integrationId: 'int', resourceType: 'Observation', resourceId: `obs-${i}` };
        const text = `synthetic kms ${tenantId} ${i}`;
        stored.push({ ctx: rc, ct: encryptRecord(dek, rc, Buffer.from(text)), text });
      }
    }
    const payload = await p1.purpose.payload.primary();
    const wrappedRows = await pool.query<{ wrapped_key: Buffer }>('SELECT wrapped_key FROM data_keys');
    expect(wrappedRows.rows).toHaveLength(2);

    const readAll = async (keyring: TenantKeyring) => {
      for (const s of stored) expect((await decryptRecord(s.ct, s.ctx, keyring.lookup)).toString()).toBe(s.text);
    };
    await readAll((await open()).keyring);

    // Rotation creates a new KMS key (CreateKey), rewrap moves every key with ReEncrypt.
    const { version } = await p1.admin.rotateKek(ctx('rotate'));
    expect(version).toBe(2);
    const v2 = (await p1.kek.versions()).find((v) => v.version === 2)!;
    expect(v2.providerRef).not.toBe(keyId);
    const r = await p1.admin.rewrapDataKeys(100, ctx('rewrap'));
    expect(r).toEqual({ dataKeys: 2, purposeKeys: 1, tenantPurposeKeys: 0, exportJobKeys: 0, remaining: 0 });
    await p1.admin.raiseKekFloor(2, ctx('floor'));
    const fresh = await open();
    await readAll(fresh.keyring);
    expect((await fresh.purpose.payload.byId(payload.keyId)).key.equals(payload.key)).toBe(true);

    // Destroying v1 schedules deletion of its KMS key; everything still reads through v2.
    await p1.admin.scheduleKekDestroy(1, ctx('schedule'));
    await p1.admin.destroyKek(1, ctx('destroy'));
    const described = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(described.KeyMetadata?.KeyState).toBe('PendingDeletion');
    const last = await open();
    await readAll(last.keyring);
    // A DEK wrapped under v1 (a backup copy) is refused: below the floor and destroyed.
    expect(
      await rejection(
        last.kek.unwrap(
          { kekId: 'aws-kms', kekVersion: 1, wrapped: wrappedRows.rows[0]!.wrapped_key },
          Buffer.from('{}'),
        ),
      ),
    ).toBeInstanceOf(DecryptionError);
    const audit = await pool.query<{ action: string }>(
      `SELECT DISTINCT action FROM audit_events WHERE action LIKE 'key.%' AND outcome = 'success'`,
    );
    expect(audit.rows.map((a) => a.action)).toEqual(
      expect.arrayContaining([
        'key.kek.created',
        'key.kek.rotated',
        'key.dek.rewrapped',
        'key.kek.floor_raised',
        'key.kek.destroyed',
        'key.dek.unwrapped',
      ]),
    );
  });
});
