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
