/**
 * File-based KEK provider for the dev stack and tests. A KEK directory (EHR_KEK_DIR, outside the
 * database and the repository) holds `kek-v<N>.key` files, each the base64 of 32 random bytes with
 * mode 0600. The highest N is the primary (wraps); every loaded version unwraps (dual-read).
 * Wrapping is AES-256-GCM with a random 12-byte IV; the stored blob is iv || ciphertext || tag and the
 * caller's AAD is bound together with the KEK id and version.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, DecryptionError, InvalidArgumentError } from '../errors/index.js';
import type { KekBackend, WrappedKey } from './kek-provider.js';

const KEK_FILE = /^kek-v([1-9][0-9]{0,8})\.key$/;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FIELD = 'EHR_KEK_DIR';

export const LOCAL_KEK_ID = 'local';

function kekFileName(version: number): string {
  return `kek-v${version}.key`;
}

function versionOfFileName(name: string): number | undefined {
  const m = KEK_FILE.exec(name);
  return m ? Number(m[1]) : undefined;
}

async function readKeyFile(file: string): Promise<Buffer> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    throw new ConfigError(FIELD, `key file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!st.isFile()) throw new ConfigError(FIELD, `key file ${file} is not a regular file`);
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(FIELD, `key file ${file} has mode 0${mode.toString(8)}; it must be 0600 (chmod 600 it)`);
  }
  const text = (await fs.readFile(file, 'utf8')).trim();
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) throw new ConfigError(FIELD, `key file ${file} must hold the base64 of 32 bytes`);
  return key;
}

async function listVersions(dir: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(FIELD, `directory ${dir} does not exist`);
    throw new ConfigError(FIELD, `directory ${dir} cannot be read (${code ?? 'error'})`);
  }
  return entries
    .map((name) => KEK_FILE.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function bindAad(kekId: string, version: number, aad: Buffer): Buffer {
  const prefix = Buffer.from(`ehr-connectors/kek-wrap/v1\0${kekId}\0`, 'utf8');
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version);
  return Buffer.concat([prefix, v, aad]);
}

export class LocalKekProvider implements KekBackend {
  readonly id = LOCAL_KEK_ID;
  readonly #dir: string;
  readonly #keys: Map<number, Buffer>;
  #primary: number;

  private constructor(dir: string, keys: Map<number, Buffer>) {
    this.#dir = dir;
    this.#keys = keys;
    this.#primary = Math.max(...keys.keys());
  }

  /** Loads every `kek-v<N>.key` in `dir`. Refuses key files readable or writable by group/others. */
  static async load(dir: string): Promise<LocalKekProvider> {
    const versions = await listVersions(dir);
    if (versions.length === 0) {
      throw new ConfigError(
        FIELD,
        `directory ${dir} holds no kek-v<N>.key files (create one with ensureLocalKekDir or \`ehrctl dev up\`)`,
      );
    }
    const keys = new Map<number, Buffer>();
    for (const version of versions) keys.set(version, await readKeyFile(path.join(dir, kekFileName(version))));
    return new LocalKekProvider(dir, keys);
  }

  primaryVersion(): number {
    return this.#primary;
  }

  /** Loaded versions, ascending (for rotation and diagnostics). */
  versions(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  async wrap(dek: Buffer, aad: Buffer): Promise<WrappedKey> {
    return this.wrapWith(this.#primary, dek, aad);
  }

  async wrapWith(version: number, dek: Buffer, aad: Buffer): Promise<WrappedKey> {
    if (!Buffer.isBuffer(dek) || dek.length === 0) throw new InvalidArgumentError('dek', 'must be a non-empty Buffer');
    const key = this.#keys.get(version);
    if (!key) throw new InvalidArgumentError('kekVersion', 'is not loaded by this provider');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(bindAad(this.id, version, aad));
    const body = Buffer.concat([cipher.update(dek), cipher.final()]);
    return { kekId: this.id, kekVersion: version, wrapped: Buffer.concat([iv, body, cipher.getAuthTag()]) };
  }

  async initialVersions(): Promise<Array<{ version: number; ref: string }>> {
    return this.versions().map((version) => ({ version, ref: kekFileName(version) }));
  }

  hasVersion(version: number): boolean {
    return this.#keys.has(version);
  }

  async adoptVersion(version: number, ref: string): Promise<void> {
    if (this.#keys.has(version)) return;
    if (versionOfFileName(ref) !== version)
      throw new ConfigError(FIELD, `KEK version ${version} names an unexpected file`);
    this.#keys.set(version, await readKeyFile(path.join(this.#dir, ref)));
    if (version > this.#primary) this.#primary = version;
  }

  async createVersion(version: number): Promise<{ ref: string }> {
    if (!Number.isInteger(version) || version < 1)
      throw new InvalidArgumentError('kekVersion', 'must be a positive integer');
    // A file left by a rotation whose metadata transaction failed is adopted: it never wrapped anything.
    await writeKeyFile(this.#dir, version);
    const ref = kekFileName(version);
    this.#keys.delete(version);
    await this.adoptVersion(version, ref);
    return { ref };
  }

  /** Overwrites the key file with random bytes, syncs, deletes it, and zeroes the in-memory copy. */
  async destroyVersion(version: number): Promise<void> {
    const file = path.join(this.#dir, kekFileName(version));
    try {
      const handle = await fs.open(file, 'r+');
      try {
        const { size } = await handle.stat();
        await handle.write(randomBytes(Math.max(size, 64)), 0, Math.max(size, 64), 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.#keys.get(version)?.fill(0);
    this.#keys.delete(version);
    if (this.#primary === version) this.#primary = Math.max(0, ...this.#keys.keys());
  }

  async unwrap(w: WrappedKey, aad: Buffer): Promise<Buffer> {
    if (w.kekId !== this.id) throw new DecryptionError('wrapped key names another key-encryption key');
    const key = this.#keys.get(w.kekVersion);
    if (!key) throw new DecryptionError('key-encryption key version is not available');
    if (!Buffer.isBuffer(w.wrapped) || w.wrapped.length <= IV_BYTES + TAG_BYTES)
      throw new DecryptionError('wrapped key is malformed');
    const iv = w.wrapped.subarray(0, IV_BYTES);
    const body = w.wrapped.subarray(IV_BYTES, w.wrapped.length - TAG_BYTES);
    const tag = w.wrapped.subarray(w.wrapped.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(bindAad(w.kekId, w.kekVersion, aad));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      throw new DecryptionError('key unwrap failed: wrapped key or its binding does not match');
    }
  }

  toJSON(): { id: string; primaryVersion: number } {
    return { id: this.id, primaryVersion: this.#primary };
  }
}

async function writeKeyFile(dir: string, version: number): Promise<boolean> {
  const file = path.join(dir, kekFileName(version));
  try {
    await fs.writeFile(file, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await fs.chmod(file, 0o600);
  return true;
}

/** Creates `dir` (0700) and `kek-v1.key` (0600) when no key exists yet. Used by the dev stack and tests. */
export async function ensureLocalKekDir(dir: string): Promise<{ created: boolean }> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const versions = await listVersions(dir);
  if (versions.length > 0) return { created: false };
  return { created: await writeKeyFile(dir, 1) };
}

/** Writes the next KEK version (it becomes the primary on the next load); returns its number. */
export async function addLocalKekVersion(dir: string): Promise<number> {
  const versions = await listVersions(dir);
  const next = (versions[versions.length - 1] ?? 0) + 1;
  if (!(await writeKeyFile(dir, next)))
    throw new ConfigError(FIELD, `key file ${kekFileName(next)} appeared concurrently; retry`);
  return next;
}
