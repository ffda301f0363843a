/**
 * Encryption of every Temporal payload (DESIGN §4 invariant 2): a PayloadCodec used by the worker,
 * the CLI's client, the tests and the codec server. AES-256-GCM with the payload-purpose key from the
 * key hierarchy (PayloadKeySource): encode uses the primary key, decode uses whatever key id the
 * payload names, so a rotation (new primary) keeps every older history readable.
 *
 * Wire form of an encrypted payload:
 *   metadata  encoding = binary/encrypted, encryption-key-id = <keyId>, encryption-cipher = AES-256-GCM
 *   data      0x01 | iv (12) | ciphertext | tag (16)
 * The plaintext is the whole original Payload (protobuf), so its metadata — the original encoding,
 * message type, … — is encrypted and authenticated too. The AAD binds the format, the outer encoding
 * and the key id: a payload relabelled with another key id, or edited anywhere, fails to decode.
 *
 * Payloads that are not `binary/encrypted` decode unchanged (histories recorded before the codec
 * still replay). Errors name key ids and reasons only, never payload content.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { DecryptionError } from '../errors/index.js';
import type { PayloadKey, PayloadKeySource } from '../keys/purpose-keys.js';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
export const PAYLOAD_CIPHER = 'AES-256-GCM';
const FORMAT_V1 = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_PREFIX = 'ehr-connectors/payload-codec/v1';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

export function isEncryptedPayload(payload: Payload): boolean {
  const encoding = payload.metadata?.encoding;
  return encoding !== undefined && encoding !== null && Buffer.from(encoding).toString('utf8') === ENCRYPTED_ENCODING;
}

/** The key id an encrypted payload names, or undefined for a plain payload. */
export function payloadKeyId(payload: Payload): string | undefined {
  const raw = payload.metadata?.[KEY_ID_METADATA];
  return isEncryptedPayload(payload) && raw ? Buffer.from(raw).toString('utf8') : undefined;
}

export function payloadAad(keyId: string): Buffer {
  return Buffer.concat([utf8(AAD_PREFIX), Buffer.from([0]), utf8(ENCRYPTED_ENCODING), Buffer.from([0]), utf8(keyId)]);
}

export interface PayloadCodecOptions {
  /**
   * How long a looked-up key (primary or by id) is reused before asking the key source again;
   * bounds how long a rotation takes to reach encoders. Default 30 s; 0 disables caching.
   */
  cacheTtlMs?: number;
}

interface Cached {
  at: number;
  key: Promise<PayloadKey>;
}

export class EncryptionPayloadCodec implements PayloadCodec {
  private primaryCache?: Cached;
  private readonly byIdCache = new Map<string, Cached>();
  private readonly ttlMs: number;

  constructor(
    private readonly keys: PayloadKeySource,
    options: PayloadCodecOptions = {},
  ) {
    this.ttlMs = options.cacheTtlMs ?? 30_000;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    if (payloads.length === 0) return [];
    const key = await this.primaryKey();
    return payloads.map((p) => (isEncryptedPayload(p) ? p : encryptPayload(key, p)));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (p) => {
        if (!isEncryptedPayload(p)) return p;
        const keyId = payloadKeyId(p);
        if (!keyId) throw new DecryptionError(`an encrypted payload has no ${KEY_ID_METADATA} metadata`);
        return decryptPayload(await this.keyById(keyId), p);
      }),
    );
  }

  /** Forget cached keys (after a rotation, in tests). */
  clearCache(): void {
    this.primaryCache = undefined;
    this.byIdCache.clear();
  }

  private fresh(c: Cached | undefined): c is Cached {
    return c !== undefined && this.ttlMs > 0 && Date.now() - c.at < this.ttlMs;
  }

  private primaryKey(): Promise<PayloadKey> {
    if (!this.fresh(this.primaryCache)) {
      const key = this.keys.primary().then(checkKey);
      this.primaryCache = { at: Date.now(), key };
      key.catch(() => (this.primaryCache = undefined));
    }
    return this.primaryCache!.key;
  }

  private keyById(keyId: string): Promise<PayloadKey> {
    let cached = this.byIdCache.get(keyId);
    if (!this.fresh(cached)) {
      const key = this.keys.byId(keyId).then(checkKey, (err: unknown) => {
        throw err instanceof DecryptionError
          ? err
          : new DecryptionError(`payload key ${JSON.stringify(keyId)} is not available`);
      });
      cached = { at: Date.now(), key };
      this.byIdCache.set(keyId, cached);
      key.catch(() => this.byIdCache.delete(keyId));
    }
    return cached!.key;
  }
}

