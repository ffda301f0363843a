/**
 * An export job's key: a random 256-bit AES key made for one job, stored only wrapped by the KEK
 * (export_jobs.wrapped_key), like tenant data keys. The wrap AAD names the export family
 * ('ehr-connectors/export-job-key/v1') with tenant, job, key id and the KEK id/version, so a job key can
 * never be unwrapped as a DEK or a purpose key, nor as another job's key, even when its bytes are copied.
 * Destroying the wrapped key (lib/exports/export-repository.ts) crypto-shreds the job's files.
 */
import { randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import { DecryptionError } from '../errors/index.js';
import type { KekProvider, WrappedKey } from '../keys/kek-provider.js';

export const JOB_KEY_BYTES = 32;

export interface JobKeyBinding {
  tenantId: string;
  jobId: string;
  keyId: string;
}

/** The id a job key is known by in manifests and audit rows (`export-<job>`): never secret. */
export function jobKeyIdFor(jobId: string): string {
  return `export-${jobId}`;
}

export function jobKeyWrapAad(b: JobKeyBinding, kekId: string, kekVersion: number): Buffer {
  const aad = canonicalize({
    purpose: 'ehr-connectors/export-job-key/v1',
    tenantId: b.tenantId,
    jobId: b.jobId,
    keyId: b.keyId,
    kekId,
    kekVersion,
  });
  return Buffer.from(aad!, 'utf8');
}

/** A fresh job key and its wrapped form; the caller zeroes `key` when done. */
export async function newJobKey(kek: KekProvider, b: JobKeyBinding): Promise<{ key: Buffer; wrapped: WrappedKey }> {
  const key = randomBytes(JOB_KEY_BYTES);
  try {
    const kekVersion = kek.primaryVersion();
    const wrapped = await kek.wrap(key, jobKeyWrapAad(b, kek.id, kekVersion));
    if (wrapped.kekVersion !== kekVersion) throw new DecryptionError('KEK primary version changed during a wrap');
    return { key, wrapped };
  } catch (err) {
    key.fill(0);
    throw err;
  }
}

/** The job key from its wrapped form; DecryptionError when the key was destroyed or does not belong to the job. */
export async function unwrapJobKey(kek: KekProvider, b: JobKeyBinding, w: WrappedKey | undefined): Promise<Buffer> {
  if (!w) throw new DecryptionError(`export job key ${b.keyId} has been destroyed`);
  const key = await kek.unwrap(w, jobKeyWrapAad(b, w.kekId, w.kekVersion));
  if (key.length !== JOB_KEY_BYTES) {
    key.fill(0);
    throw new DecryptionError('export job key is malformed');
  }
  return key;
}
