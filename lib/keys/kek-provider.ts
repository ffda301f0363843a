/**
 * A key-encryption key (KEK) kept outside the database. It wraps tenant data keys (DEKs); the
 * database only ever sees wrapped DEKs (DESIGN §4 invariants 3 and 4). Versions behave like a Vault
 * Transit key: one primary version wraps, every loaded version unwraps (dual-read during rotation).
 * Implementations: LocalKekProvider (files, dev and tests); a KMS/Vault provider later.
 */
export interface WrappedKey {
  kekId: string;
  kekVersion: number;
  wrapped: Buffer;
}

export interface KekProvider {
  /** Stable identifier stored beside each wrapped key (data_keys.kek_id). */
  readonly id: string;
  /** The version new wraps use. */
  primaryVersion(): number;
  /** Wraps with the primary version; `aad` is bound (unwrap with different aad fails). */
  wrap(dek: Buffer, aad: Buffer): Promise<WrappedKey>;
  /** Unwraps with the version named in `w`; throws DecryptionError on any mismatch. */
  unwrap(w: WrappedKey, aad: Buffer): Promise<Buffer>;
}

/**
 * A KEK provider whose versions the key hierarchy manages (lib/keys/key-hierarchy.ts). Version
 * metadata and states live in `kek_versions`; `provider_ref` names the version's material (local: a
 * file name in EHR_KEK_DIR; aws-kms: a KMS key id/ARN). The backend never decides which version is
 * primary: the hierarchy passes the version explicitly.
 */
export interface KekBackend extends KekProvider {
  /**
   * Versions the backend can register when no metadata exists yet (local: files; aws-kms: the configured key
   * as v1).
   */
  initialVersions(): Promise<Array<{ version: number; ref: string }>>;
  /** Whether the material of `version` is usable in this process right now. */
  hasVersion(version: number): boolean;
  /** Makes a version known from metadata (local: loads the file; aws-kms: maps version → KMS key). */
  adoptVersion(version: number, ref: string): Promise<void>;
  /** Wraps with an explicit version. */
  wrapWith(version: number, dek: Buffer, aad: Buffer): Promise<WrappedKey>;
  /**
   * Creates the material of a new version (local: a new 0600 file; aws-kms: CreateKey, or adopts
   * `ref` when an operator created the KMS key). Returns the provider_ref to record.
   */
  createVersion(version: number, ref?: string): Promise<{ ref: string }>;
  /** Destroys the material of a version (local: overwrite + delete; aws-kms: ScheduleKeyDeletion). Idempotent. */
  destroyVersion(version: number): Promise<void>;
  /**
   * Optional: moves a wrapped key to another version without the plaintext key entering this process
   * (aws-kms ReEncrypt). Without it, rewrap unwraps and wraps in memory and zeroes the buffer.
   */
  rewrap?(w: WrappedKey, oldAad: Buffer, toVersion: number, newAad: Buffer): Promise<WrappedKey>;
}
