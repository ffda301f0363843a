/**
 * The encrypted export file (lib/exports/file-cipher.ts): what is written decrypts to exactly the lines
 * given, across several chunks; a reordered, dropped or truncated chunk, a flipped byte, another file's
 * or job's binding, or another key each fail authentication before any of the affected plaintext is released.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DecryptionError } from '../../lib/errors/index.js';
import {
  CHUNK_PLAINTEXT_BYTES,
  EXPORT_FILE_MAGIC,
  EncryptedFileWriter,
  decryptExportFile,
} from '../../lib/exports/file-cipher.js';
import type { FileBinding } from '../../lib/exports/file-cipher.js';
import { sha256OfFile } from '../../lib/exports/manifest.js';

const binding: FileBinding = { jobId: 'job-1', keyId: 'export-job-1', file: 'Observation.ndjson.enc' };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'export-cipher-'));

/** Synthetic lines, enough for three chunks. */
const lines = Array.from({ length: 2600 }, (_, i) =>
  JSON.stringify({ resourceType: 'Observation', id: `obs-${i}`, pad: 'x'.repeat(1000) }),
);

async function writeFile(key: Buffer, name: string): Promise<{ file: string; bytes: number; sha256: string }> {
  const file = path.join(dir, name);
  const w = await EncryptedFileWriter.open(key, binding, file);
  for (const l of lines) await w.writeLine(Buffer.from(l));
  return { file, ...(await w.finish()) };
}

async function decryptAll(
  file: string,
  key: Buffer,
  b: FileBinding = binding,
): Promise<{ text: string; chunks: number }> {
  const parts: string[] = [];
  await decryptExportFile(file, key, b, async (p) => {
    parts.push(p.toString('utf8'));
  });
  return { text: parts.join(''), chunks: parts.length };
}

/** The byte offsets of each chunk in a written file. */
function chunkOffsets(buf: Buffer): number[] {
  const offsets: number[] = [];
  for (let at = EXPORT_FILE_MAGIC.length; at < buf.length; at += 4 + 12 + buf.readUInt32BE(at) + 16) offsets.push(at);
  return offsets;
}

describe('export file cipher', () => {
  it('round-trips across chunks; the checksum is of the bytes as written; no plaintext in the file', async () => {
    const key = randomBytes(32);
    const { file, bytes, sha256 } = await writeFile(key, 'ok.enc');
    expect(fs.existsSync(`${file}.partial`)).toBe(false);
    expect(bytes).toBe(fs.statSync(file).size);
    expect(sha256).toBe(await sha256OfFile(file));
    const { text, chunks } = await decryptAll(file, key);
    expect(text).toBe(`${lines.join('\n')}\n`);
    // About 2.7 MB of lines: two full chunks, then the final one with the rest.
    expect(text.length).toBeGreaterThan(2 * CHUNK_PLAINTEXT_BYTES);
    expect(chunks).toBe(3);
    expect(fs.readFileSync(file).includes('obs-1')).toBe(false);
  });

  it('refuses a flipped byte, reordered or dropped chunks, truncation, another binding and another key', async () => {
    const key = randomBytes(32);
    const { file } = await writeFile(key, 'tamper.enc');
    const original = fs.readFileSync(file);
    const offsets = chunkOffsets(original);
    expect(offsets.length).toBeGreaterThanOrEqual(3);
    const variant = (name: string, buf: Buffer): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, buf);
      return f;
    };
    const flipped = Buffer.from(original);
    const at = offsets[1]! + 100;
    flipped[at] = flipped[at]! ^ 1;
    const chunk = (i: number) => original.subarray(offsets[i]!, offsets[i + 1] ?? original.length);
    const swapped = Buffer.concat([
      EXPORT_FILE_MAGIC,
      chunk(1),
      chunk(0),
      ...offsets.slice(2).map((_, i) => chunk(i + 2)),
    ]);
    const dropped = Buffer.concat([EXPORT_FILE_MAGIC, chunk(0), ...offsets.slice(2).map((_, i) => chunk(i + 2))]);
    const truncatedAtChunk = original.subarray(0, offsets[offsets.length - 1]);
    const truncatedMidChunk = original.subarray(0, original.length - 5);
    const cases: Array<[string, string, Buffer, FileBinding]> = [
      ['flipped byte', variant('flipped', flipped), key, binding],
      ['chunks swapped', variant('swapped', swapped), key, binding],
      ['chunk dropped', variant('dropped', dropped), key, binding],
      ['truncated at a chunk boundary', variant('trunc1', truncatedAtChunk), key, binding],
      ['truncated mid-chunk', variant('trunc2', truncatedMidChunk), key, binding],
      ['another file name', file, key, { ...binding, file: 'Patient.ndjson.enc' }],
      ['another job', file, key, { ...binding, jobId: 'job-2' }],
      ['another key', file, randomBytes(32), binding],
    ];
    for (const [what, f, k, b] of cases) {
      const released: number[] = [];
      const err = await decryptExportFile(f, k, b, async (p) => {
        released.push(p.length);
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, what).toBeInstanceOf(DecryptionError);
      // Chunks before the damage may be released; never the damaged one: at most what preceded it.
      expect(released.length, what).toBeLessThan(offsets.length);
    }
    // The untouched original still decrypts.
    expect((await decryptAll(file, key)).text).toBe(`${lines.join('\n')}\n`);
  });
});
