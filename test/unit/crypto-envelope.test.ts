import { createCipheriv, randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecryptionError, PolicyViolationError } from '../../lib/errors/index.js';
import {
  canonicalRecordContext,
  decryptRecord,
  encryptRecord,
  envelopeHeader,
  parseCiphertextHeader,
  tenantKeyId,
} from '../../lib/crypto/envelope.js';
import type { DataKey, RecordContext } from '../../lib/crypto/envelope.js';

const idArb = fc.string({ minLength: 1, maxLength: 40 });
const ctxArb: fc.Arbitrary<RecordContext> = fc.record({
  tenantId: idArb,
  integrationId: idArb,
  resourceType: idArb,
  resourceId: idArb,
});
const versionArb = fc.integer({ min: 1, max: 0xffffffff });
const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
const plaintextArb = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));

const FIXED_REASONS = [
  'ciphertext key id does not belong to this tenant',
  'authentication failed: ciphertext, header or record context does not match',
];

function lookupFor(...keys: DataKey[]) {
  return (tenantId: string, version: number): DataKey => {
    const k = keys.find((d) => d.tenantId === tenantId && d.version === version);
    if (!k) throw new DecryptionError('no such key');
    return k;
  };
}

async function expectDecryptionError(p: Promise<unknown>): Promise<DecryptionError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DecryptionError);
  return err as DecryptionError;
}

