/**
 * Record encryption with a tenant's data key (DESIGN §4 invariant 3).
 *
 * Ciphertext layout (format 0x01):
 *   [0]        format version 0x01
 *   [1..2]     key id length (uint16 BE)
 *   [3..]      key id, utf8: `tenant:<tenantId>`
 *   [..+4]     data key version (uint32 BE)
 *   [..+12]    random IV
 *   [..]       AES-256-GCM ciphertext
 *   [last 16]  GCM tag
 *
 * AAD = header bytes (format version, key id, key version) || canonical JSON (RFC 8785) of
 * {tenantId, integrationId, resourceType, resourceId, keyVersion}. So the header is authenticated, and
 * a ciphertext moved to another row, type, integration or tenant fails to decrypt.
 * DecryptionError reasons never carry data (no ids, no bytes).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptionError, EhrError, InvalidArgumentError, PolicyViolationError } from '../errors/index.js';

export const ENVELOPE_FORMAT_V1 = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const MAX_KEY_ID_BYTES = 0xffff;

export interface DataKey {
  tenantId: string;
  version: number;
  key: Buffer;
}

export interface RecordContext {
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
}

export interface CiphertextHeader {
  formatVersion: number;
  keyId: string;
  keyVersion: number;
}

export type DataKeyLookup = (tenantId: string, keyVersion: number) => Promise<DataKey> | DataKey;

/** The key id written into ciphertext for a tenant's data keys. */
export function tenantKeyId(tenantId: string): string {
  return `tenant:${tenantId}`;
}

function assertContext(ctx: RecordContext): void {
  for (const field of ['tenantId', 'integrationId', 'resourceType', 'resourceId'] as const) {
    const value = ctx?.[field];
    if (typeof value !== 'string' || value.length === 0) {
      throw new InvalidArgumentError(`record context ${field}`, 'must be a non-empty string');
    }
  }
}

function isValidVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff;
}

function encodeHeader(keyId: string, keyVersion: number): Buffer {
  const id = Buffer.from(keyId, 'utf8');
  if (id.length > MAX_KEY_ID_BYTES) throw new InvalidArgumentError('tenantId', 'is too long');
  const header = Buffer.alloc(1 + 2 + id.length + 4);
  header.writeUInt8(ENVELOPE_FORMAT_V1, 0);
  header.writeUInt16BE(id.length, 1);
  id.copy(header, 3);
  header.writeUInt32BE(keyVersion, 3 + id.length);
  return header;
}

/**
 * The (unauthenticated) header a tenant's record ciphertext starts with. Stored records must agree with
 * it (the records table checks their key_version against it), so fixtures that store opaque bytes as
 * ciphertext prefix them with this.
 */
export function envelopeHeader(tenantId: string, keyVersion: number): Buffer {
  return encodeHeader(tenantKeyId(tenantId), keyVersion);
}

/**
 * The canonical JSON (RFC 8785) of the record context, written out: its keys in JCS order and its strings and
 * integer through JSON.stringify, which is what JCS prescribes for them — the same bytes as canonicalize() (a
 * unit test holds them equal) without building and sorting an object per record.
 */
export function canonicalRecordContext(ctx: RecordContext, keyVersion: number): string {
  return (
    `{"integrationId":${JSON.stringify(ctx.integrationId)},"keyVersion":${keyVersion},` +
    `"resourceId":${JSON.stringify(ctx.resourceId)},"resourceType":${JSON.stringify(ctx.resourceType)},` +
    `"tenantId":${JSON.stringify(ctx.tenantId)}}`
  );
}

/** keyVersion is an integer in 1..2^32-1 wherever this is called (checked first). */
function buildAad(header: Buffer, ctx: RecordContext, keyVersion: number): Buffer {
  const context = canonicalRecordContext(ctx, keyVersion);
  const aad = Buffer.allocUnsafe(header.length + Buffer.byteLength(context, 'utf8'));
  header.copy(aad, 0);
  aad.write(context, header.length, 'utf8');
  return aad;
}

/** The last header built: a batch encrypts thousands of records under one tenant's one key version. */
let lastHeader: { tenantId: string; keyVersion: number; header: Buffer } | undefined;

function headerFor(tenantId: string, keyVersion: number): Buffer {
  if (lastHeader?.tenantId !== tenantId || lastHeader.keyVersion !== keyVersion)
    lastHeader = { tenantId, keyVersion, header: encodeHeader(tenantKeyId(tenantId), keyVersion) };
  return lastHeader.header;
}

/**
 * IVs come from the CSPRNG a block at a time: one call per IV_BLOCK_RECORDS records rather than one each (the
 * call, not the randomness, was the cost). Each 12-byte slice is used once; a worker thread or child process
 * has its own module state, hence its own block.
 */