export function createPayloadCodec(keys: PayloadKeySource, options?: PayloadCodecOptions): EncryptionPayloadCodec {
  return new EncryptionPayloadCodec(keys, options);
}

function checkKey(key: PayloadKey): PayloadKey {
  if (!Buffer.isBuffer(key.key) || key.key.length !== 32) {
    throw new DecryptionError(`payload key ${JSON.stringify(key.keyId)} is not a 32-byte AES-256 key`);
  }
  return key;
}

export function encryptPayload(key: PayloadKey, payload: Payload): Payload {
  const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(payloadAad(key.keyId));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    metadata: {
      encoding: utf8(ENCRYPTED_ENCODING),
      [KEY_ID_METADATA]: utf8(key.keyId),
      [CIPHER_METADATA]: utf8(PAYLOAD_CIPHER),
    },
    data: Buffer.concat([Buffer.from([FORMAT_V1]), iv, body, cipher.getAuthTag()]),
  };
}

export function decryptPayload(key: PayloadKey, payload: Payload): Payload {
  const keyId = payloadKeyId(payload);
  if (keyId !== key.keyId)
    throw new DecryptionError(`payload names key ${JSON.stringify(keyId ?? '')}, not ${JSON.stringify(key.keyId)}`);
  const data = payload.data ? Buffer.from(payload.data) : Buffer.alloc(0);
  if (data.length < 1 + IV_BYTES + TAG_BYTES || data[0] !== FORMAT_V1) {
    throw new DecryptionError(`encrypted payload (key ${JSON.stringify(keyId)}) is truncated or has an unknown format`);
  }
  const iv = data.subarray(1, 1 + IV_BYTES);
  const tag = data.subarray(data.length - TAG_BYTES);
  const body = data.subarray(1 + IV_BYTES, data.length - TAG_BYTES);
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(payloadAad(keyId));
    decipher.setAuthTag(tag);
    plaintext = Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new DecryptionError(`encrypted payload (key ${JSON.stringify(keyId)}) failed authentication`);
  }
  try {
    return temporal.api.common.v1.Payload.decode(plaintext);
  } catch {
    throw new DecryptionError(`encrypted payload (key ${JSON.stringify(keyId)}) does not hold a Payload`);
  }
}

function isPayloadLike(value: unknown): value is Payload {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return false;
  const metadata = (value as { metadata?: unknown }).metadata;
  return (
    metadata !== null &&
    typeof metadata === 'object' &&
    (metadata as Record<string, unknown>).encoding instanceof Uint8Array
  );
}

/**
 * Finds every Payload inside a history (or any proto object: inputs, results, signals, failures'
 * details, headers, memos), hands them to `convert` in one batch, and puts the results back in place.
 * `convert` is a local codec's decode, or a call to the codec server.
 */
export async function convertPayloadsIn<T>(root: T, convert: (payloads: Payload[]) => Promise<Payload[]>): Promise<T> {
  const slots: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number; payload: Payload }> = [];
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return;
    const entries: Array<[string | number, unknown]> = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value);
    for (const [key, child] of entries) {
      if (isPayloadLike(child)) slots.push({ parent: value as Record<string, unknown>, key, payload: child });
      else visit(child);
    }
  };
  visit(root);
  if (slots.length === 0) return root;
  const converted = await convert(slots.map((s) => s.payload));
  if (converted.length !== slots.length)
    throw new DecryptionError(`expected ${slots.length} payloads back, got ${converted.length}`);
  slots.forEach((s, i) => ((s.parent as Record<string | number, unknown>)[s.key] = converted[i]));
  return root;
}