describe('envelope encryption', () => {
  it('round-trips any plaintext for any record context and key version', async () => {
    await fc.assert(
      fc.asyncProperty(ctxArb, versionArb, keyArb, plaintextArb, async (ctx, version, key, plaintext) => {
        const dek: DataKey = { tenantId: ctx.tenantId, version, key };
        const ct = encryptRecord(dek, ctx, plaintext);
        expect(parseCiphertextHeader(ct)).toEqual({
          formatVersion: 1,
          keyId: tenantKeyId(ctx.tenantId),
          keyVersion: version,
        });
        expect((await decryptRecord(ct, ctx, lookupFor(dek))).equals(plaintext)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('binds the record context as RFC 8785 JSON: the same AAD bytes as canonicalize, any unicode', () => {
    const anyText = fc.string({ minLength: 1, maxLength: 40, unit: 'binary' });
    fc.assert(
      fc.property(
        fc.record({ tenantId: anyText, integrationId: anyText, resourceType: anyText, resourceId: anyText }),
        versionArb,
        (ctx, keyVersion) => {
          expect(canonicalRecordContext(ctx, keyVersion)).toBe(canonicalize({ ...ctx, keyVersion }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decrypts a record sealed with the canonicalize()-built AAD (records stored before keep opening)', async () => {
    const ctx = { tenantId: 't-ü', integrationId: 'i"1', resourceType: 'Observation', resourceId: 'obs-\u2028' };
    const dek = { tenantId: ctx.tenantId, version: 7, key: randomBytes(32) };
    const header = envelopeHeader(ctx.tenantId, dek.version);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dek.key, iv, { authTagLength: 16 });
    cipher.setAAD(Buffer.concat([header, Buffer.from(canonicalize({ ...ctx, keyVersion: 7 })!, 'utf8')]));
    const plaintext = Buffer.from('{"resourceType":"Observation"}');
    const sealed = Buffer.concat([header, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect((await decryptRecord(sealed, ctx, lookupFor(dek))).equals(plaintext)).toBe(true);
  });

  it('never repeats an IV across many records (IVs are drawn from the CSPRNG in blocks)', () => {
    const ctx = { tenantId: 't1', integrationId: 'i1', resourceType: 'Patient', resourceId: 'p1' };
    const dek = { tenantId: 't1', version: 1, key: randomBytes(32) };
    const ivStart = envelopeHeader('t1', 1).length;
    const ivs = new Set<string>();
    for (let i = 0; i < 10_000; i++)
      ivs.add(
        encryptRecord(dek, ctx, Buffer.from('x'))
          .subarray(ivStart, ivStart + 12)
          .toString('hex'),
      );
    expect(ivs.size).toBe(10_000);
  });

  it('uses a fresh IV: the same plaintext encrypts differently each time', () => {
    const ctx = { tenantId: 't1', integrationId: 'i1', resourceType: 'Patient', resourceId: 'p1' };
    const dek = { tenantId: 't1', version: 1, key: randomBytes(32) };
    const a = encryptRecord(dek, ctx, Buffer.from('same'));
    const b = encryptRecord(dek, ctx, Buffer.from('same'));
    expect(a.equals(b)).toBe(false);
  });

  it('fails when any AAD field is swapped (other row id, type, integration or tenant)', async () => {
    const fieldArb = fc.constantFrom<keyof RecordContext>('tenantId', 'integrationId', 'resourceType', 'resourceId');
    await fc.assert(
      fc.asyncProperty(ctxArb, fieldArb, idArb, keyArb, async (ctx, field, other, key) => {
        fc.pre(ctx[field] !== other);
        const dek: DataKey = { tenantId: ctx.tenantId, version: 3, key };
        const ct = encryptRecord(dek, ctx, Buffer.from('clinical content'));
        const moved = { ...ctx, [field]: other };
        // Even a lookup that would hand out the right key bytes for the other tenant must not help.
        const lookup = (tenantId: string, version: number): DataKey => ({ tenantId, version, key });
        const err = await expectDecryptionError(decryptRecord(ct, moved, lookup));
        // The reason is one of a fixed set: it carries no ids and no bytes.
        expect(FIXED_REASONS).toContain(err.reason);
      }),
      { numRuns: 200 },
    );
  });

  it('fails when any single byte (header, IV, ciphertext or tag) is flipped', async () => {
    const ctx = { tenantId: 'tenant-a', integrationId: 'int-1', resourceType: 'Observation', resourceId: 'obs-9' };
    const dek = { tenantId: 'tenant-a', version: 2, key: randomBytes(32) };
    const ct = encryptRecord(dek, ctx, Buffer.from('{"resourceType":"Observation","valueQuantity":{"value":7.2}}'));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: ct.length - 1 }), fc.integer({ min: 1, max: 255 }), async (index, mask) => {
        const tampered = Buffer.from(ct);
        tampered[index] = tampered[index]! ^ mask;
        await expectDecryptionError(decryptRecord(tampered, ctx, lookupFor(dek)));
      }),
      { numRuns: 400 },
    );
  });

  it('fails on truncated or extended ciphertext', async () => {
    const ctx = { tenantId: 't', integrationId: 'i', resourceType: 'Patient', resourceId: 'p' };
    const dek = { tenantId: 't', version: 1, key: randomBytes(32) };
    const ct = encryptRecord(dek, ctx, Buffer.from('hello'));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: ct.length - 1 }), async (len) => {
        await expectDecryptionError(decryptRecord(ct.subarray(0, len), ctx, lookupFor(dek)));
      }),
    );
    await expectDecryptionError(decryptRecord(Buffer.concat([ct, Buffer.from([0])]), ctx, lookupFor(dek)));
  });

  it('binds the key version: header version must match the key the lookup returns', async () => {
    const ctx = { tenantId: 't', integrationId: 'i', resourceType: 'Patient', resourceId: 'p' };
    const v1 = { tenantId: 't', version: 1, key: randomBytes(32) };
    const v2 = { tenantId: 't', version: 2, key: randomBytes(32) };
    const ct = encryptRecord(v1, ctx, Buffer.from('x'));
    // The lookup is asked for the version named in the header.
    const asked: number[] = [];
    await decryptRecord(ct, ctx, (tenantId, version) => {
      asked.push(version);
      return lookupFor(v1, v2)(tenantId, version);
    });
    expect(asked).toEqual([1]);
    // A lookup that answers with another version is refused.
    await expectDecryptionError(decryptRecord(ct, ctx, () => v2));
    // A lookup that answers with the right version number but other key bytes fails authentication.
    await expectDecryptionError(decryptRecord(ct, ctx, () => ({ ...v1, key: v2.key })));
    // Rewriting the header's version to 2 (a key that exists) fails: the header is authenticated.
    const rewritten = Buffer.from(ct);
    const { keyId } = parseCiphertextHeader(ct);
    rewritten.writeUInt32BE(2, 3 + Buffer.byteLength(keyId));
    expect(parseCiphertextHeader(rewritten).keyVersion).toBe(2);
    await expectDecryptionError(decryptRecord(rewritten, ctx, lookupFor(v1, v2)));
  });

  it('refuses a key id for another tenant before asking for a key', async () => {
    const ctx = { tenantId: 'a', integrationId: 'i', resourceType: 'Patient', resourceId: 'p' };
    const dek = { tenantId: 'a', version: 1, key: randomBytes(32) };
    const ct = encryptRecord(dek, ctx, Buffer.from('x'));
    let asked = false;
    await expectDecryptionError(
      decryptRecord(ct, { ...ctx, tenantId: 'b' }, () => {
        asked = true;
        return { ...dek, tenantId: 'b' };
      }),
    );
    expect(asked).toBe(false);
  });

  it('refuses to encrypt a tenant record with another tenant key', () => {
    const ctx = { tenantId: 'a', integrationId: 'i', resourceType: 'Patient', resourceId: 'p' };
    expect(() => encryptRecord({ tenantId: 'b', version: 1, key: randomBytes(32) }, ctx, Buffer.from('x'))).toThrow(
      PolicyViolationError,
    );
  });

  it('rejects unknown format versions and garbage headers', async () => {
    const ctx = { tenantId: 't', integrationId: 'i', resourceType: 'Patient', resourceId: 'p' };
    const dek = { tenantId: 't', version: 1, key: randomBytes(32) };
    const ct = encryptRecord(dek, ctx, Buffer.from('x'));
    const v2 = Buffer.from(ct);
    v2[0] = 0x02;
    expect(() => parseCiphertextHeader(v2)).toThrow(DecryptionError);
    expect(() => parseCiphertextHeader(Buffer.alloc(0))).toThrow(DecryptionError);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
        await expectDecryptionError(decryptRecord(Buffer.from(bytes), ctx, lookupFor(dek)));
      }),
    );
  });
});
