import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { DecryptionError } from '../../lib/errors/index.js';
import {
  CIPHER_METADATA,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  createPayloadCodec,
  isEncryptedPayload,
} from '../../lib/crypto/payload-codec.js';
import type { PayloadKey, PayloadKeySource } from '../../lib/keys/purpose-keys.js';
import { settledError } from '../helpers.js';

/** An in-memory key source: versions payload-v1…vN, the newest is primary. */
class MemoryPayloadKeys implements PayloadKeySource {
  readonly keys: PayloadKey[] = [];
  constructor() {
    this.rotate();
  }
  rotate(): PayloadKey {
    const version = this.keys.length + 1;
    const k = { keyId: `payload-v${version}`, version, key: randomBytes(32) };
    this.keys.push(k);
    return k;
  }
  async primary(): Promise<PayloadKey> {
    return this.keys[this.keys.length - 1]!;
  }
  async byId(keyId: string): Promise<PayloadKey> {
    const k = this.keys.find((x) => x.keyId === keyId);
    if (!k) throw new DecryptionError(`payload key ${JSON.stringify(keyId)} is unknown`);
    return k;
  }
}

const text = (u: Uint8Array | null | undefined) => Buffer.from(u ?? new Uint8Array()).toString('utf8');
const payloadArb: fc.Arbitrary<Payload> = fc
  .oneof(fc.jsonValue(), fc.string(), fc.uint8Array({ maxLength: 300 }))
  .map((v) => defaultPayloadConverter.toPayload(v ?? null));

describe('payload codec', () => {
  it('round-trips any payload and hides its content', async () => {
    const codec = createPayloadCodec(new MemoryPayloadKeys(), { cacheTtlMs: 0 });
    await fc.assert(
      fc.asyncProperty(fc.array(payloadArb, { maxLength: 5 }), async (payloads) => {
        const encoded = await codec.encode(payloads);
        expect(encoded).toHaveLength(payloads.length);
        for (const [i, e] of encoded.entries()) {
          expect(text(e.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
          expect(text(e.metadata?.[KEY_ID_METADATA])).toBe('payload-v1');
          expect(text(e.metadata?.[CIPHER_METADATA])).toBe('AES-256-GCM');
          expect(Object.keys(e.metadata ?? {}).sort()).toEqual(['encoding', CIPHER_METADATA, KEY_ID_METADATA].sort());
          const data = payloads[i]!.data;
          if (data && data.length >= 8) expect(Buffer.from(e.data!).includes(Buffer.from(data))).toBe(false);
        }
        const decoded = await codec.decode(encoded);
        expect(decoded.map((d) => defaultPayloadConverter.fromPayload(d))).toEqual(
          payloads.map((p) => defaultPayloadConverter.fromPayload(p)),
        );
        for (const [i, d] of decoded.entries())
          expect(text(d.metadata?.encoding)).toBe(text(payloads[i]!.metadata?.encoding));
      }),
      { numRuns: 200 },
    );
  });

  it('passes plain (unencrypted) payloads through decode, so old histories still replay', async () => {
    const codec = createPayloadCodec(new MemoryPayloadKeys());
    const plain = defaultPayloadConverter.toPayload({ tenantId: 't-1' });
    const [decoded] = await codec.decode([plain]);
    expect(decoded).toBe(plain);
    // and never encrypts twice
    const [once] = await codec.encode([plain]);
    const [twice] = await codec.encode([once!]);
    expect(twice).toBe(once);
  });

  it('fails on any flipped bit of the data', async () => {
    const codec = createPayloadCodec(new MemoryPayloadKeys(), { cacheTtlMs: 0 });
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), fc.integer({ min: 0, max: 7 }), async (payload, pos, bit) => {
        const [enc] = await codec.encode([payload]);
        const data = Buffer.from(enc!.data!);
        data[pos % data.length]! ^= 1 << bit;
        const err = await settledError(codec.decode([{ ...enc, data }]));
        expect(err).toBeInstanceOf(DecryptionError);
      }),
      { numRuns: 300 },
    );
  });

  it('fails when the key id is swapped to another (existing) key, and on truncation', async () => {
    const keys = new MemoryPayloadKeys();
    const codec = createPayloadCodec(keys, { cacheTtlMs: 0 });
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload({ tenantId: 't-1' })]);
    keys.rotate();
    // Same key bytes under another id must still fail: the AAD binds the id.
    keys.keys.push({ keyId: 'payload-clone', version: 99, key: keys.keys[0]!.key });
    for (const other of ['payload-v2', 'payload-clone']) {
      const swapped = { ...enc, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from(other) } };
      expect(await settledError(codec.decode([swapped]))).toBeInstanceOf(DecryptionError);
    }
    const truncated = { ...enc, data: Buffer.from(enc!.data!).subarray(0, 20) };
    expect(await settledError(codec.decode([truncated]))).toBeInstanceOf(DecryptionError);
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 30 }), async (other) => {
        fc.pre(other !== 'payload-v1');
        const swapped = { ...enc, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from(other) } };
        expect(await settledError(codec.decode([swapped]))).toBeInstanceOf(DecryptionError);
      }),
      { numRuns: 100 },
    );
  });

  it('an unknown key id gives a clear error that carries no payload data', async () => {
    const codec = createPayloadCodec(new MemoryPayloadKeys());
    const other = createPayloadCodec(
      {
        primary: async () => ({ keyId: 'elsewhere-v7', version: 7, key: randomBytes(32) }),
        byId: async () => {
          throw new Error('boom');
        },
      },
      { cacheTtlMs: 0 },
    );
    const secret = 'Synthetic Patient Name 12345';
    const [enc] = await other.encode([defaultPayloadConverter.toPayload({ name: secret })]);
    const err = (await settledError(codec.decode([enc!]))) as Error;
    expect(err).toBeInstanceOf(DecryptionError);
    expect(err.message).toContain('elsewhere-v7');
    expect(err.message).not.toContain(secret);
    const missing = { ...enc, metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING) } };
    expect(((await settledError(codec.decode([missing]))) as Error).message).toContain(KEY_ID_METADATA);
  });

  it('keeps payloads from before a rotation decodable and encrypts new ones with the new primary', async () => {
    const keys = new MemoryPayloadKeys();
    const codec = createPayloadCodec(keys);
    const [old] = await codec.encode([defaultPayloadConverter.toPayload('before')]);
    keys.rotate();
    codec.clearCache();
    const [fresh] = await codec.encode([defaultPayloadConverter.toPayload('after')]);
    expect(text(old!.metadata?.[KEY_ID_METADATA])).toBe('payload-v1');
    expect(text(fresh!.metadata?.[KEY_ID_METADATA])).toBe('payload-v2');
    const decoded = await codec.decode([old!, fresh!]);
    expect(decoded.map((d) => defaultPayloadConverter.fromPayload(d))).toEqual(['before', 'after']);
    expect(isEncryptedPayload(old!)).toBe(true);
  });

  it('refuses a key source that hands out a key of the wrong length', async () => {
    const codec = createPayloadCodec({
      primary: async () => ({ keyId: 'short', version: 1, key: randomBytes(16) }),
      byId: async () => ({ keyId: 'short', version: 1, key: randomBytes(16) }),
    });
    expect(await settledError(codec.encode([defaultPayloadConverter.toPayload(1)]))).toBeInstanceOf(DecryptionError);
  });
});
