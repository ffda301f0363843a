/**
 * The four kinds of key a KEK wraps, as rewrap stages for KeyAdmin.rewrapDataKeys: the table the
 * rows live in (lib/keys/rewrap-repository.ts selects and stores them), the row's key, the AAD each
 * was wrapped under, and its audit event. One table each: tenant DEKs, purpose keys (payload codec,
 * audit signing), per-tenant purpose keys (pseudonym keys), export job keys (lib/exports/job-key.ts).
 */
import { jobKeyWrapAad } from '../exports/job-key.js';
import { dataKeyWrapAad } from './keyring.js';
import { tenantPurposeKeyWrapAad } from './pseudonym-keys.js';
import { purposeKeyWrapAad } from './purpose-key-store.js';
import type { KeyPurpose, TenantKeyPurpose } from './purpose-keys.js';
import type { WrappedKeyTable, WrappedRow } from './rewrap-repository.js';

export type { WrappedRow };

export interface RewrapStage<R extends WrappedRow> {
  /** Where the rows live (lib/keys/rewrap-repository.ts has the statements). */
  table: WrappedKeyTable;
  /** The row's primary key, in the order the update statement takes it. */
  keyOf(row: R): unknown[];
  aad(row: R, kekId: string, kekVersion: number): Buffer;
  /** The audit event's action, details and tenant (the caller adds actor and outcome). */
  audit(
    row: R,
    kekId: string,
    toKekVersion: number,
  ): { action: string; details: Record<string, unknown>; tenantId?: string };
}

export const dataKeyStage: RewrapStage<WrappedRow & { tenant_id: string; key_version: number }> = {
  table: 'data_keys',
  keyOf: (r) => [r.tenant_id, r.key_version],
  aad: (r, kekId, v) => dataKeyWrapAad(r.tenant_id, r.key_version, kekId, v),
  audit: (r, kekId, to) => ({
    action: 'key.dek.rewrapped',
    details: { keyVersion: r.key_version, kekId, fromKekVersion: r.kek_version, toKekVersion: to },
    tenantId: r.tenant_id,
  }),
};

export const purposeKeyStage: RewrapStage<WrappedRow & { purpose: KeyPurpose; version: number; key_id: string }> = {
  table: 'purpose_keys',
  keyOf: (r) => [r.purpose, r.version],
  aad: (r, kekId, v) => purposeKeyWrapAad(r.purpose, r.version, r.key_id, kekId, v),
  audit: (r, kekId, to) => ({
    action: 'key.purpose.rewrapped',
    details: {
      purpose: r.purpose,
      version: r.version,
      keyId: r.key_id,
      kekId,
      fromKekVersion: r.kek_version,
      toKekVersion: to,
    },
  }),
};

export const tenantPurposeKeyStage: RewrapStage<
  WrappedRow & { tenant_id: string; purpose: TenantKeyPurpose; version: number }
> = {
  table: 'tenant_purpose_keys',
  keyOf: (r) => [r.tenant_id, r.purpose, r.version],
  aad: (r, kekId, v) => tenantPurposeKeyWrapAad(r.tenant_id, r.purpose, r.version, kekId, v),
  audit: (r, kekId, to) => ({
    action: 'key.pseudonym.rewrapped',
    details: { purpose: r.purpose, version: r.version, kekId, fromKekVersion: r.kek_version, toKekVersion: to },
    tenantId: r.tenant_id,
  }),
};

export const exportJobKeyStage: RewrapStage<WrappedRow & { id: string; tenant_id: string; key_id: string }> = {
  table: 'export_jobs',
  keyOf: (r) => [r.id],
  aad: (r, kekId, v) => jobKeyWrapAad({ tenantId: r.tenant_id, jobId: r.id, keyId: r.key_id }, kekId, v),
  audit: (r, kekId, to) => ({
    action: 'key.export_job.rewrapped',
    details: { jobId: r.id, keyId: r.key_id, kekId, fromKekVersion: r.kek_version, toKekVersion: to },
    tenantId: r.tenant_id,
  }),
};
