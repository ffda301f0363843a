/**
 * The recipient's side of an export (`ehrctl export decrypt`): the directory is verified first (signature
 * and every checksum: nothing is decrypted from an export that does not verify), the job key is unwrapped
 * — refused, and the refusal audited, once the key was destroyed — and each file is decrypted to
 * `<out>/<Type>.ndjson` (0600). The decryption is audited before any plaintext is written: who, which job,
 * the counts. Nothing of the content is printed or logged.
 */
import type { KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { recordAuditEvent } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { DecryptionError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { KekProvider } from '../keys/kek-provider.js';
import type { Pool } from '../store/pool.js';
import { readExportJob } from './export-repository.js';
import { decryptExportFile } from './file-cipher.js';
import { unwrapJobKey } from './job-key.js';
import { verifyExportDirectory } from './manifest.js';

export interface DecryptedExport {
  jobId: string;
  files: Array<{ resourceType: string; count: number; file: string }>;
}

export async function decryptExport(
  deps: { pool: Pool; kek: KekProvider; keys: ReadonlyMap<string, KeyObject> },
  dir: string,
  out: string,
  audit: AuditContext,
): Promise<DecryptedExport> {
  const verified = await verifyExportDirectory(dir, deps.keys);
  if (!verified.ok || !verified.manifest)
    throw new InvalidArgumentError('DIR', `export does not verify: ${verified.problems.join('; ')}`);
  const m = verified.manifest;
  const job = await readExportJob(deps.pool, m.jobId);
  if (!job || job.tenantId !== m.tenantId || job.keyId !== m.jobKeyId) throw new NotFoundError('export job', m.jobId);
  const counts = Object.fromEntries(m.files.map((f) => [f.resourceType, f.count]));
  const base = { ...audit, tenantId: job.tenantId };
  let key: Buffer;
  try {
    key = await unwrapJobKey(deps.kek, { tenantId: job.tenantId, jobId: job.id, keyId: job.keyId }, job.wrapped);
  } catch (err) {
    const errorCode = err instanceof DecryptionError ? err.code : 'UNCLASSIFIED';
    await recordAuditEvent(deps.pool, {
      ...base,
      action: 'export.decrypted',
      outcome: 'failure',
      details: { jobId: job.id, keyId: job.keyId, status: job.status, errorCode },
    });
    throw err;
  }
  try {
    await recordAuditEvent(deps.pool, {
      ...base,
      action: 'export.decrypted',
      outcome: 'success',
      details: { jobId: job.id, keyId: job.keyId, counts },
    });
    await fs.mkdir(out, { recursive: true, mode: 0o700 });
    const files: DecryptedExport['files'] = [];
    for (const f of m.files) {
      const target = path.join(out, `${f.resourceType}.ndjson`);
      const handle = await fs.open(target, 'wx', 0o600);
      try {
        await decryptExportFile(path.join(dir, f.name), key, { jobId: job.id, keyId: job.keyId, file: f.name }, (p) =>
          handle.write(p).then(() => undefined),
        );
      } finally {
        await handle.close();
      }
      files.push({ resourceType: f.resourceType, count: f.count, file: target });
    }
    return { jobId: job.id, files };
  } finally {
    key.fill(0);
  }
}
