/**
 * The encrypted export file: NDJSON sealed in chunks of AES-256-GCM under the job key.
 *
 *   file  = MAGIC chunk*            MAGIC = "EHREXP1\n"
 *   chunk = u32be(length of ciphertext) nonce(12, random) ciphertext tag(16)
 *   AAD   = canonical JSON {format, jobId, keyId, file, chunk: index, final}
 *
 * Chunked rather than one GCM over the whole file: a reader authenticates each chunk before it releases
 * any of its plaintext (one GCM stream would hand out unauthenticated plaintext until the final tag), and
 * neither side holds a whole file in memory. The index and the `final` flag in the AAD make a reordered,
 * dropped or truncated chunk fail authentication, and the file name and job bind a chunk to its place.
 * Nonces are random (a retried activity rewrites a file with the same key: counters would repeat).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import canonicalize from 'canonicalize';
import { DecryptionError } from '../errors/index.js';

export const EXPORT_FILE_MAGIC = Buffer.from('EHREXP1\n', 'ascii');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Plaintext per chunk before it is sealed. */
export const CHUNK_PLAINTEXT_BYTES = 1024 * 1024;
/** Largest chunk a reader accepts (a corrupt length must not make it allocate gigabytes). */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export interface FileBinding {
  jobId: string;
  keyId: string;
  /** The file's name in the export directory, e.g. `Observation.ndjson.enc`. */
  file: string;
}

function chunkAad(b: FileBinding, index: number, final: boolean): Buffer {
  const aad = canonicalize({ format: 'ehr-connectors/export-file/v1', ...b, chunk: index, final });
  return Buffer.from(aad!, 'utf8');
}

export interface WrittenFile {
  bytes: number;
  /** Hex SHA-256 of the file as written (ciphertext). */
  sha256: string;
}

/**
 * Writes one encrypted file: lines are gathered into chunks, each sealed when full; `finish` seals the last
 * (final) chunk and moves the file from `<path>.partial` into place, so a crashed writer leaves no file that
 * looks complete.
 */
export class EncryptedFileWriter {
  readonly #key: Buffer;
  readonly #binding: FileBinding;
  readonly #path: string;
  readonly #hash = createHash('sha256');
  #handle: fs.FileHandle | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #index = 0;
  #bytes = 0;

  private constructor(key: Buffer, binding: FileBinding, path: string) {
    this.#key = key;
    this.#binding = binding;
    this.#path = path;
  }

  static async open(key: Buffer, binding: FileBinding, path: string): Promise<EncryptedFileWriter> {
    const w = new EncryptedFileWriter(key, binding, path);
    w.#handle = await fs.open(`${path}.partial`, 'w', 0o600);
    await w.#write(EXPORT_FILE_MAGIC);
    return w;
  }

  /** Appends one NDJSON line (without its newline); the caller may zero `line` afterwards. */
  async writeLine(line: Buffer): Promise<void> {
    this.#pending.push(Buffer.from(line), Buffer.from('\n'));
    this.#pendingBytes += line.length + 1;
    if (this.#pendingBytes >= CHUNK_PLAINTEXT_BYTES) await this.#seal(false);
  }

  async finish(): Promise<WrittenFile> {
    await this.#seal(true);
    await this.#handle!.sync();
    await this.#handle!.close();
    this.#handle = undefined;
    await fs.rename(`${this.#path}.partial`, this.#path);
    return { bytes: this.#bytes, sha256: this.#hash.digest('hex') };
  }

  /** Closes and removes the partial file (a failed type). */
  async abandon(): Promise<void> {
    for (const b of this.#pending) b.fill(0);
    this.#pending = [];
    await this.#handle?.close().catch(() => undefined);
    this.#handle = undefined;
    await fs.rm(`${this.#path}.partial`, { force: true });
  }

  async #seal(final: boolean): Promise<void> {
    const plain = Buffer.concat(this.#pending);
    for (const b of this.#pending) b.fill(0);
    this.#pending = [];
    this.#pendingBytes = 0;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(chunkAad(this.#binding, this.#index, final));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    plain.fill(0);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    await this.#write(Buffer.concat([length, nonce, body, cipher.getAuthTag()]));
    this.#index += 1;
  }

  async #write(buf: Buffer): Promise<void> {
    this.#hash.update(buf);
    this.#bytes += buf.length;
    await this.#handle!.write(buf);
  }
}

/**
 * Decrypts a file chunk by chunk, handing each authenticated chunk's plaintext to `onChunk` (zeroed after it
 * returns). DecryptionError when the file is not an export file, a chunk does not authenticate, or the file
 * ends before its final chunk or goes on after it.
 */
export async function decryptExportFile(
  path: string,
  key: Buffer,
  binding: FileBinding,
  onChunk: (plaintext: Buffer) => Promise<void>,
): Promise<void> {
  const handle = await fs.open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const read = async (at: number, n: number): Promise<Buffer> => {
      if (at + n > size) throw new DecryptionError(`${binding.file} is truncated`);
      const buf = Buffer.alloc(n);
      await handle.read(buf, 0, n, at);
      return buf;
    };
    if (!(await read(0, EXPORT_FILE_MAGIC.length)).equals(EXPORT_FILE_MAGIC))
      throw new DecryptionError(`${binding.file} is not an encrypted export file`);
    let at = EXPORT_FILE_MAGIC.length;
    for (let index = 0; ; index += 1) {
      const length = (await read(at, 4)).readUInt32BE();
      if (length > MAX_CHUNK_BYTES) throw new DecryptionError(`${binding.file}: chunk ${index} is malformed`);
      const rest = await read(at + 4, NONCE_BYTES + length + TAG_BYTES);
      at += 4 + rest.length;
      const final = at === size;
      const decipher = createDecipheriv('aes-256-gcm', key, rest.subarray(0, NONCE_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(chunkAad(binding, index, final));
      decipher.setAuthTag(rest.subarray(NONCE_BYTES + length));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(rest.subarray(NONCE_BYTES, NONCE_BYTES + length)), decipher.final()]);
      } catch {
        throw new DecryptionError(`${binding.file}: chunk ${index} does not authenticate`);
      }
      try {
        await onChunk(plain);
      } finally {
        plain.fill(0);
      }
      if (final) return;
    }
  } finally {
    await handle.close();
  }
}
