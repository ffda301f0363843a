/**
 * The three kinds of key a KEK wraps, as rewrap stages for KeyAdmin.rewrapDataKeys: which rows are
 * still under an older KEK version (locked SKIP LOCKED, so concurrent rewraps share work), the AAD each
 * was wrapped under, how to store it rewrapped, and its audit event. One table each: tenant DEKs,
 * purpose keys (payload codec, audit signing), per-tenant purpose keys (pseudonym keys).
 */
import { dataKeyWrapAad } from './keyring.js';
import { tenantPurposeKeyWrapAad } from './pseudonym-keys.js';
import type { TenantKeyPurpose } from './pseudonym-keys.js';
import { purposeKeyWrapAad } from './purpose-key-store.js';
import type { KeyPurpose } from './purpose-keys.js';

export interface WrappedRow {
  kek_version: number;
  wrapped_key: Buffer;
}

export interface RewrapStage<R extends WrappedRow> {
  /** Parameters: $1 KEK id, $2 its primary version, $3 the most rows to take. */
  select: string;
  /** Parameters: the row's key (`keyOf`), then the new KEK version and wrapped key. */
  update: string;
  keyOf(row: R): unknown[];
  aad(row: R, kekId: string, kekVersion: number): Buffer;
  /** The audit event's action, details and tenant (the caller adds actor and outcome). */
  audit(row: R, kekId: string, toKekVersion: number): { action: string; details: Record<string, unknown>; tenantId?: string };
}

const stale = (table: string, columns: string, order: string): string =>
  `SELECT ${columns}, kek_version, wrapped_key FROM ${table}
    WHERE kek_id = $1 AND kek_version <> $2 AND wrapped_key IS NOT NULL
    ORDER BY kek_version, ${order} LIMIT $3 FOR UPDATE SKIP LOCKED`;

export const dataKeyStage: RewrapStage<WrappedRow & { tenant_id: string; key_version: number }> = {
  select: stale('data_keys', 'tenant_id, key_version', 'tenant_id, key_version'),
  update: `UPDATE data_keys SET kek_version = $3, wrapped_key = $4, rewrapped_at = now() WHERE tenant_id = $1 AND key_version = $2`,
  keyOf: (r) => [r.tenant_id, r.key_version],
  aad: (r, kekId, v) => dataKeyWrapAad(r.tenant_id, r.key_version, kekId, v),
  audit: (r, kekId, to) => ({ action: 'key.dek.rewrapped', details: { keyVersion: r.key_version, kekId, fromKekVersion: r.kek_version, toKekVersion: to }, tenantId: r.tenant_id }),
};

export const purposeKeyStage: RewrapStage<WrappedRow & { purpose: KeyPurpose; version: number; key_id: string }> = {
  select: stale('purpose_keys', 'purpose, version, key_id', 'purpose, version'),
  update: `UPDATE purpose_keys SET kek_version = $3, wrapped_key = $4, rewrapped_at = now() WHERE purpose = $1 AND version = $2`,
  keyOf: (r) => [r.purpose, r.version],
  aad: (r, kekId, v) => purposeKeyWrapAad(r.purpose, r.version, r.key_id, kekId, v),
  audit: (r, kekId, to) => ({
    action: 'key.purpose.rewrapped',
    details: { purpose: r.purpose, version: r.version, keyId: r.key_id, kekId, fromKekVersion: r.kek_version, toKekVersion: to },
  }),
};

export const tenantPurposeKeyStage: RewrapStage<WrappedRow & { tenant_id: string; purpose: TenantKeyPurpose; version: number }> = {
  select: stale('tenant_purpose_keys', 'tenant_id, purpose, version', 'tenant_id, purpose, version'),
  update: `UPDATE tenant_purpose_keys SET kek_version = $4, wrapped_key = $5, rewrapped_at = now() WHERE tenant_id = $1 AND purpose = $2 AND version = $3`,
  keyOf: (r) => [r.tenant_id, r.purpose, r.version],
  aad: (r, kekId, v) => tenantPurposeKeyWrapAad(r.tenant_id, r.purpose, r.version, kekId, v),
  audit: (r, kekId, to) => ({
    action: 'key.pseudonym.rewrapped',
    details: { purpose: r.purpose, version: r.version, kekId, fromKekVersion: r.kek_version, toKekVersion: to },
    tenantId: r.tenant_id,
  }),
};
