/**
 * KEK provider backed by AWS KMS (or a KMS-compatible endpoint, e.g. moto's server in tests). The KEK
 * never enters this process: wrap is KMS `Encrypt`, unwrap is KMS `Decrypt`, rewrap is KMS
 * `ReEncrypt` (the DEK plaintext never leaves KMS). Each KEK version maps to one KMS key (id, ARN
 * or alias), recorded as provider_ref in `kek_versions`; version 1 is the configured key.
 *
 * The caller's AAD becomes the KMS encryption context: every string/number field of the AAD's JSON
 * object (tenantId, purpose, keyVersion, …) as its own entry — visible in CloudTrail — plus the
 * SHA-256 of the exact AAD bytes and the KEK version, so a wrapped key only decrypts under the same
 * binding. Errors carry KMS error names, never key material or context values.
 */
import { createHash } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import type { KMSClientConfig } from '@aws-sdk/client-kms';
import { ConfigError, DecryptionError, InfrastructureUnavailableError, InvalidArgumentError } from '../errors/index.js';
import type { KekBackend, WrappedKey } from './kek-provider.js';

export const AWS_KMS_KEK_ID = 'aws-kms';

export interface AwsKmsKekOptions {
  /** KMS key id, ARN or alias of KEK version 1 (EHR_AWS_KMS_KEY_ID). */
  keyId: string;
  region: string;
  /** A KMS-compatible endpoint (tests); omit for AWS. */
  endpoint?: string;
  /** Explicit credentials (tests); omit to use the SDK's default provider chain. */
  credentials?: KMSClientConfig['credentials'];
  /** A prebuilt client (tests); overrides region/endpoint/credentials. */
  client?: KMSClient;
  /** Pending window for ScheduleKeyDeletion when a version is destroyed (7..30, default 7). */
  pendingWindowInDays?: number;
}

/** Names of KMS errors that mean "this ciphertext/context/key does not match" rather than "KMS is down". */
const MISMATCH = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'InvalidKeyUsageException',
  'KMSInvalidStateException',
  'DisabledException',
  'NotFoundException',
  'AccessDeniedException',
]);

const CONTEXT_VALUE_MAX = 256;

/** The KMS encryption context for an AAD (see the module comment). */
export function kmsEncryptionContext(kekVersion: number, aad: Buffer): Record<string, string> {
  const ctx: Record<string, string> = {
    'ehr:aad-sha256': createHash('sha256').update(aad).digest('base64url'),
    'ehr:kek-version': String(kekVersion),
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(aad.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if ((typeof v === 'string' || typeof v === 'number') && /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(k)) {
        const s = String(v);
        if (s.length > 0 && s.length <= CONTEXT_VALUE_MAX) ctx[`ehr:${k}`] = s;
      }
    }
  }
  return ctx;
}

function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : 'Error';
}

export class AwsKmsKekProvider implements KekBackend {
  readonly id = AWS_KMS_KEK_ID;
  readonly #client: KMSClient;
  readonly #endpointLabel: string;
  readonly #initialKeyId: string;
  readonly #pendingDays: number;
  readonly #versions = new Map<number, string>();