const IV_BLOCK_RECORDS = 4096;
let ivBlock = Buffer.alloc(0);
let ivOffset = 0;

function nextIv(): Buffer {
  if (ivOffset + IV_BYTES > ivBlock.length) {
    ivBlock = randomBytes(IV_BYTES * IV_BLOCK_RECORDS);
    ivOffset = 0;
  }
  const iv = ivBlock.subarray(ivOffset, ivOffset + IV_BYTES);
  ivOffset += IV_BYTES;
  return iv;
}

function readHeader(buf: Buffer): CiphertextHeader & { headerLength: number } {
  if (!Buffer.isBuffer(buf) || buf.length < 3) throw new DecryptionError('ciphertext is malformed');
  const formatVersion = buf.readUInt8(0);
  if (formatVersion !== ENVELOPE_FORMAT_V1) throw new DecryptionError('unsupported ciphertext format version');
  const idLength = buf.readUInt16BE(1);
  const headerLength = 3 + idLength + 4;
  if (buf.length < headerLength) throw new DecryptionError('ciphertext is malformed');
  const idBytes = buf.subarray(3, 3 + idLength);
  const keyId = idBytes.toString('utf8');
  if (!Buffer.from(keyId, 'utf8').equals(idBytes)) throw new DecryptionError('ciphertext is malformed');
  const keyVersion = buf.readUInt32BE(3 + idLength);
  return { formatVersion, keyId, keyVersion, headerLength };
}

/** Reads the unauthenticated header (format, key id, key version); authenticity is checked on decrypt. */
export function parseCiphertextHeader(buf: Buffer): CiphertextHeader {
  const { formatVersion, keyId, keyVersion } = readHeader(buf);
  return { formatVersion, keyId, keyVersion };
}

export function encryptRecord(dek: DataKey, ctx: RecordContext, plaintext: Buffer): Buffer {
  assertContext(ctx);
  if (dek.tenantId !== ctx.tenantId) {
    throw new PolicyViolationError('tenant-isolation', 'a data key may only encrypt its own tenant records');
  }
  if (!isValidVersion(dek.version))
    throw new InvalidArgumentError('data key version', 'must be an integer in 1..2^32-1');
  if (!Buffer.isBuffer(dek.key) || dek.key.length !== KEY_BYTES)
    throw new InvalidArgumentError('data key', 'must be 32 bytes');
  if (!Buffer.isBuffer(plaintext)) throw new InvalidArgumentError('plaintext', 'must be a Buffer');

  const header = headerFor(ctx.tenantId, dek.version);
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', dek.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(buildAad(header, ctx, dek.version));
  const body = cipher.update(plaintext);
  const final = cipher.final(); // empty for GCM, whose output is as long as its input
  // One buffer, written in place, rather than a concatenation of five.
  const out = Buffer.allocUnsafe(header.length + IV_BYTES + body.length + final.length + TAG_BYTES);
  let at = header.copy(out, 0);
  at += iv.copy(out, at);
  at += body.copy(out, at);
  at += final.copy(out, at);
  cipher.getAuthTag().copy(out, at);
  return out;
}

export async function decryptRecord(ciphertext: Buffer, ctx: RecordContext, lookup: DataKeyLookup): Promise<Buffer> {
  assertContext(ctx);
  const header = readHeader(ciphertext);
  if (ciphertext.length < header.headerLength + IV_BYTES + TAG_BYTES)
    throw new DecryptionError('ciphertext is malformed');
  if (header.keyId !== tenantKeyId(ctx.tenantId))
    throw new DecryptionError('ciphertext key id does not belong to this tenant');
  if (!isValidVersion(header.keyVersion)) throw new DecryptionError('ciphertext key version is invalid');

  let dek: DataKey;
  try {
    dek = await lookup(ctx.tenantId, header.keyVersion);
  } catch (err) {
    if (err instanceof EhrError) throw err;
    throw new DecryptionError('data key lookup failed');
  }
  if (!dek || dek.tenantId !== ctx.tenantId || dek.version !== header.keyVersion) {
    throw new DecryptionError('data key does not match the ciphertext key id and version');
  }
  if (!Buffer.isBuffer(dek.key) || dek.key.length !== KEY_BYTES) throw new DecryptionError('data key is malformed');

  const headerBytes = ciphertext.subarray(0, header.headerLength);
  const iv = ciphertext.subarray(header.headerLength, header.headerLength + IV_BYTES);
  const body = ciphertext.subarray(header.headerLength + IV_BYTES, ciphertext.length - TAG_BYTES);
  const tag = ciphertext.subarray(ciphertext.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(buildAad(headerBytes, ctx, header.keyVersion));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new DecryptionError('authentication failed: ciphertext, header or record context does not match');
  }
}
