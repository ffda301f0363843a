/**
 * Writing one resource type of an export: the tenant's stored records of the type (every integration,
 * since `since`), each decrypted with the tenant keyring, minimised for the export's purpose, and appended
 * as an NDJSON line to the type's file encrypted under the job key. Plaintext buffers are zeroed as soon as
 * they are written. Returns counts and the file's checksum only.
 */
import path from 'node:path';
import { decryptRecord } from '../crypto/envelope.js';
import type { ResourceType } from '../domain.js';
import type { Purpose } from '../fhir/classification.js';
import { minimiseForPurpose } from '../fhir/minimise.js';
import type { DataKeyLookup } from '../crypto/envelope.js';
import type { Queryable } from '../store/pool.js';
import { recordPage } from './export-repository.js';
import { EncryptedFileWriter } from './file-cipher.js';
import type { ManifestFile } from './manifest.js';

export function exportFileName(type: ResourceType): string {
  return `${type}.ndjson.enc`;
}

export interface TypeExport {
  db: Queryable;
  lookup: DataKeyLookup;
  tenantId: string;
  jobId: string;
  keyId: string;
  directory: string;
  resourceType: ResourceType;
  purpose: Purpose;
  since: string | null;
  pageSize: number;
  /** Called after each page with the count so far (activity heartbeats). */
  onPage(written: number): void;
}

export interface TypeExportResult extends ManifestFile {
  /** Top-level elements minimisation left out (outside the export's purpose). */
  dropped: number;
}

export async function writeTypeFile(key: Buffer, x: TypeExport): Promise<TypeExportResult> {
  const name = exportFileName(x.resourceType);
  const writer = await EncryptedFileWriter.open(
    key,
    { jobId: x.jobId, keyId: x.keyId, file: name },
    path.join(x.directory, name),
  );
  let count = 0;
  let dropped = 0;
  try {
    let after: { integrationId: string; resourceId: string } | null = null;
    for (;;) {
      const page = await recordPage(
        x.db,
        { tenantId: x.tenantId, resourceType: x.resourceType, since: x.since },
        after,
        x.pageSize,
      );
      for (const r of page) {
        const at = {
          tenantId: x.tenantId,
          integrationId: r.integrationId,
          resourceType: x.resourceType,
          resourceId: r.resourceId,
        };
        const plain = await decryptRecord(r.ciphertext, at, x.lookup);
        let line: Buffer;
        try {
          const resource = JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
          const minimised = minimiseForPurpose(x.resourceType, resource, x.purpose);
          dropped += minimised.dropped;
          line = Buffer.from(JSON.stringify(minimised.resource), 'utf8');
        } finally {
          plain.fill(0);
        }
        await writer.writeLine(line);
        line.fill(0);
        count += 1;
      }
      x.onPage(count);
      if (page.length < x.pageSize) break;
      const last = page[page.length - 1]!;
      after = { integrationId: last.integrationId, resourceId: last.resourceId };
    }
    const written = await writer.finish();
    return { name, resourceType: x.resourceType, count, ...written, dropped };
  } catch (err) {
    await writer.abandon();
    throw err;
  }
}