  constructor(opts: AwsKmsKekOptions) {
    if (typeof opts.keyId !== 'string' || opts.keyId.trim() === '')
      throw new ConfigError('EHR_AWS_KMS_KEY_ID', 'is required for the aws-kms KEK provider');
    if (!opts.client && (typeof opts.region !== 'string' || opts.region.trim() === ''))
      throw new ConfigError('EHR_AWS_REGION', 'is required for the aws-kms KEK provider');
    this.#initialKeyId = opts.keyId;
    this.#pendingDays = opts.pendingWindowInDays ?? 7;
    if (!Number.isInteger(this.#pendingDays) || this.#pendingDays < 7 || this.#pendingDays > 30) {
      throw new InvalidArgumentError('pendingWindowInDays', 'must be an integer in 7..30');
    }
    this.#client =
      opts.client ??
      new KMSClient({
        region: opts.region,
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        ...(opts.credentials ? { credentials: opts.credentials } : {}),
      });
    this.#endpointLabel = opts.endpoint ?? `kms.${opts.region}`;
    this.#versions.set(1, opts.keyId);
  }

  primaryVersion(): number {
    return Math.max(...this.#versions.keys());
  }

  async initialVersions(): Promise<Array<{ version: number; ref: string }>> {
    return [{ version: 1, ref: this.#initialKeyId }];
  }

  hasVersion(version: number): boolean {
    return this.#versions.has(version);
  }

  async adoptVersion(version: number, ref: string): Promise<void> {
    if (typeof ref !== 'string' || ref === '' || ref === 'unknown')
      throw new ConfigError('kek_versions.provider_ref', `KEK version ${version} names no KMS key`);
    this.#versions.set(version, ref);
  }

  async createVersion(version: number, ref?: string): Promise<{ ref: string }> {
    if (ref !== undefined) {
      if ([...this.#versions.entries()].some(([v, r]) => r === ref && v !== version)) {
        throw new InvalidArgumentError('providerRef', 'already names another KEK version');
      }
      const described = await this.#send('DescribeKey', () =>
        this.#client.send(new DescribeKeyCommand({ KeyId: ref })),
      );
      const meta = described.KeyMetadata;
      if (!meta || meta.KeyState !== 'Enabled' || meta.KeyUsage !== 'ENCRYPT_DECRYPT') {
        throw new InvalidArgumentError('providerRef', 'must name an enabled symmetric ENCRYPT_DECRYPT KMS key');
      }
      this.#versions.set(version, ref);
      return { ref };
    }
    const created = await this.#send('CreateKey', () =>
      this.#client.send(
        new CreateKeyCommand({
          Description: `ehr-connectors key-encryption key version ${version}`,
          KeySpec: 'SYMMETRIC_DEFAULT',
          KeyUsage: 'ENCRYPT_DECRYPT',
          Tags: [{ TagKey: 'ehr-connectors:kek-version', TagValue: String(version) }],
        }),
      ),
    );
    const arn = created.KeyMetadata?.Arn ?? created.KeyMetadata?.KeyId;
    if (!arn) throw new InfrastructureUnavailableError('kek', this.#endpointLabel, 'CreateKey returned no key id');
    this.#versions.set(version, arn);
    return { ref: arn };
  }

  async destroyVersion(version: number): Promise<void> {
    const keyId = this.#versions.get(version);
    if (!keyId) return;
    try {
      await this.#client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: this.#pendingDays }));
    } catch (err) {
      // Already pending deletion or gone: destroying again is a no-op.
      if (!['KMSInvalidStateException', 'NotFoundException'].includes(errorName(err))) {
        throw new InfrastructureUnavailableError(
          'kek',
          this.#endpointLabel,
          `ScheduleKeyDeletion failed (${errorName(err)})`,
        );
      }
    }
    this.#versions.delete(version);
  }

  async wrap(dek: Buffer, aad: Buffer): Promise<WrappedKey> {
    return this.wrapWith(this.primaryVersion(), dek, aad);
  }

  async wrapWith(version: number, dek: Buffer, aad: Buffer): Promise<WrappedKey> {
    if (!Buffer.isBuffer(dek) || dek.length === 0 || dek.length > 4096)
      throw new InvalidArgumentError('dek', 'must be a non-empty Buffer of at most 4096 bytes');
    const keyId = this.#versions.get(version);
    if (!keyId) throw new InvalidArgumentError('kekVersion', 'is not known to this provider');
    const out = await this.#send('Encrypt', () =>
      this.#client.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: dek, EncryptionContext: kmsEncryptionContext(version, aad) }),
      ),
    );
    if (!out.CiphertextBlob)
      throw new InfrastructureUnavailableError('kek', this.#endpointLabel, 'Encrypt returned no ciphertext');
    return { kekId: this.id, kekVersion: version, wrapped: Buffer.from(out.CiphertextBlob) };
  }

  async unwrap(w: WrappedKey, aad: Buffer): Promise<Buffer> {
    if (w.kekId !== this.id) throw new DecryptionError('wrapped key names another key-encryption key');
    const keyId = this.#versions.get(w.kekVersion);
    if (!keyId) throw new DecryptionError('key-encryption key version is not available');
    if (!Buffer.isBuffer(w.wrapped) || w.wrapped.length === 0) throw new DecryptionError('wrapped key is malformed');
    const out = await this.#send(
      'Decrypt',
      () =>
        this.#client.send(
          new DecryptCommand({
            KeyId: keyId,
            CiphertextBlob: w.wrapped,
            EncryptionContext: kmsEncryptionContext(w.kekVersion, aad),
          }),
        ),
      true,
    );
    if (!out.Plaintext) throw new DecryptionError('key unwrap failed: KMS returned no plaintext');
    const plain = Buffer.from(out.Plaintext);
    out.Plaintext.fill(0);
    return plain;
  }

  /** KMS ReEncrypt: the key moves between KMS keys and contexts without its plaintext entering this process. */
  async rewrap(w: WrappedKey, oldAad: Buffer, toVersion: number, newAad: Buffer): Promise<WrappedKey> {
    if (w.kekId !== this.id) throw new DecryptionError('wrapped key names another key-encryption key');
    const source = this.#versions.get(w.kekVersion);
    const destination = this.#versions.get(toVersion);
    if (!source) throw new DecryptionError('key-encryption key version is not available');
    if (!destination) throw new InvalidArgumentError('kekVersion', 'is not known to this provider');
    const out = await this.#send(
      'ReEncrypt',
      () =>
        this.#client.send(
          new ReEncryptCommand({
            CiphertextBlob: w.wrapped,
            SourceKeyId: source,
            SourceEncryptionContext: kmsEncryptionContext(w.kekVersion, oldAad),
            DestinationKeyId: destination,
            DestinationEncryptionContext: kmsEncryptionContext(toVersion, newAad),
          }),
        ),
      true,
    );
    if (!out.CiphertextBlob)
      throw new InfrastructureUnavailableError('kek', this.#endpointLabel, 'ReEncrypt returned no ciphertext');
    return { kekId: this.id, kekVersion: toVersion, wrapped: Buffer.from(out.CiphertextBlob) };
  }

  toJSON(): { id: string; versions: number[] } {
    return { id: this.id, versions: [...this.#versions.keys()].sort((a, b) => a - b) };
  }

  async #send<T>(op: string, call: () => Promise<T>, decrypting = false): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const name = errorName(err);
      if (decrypting && MISMATCH.has(name)) throw new DecryptionError(`key unwrap failed: KMS ${op} refused (${name})`);
      if (MISMATCH.has(name) || name === 'ValidationException') {
        throw new InvalidArgumentError(`KMS ${op}`, `refused (${name})`);
      }
      throw new InfrastructureUnavailableError('kek', this.#endpointLabel, `KMS ${op} failed (${name})`);
    }
  }
}
