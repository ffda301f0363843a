/**
 * KEK backends without a database: LocalKekProvider's managed-version operations (wrapWith,
 * createVersion, adoptVersion, destroyVersion), the KMS encryption context, and createKekProvider's
 * configuration errors.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecryptionError, InvalidArgumentError } from '../../lib/errors/index.js';
import { AwsKmsKekProvider, kmsEncryptionContext } from '../../lib/keys/aws-kms-kek.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { LocalKekProvider, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import { settledError, useTempDirPerTest } from '../helpers.js';

const tmp = useTempDirPerTest('kek-backend-');

describe('LocalKekProvider as a managed backend', () => {
  it('creates, adopts, wraps with an explicit version, and destroys (overwrite + delete) a version', async () => {
    await ensureLocalKekDir(tmp());
    const a = await LocalKekProvider.load(tmp());
    expect(await a.initialVersions()).toEqual([{ version: 1, ref: 'kek-v1.key' }]);
    expect(await a.createVersion(2)).toEqual({ ref: 'kek-v2.key' });
    expect((await fs.stat(path.join(tmp(), 'kek-v2.key'))).mode & 0o777).toBe(0o600);
    const dek = randomBytes(32);
    const aad = Buffer.from('aad');
    const w1 = await a.wrapWith(1, dek, aad);
    const w2 = await a.wrapWith(2, dek, aad);
    expect([w1.kekVersion, w2.kekVersion]).toEqual([1, 2]);
    expect(await settledError(a.wrapWith(3, dek, aad))).toBeInstanceOf(InvalidArgumentError);

    // Another process learns v2 from metadata.
    const b = await LocalKekProvider.load(tmp());
    expect(b.hasVersion(2)).toBe(true);
    const c = await LocalKekProvider.load(tmp());
    await a.createVersion(3);
    expect(c.hasVersion(3)).toBe(false);
    await c.adoptVersion(3, 'kek-v3.key');
    expect((await c.unwrap(await a.wrapWith(3, dek, aad), aad)).equals(dek)).toBe(true);
    expect(await settledError(c.adoptVersion(4, 'kek-v3.key'))).toBeInstanceOf(ConfigError);

    // Destroy: the file is gone, the in-memory copy too; idempotent.
    await a.destroyVersion(1);
    expect((await fs.readdir(tmp())).sort()).toEqual(['kek-v2.key', 'kek-v3.key']);
    expect(a.hasVersion(1)).toBe(false);
    expect(await settledError(a.unwrap(w1, aad))).toBeInstanceOf(DecryptionError);
    await a.destroyVersion(1);
    expect((await a.unwrap(w2, aad)).equals(dek)).toBe(true);
  });

  it('adopts a key file left by a rotation whose metadata never committed', async () => {
    await ensureLocalKekDir(tmp());
    const a = await LocalKekProvider.load(tmp());
    await a.createVersion(2);
    const b = await LocalKekProvider.load(path.join(tmp()));
    expect(await b.createVersion(2)).toEqual({ ref: 'kek-v2.key' });
    const dek = randomBytes(32);
    expect((await b.unwrap(await a.wrapWith(2, dek, Buffer.alloc(0)), Buffer.alloc(0))).equals(dek)).toBe(true);
  });
});

describe('kmsEncryptionContext', () => {
  it('binds the exact AAD bytes and the KEK version, and exposes simple AAD fields', () => {
    const aad = Buffer.from(
      JSON.stringify({ purpose: 'ehr-connectors/dek/v1', tenantId: 't-1', keyVersion: 3, nested: { x: 1 } }),
    );
    const c = kmsEncryptionContext(2, aad);
    expect(c).toMatchObject({
      'ehr:purpose': 'ehr-connectors/dek/v1',
      'ehr:tenantId': 't-1',
      'ehr:keyVersion': '3',
      'ehr:kek-version': '2',
    });
    expect(c).not.toHaveProperty('ehr:nested');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (x, y) => {
        const same = Buffer.from(x).equals(Buffer.from(y));
        const cx = kmsEncryptionContext(1, Buffer.from(x));
        const cy = kmsEncryptionContext(1, Buffer.from(y));
        expect(cx['ehr:aad-sha256'] === cy['ehr:aad-sha256']).toBe(same);
      }),
    );
    expect(kmsEncryptionContext(1, aad)['ehr:aad-sha256']).not.toBe(
      kmsEncryptionContext(1, Buffer.concat([aad, Buffer.from(' ')]))['ehr:aad-sha256'],
    );
  });
});

describe('createKekProvider', () => {
  const base = {
    EHR_KEK_DIR: '/nonexistent',
    EHR_AWS_KMS_KEY_ID: undefined,
    EHR_AWS_REGION: undefined,
    EHR_AWS_KMS_ENDPOINT: undefined,
  };

  it('local: loads EHR_KEK_DIR, and names it when it is missing', async () => {
    await ensureLocalKekDir(tmp());
    expect(await createKekProvider({ ...base, EHR_KEK_PROVIDER: 'local', EHR_KEK_DIR: tmp() })).toBeInstanceOf(
      LocalKekProvider,
    );
    const err = await settledError(
      createKekProvider({ ...base, EHR_KEK_PROVIDER: 'local', EHR_KEK_DIR: path.join(tmp(), 'missing') }),
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('EHR_KEK_DIR');
  });

  it('aws-kms: names EHR_AWS_KMS_KEY_ID, then EHR_AWS_REGION, when missing', async () => {
    const noKey = await settledError(
      createKekProvider({ ...base, EHR_KEK_PROVIDER: 'aws-kms', EHR_AWS_REGION: 'us-east-1' }),
    );
    expect(noKey).toBeInstanceOf(ConfigError);
    expect((noKey as ConfigError).field).toBe('EHR_AWS_KMS_KEY_ID');
    expect((noKey as Error).message).toContain('EHR_KEK_PROVIDER=aws-kms');
    const noRegion = await settledError(
      createKekProvider({ ...base, EHR_KEK_PROVIDER: 'aws-kms', EHR_AWS_KMS_KEY_ID: 'alias/ehr' }),
    );
    expect((noRegion as ConfigError).field).toBe('EHR_AWS_REGION');
    const ok = await createKekProvider({
      ...base,
      EHR_KEK_PROVIDER: 'aws-kms',
      EHR_AWS_KMS_KEY_ID: 'alias/ehr',
      EHR_AWS_REGION: 'us-east-1',
    });
    expect(ok).toBeInstanceOf(AwsKmsKekProvider);
    expect(JSON.parse(JSON.stringify(ok))).toEqual({ id: 'aws-kms', versions: [1] });
  });
});
